"""What both web entry points (the API and Admin > Backup) check of a request before they read
its body or act on it: the body's declared size, and form fields sent more than once."""

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.utils.datastructures import MultiValueDict

from backup.errors import AmbiguousRequest, UploadTooLarge


def _too_large(size: int) -> UploadTooLarge:
    limit = int(settings.BACKUP_UPLOAD_MAX_BYTES)
    return UploadTooLarge(
        f"The upload is {size:,} bytes; backups of at most {limit:,} bytes are accepted here "
        "(BACKUP_UPLOAD_MAX_BYTES). Import larger backups with `manage.py import_tenant`."
    )


def refuse_large_body(meta: Mapping[str, Any]) -> None:
    """`UploadTooLarge` when the request declares a body larger than an upload may be: checked
    before anything reads it (Django's CSRF check would otherwise read all of it first)."""
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0  # Django reads no body it cannot size
    if length > int(settings.BACKUP_UPLOAD_MAX_BYTES):
        raise _too_large(length)


def refuse_large_file(size: int | None) -> None:
    """`UploadTooLarge` when the file received is larger than an upload may be."""
    if size is not None and size > int(settings.BACKUP_UPLOAD_MAX_BYTES):
        raise _too_large(size)


def refuse_repeated_fields(*parts: MultiValueDict) -> None:
    """`AmbiguousRequest` when a form field or file part comes more than once: Django keeps the
    last, and a preview of one file must never stand for the import of another."""
    repeated = sorted({name for part in parts for name, values in part.lists() if len(values) > 1})
    if repeated:
        names = ", ".join(f"'{name}'" for name in repeated)
        raise AmbiguousRequest(f"The request has more than one part named {names}: send each once.")
