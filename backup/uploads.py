"""Uploaded backups waiting between their preview and their import.

The web entry points (API and admin page) preview an upload first and import it only when the
user confirms. Between the two the file is kept in the `backup_uploads` Django storage, never in
memory, under a random id, beside a small JSON record of whose it is and how to import it. It is
removed after the import, and any upload older than `BACKUP_UPLOAD_TTL_SECONDS` is removed by
the next upload or by `manage.py purge_backup_uploads`.
"""

import datetime as dt
import io
import json
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages

from backup.errors import (
    BackupError,
    ConfirmationRequired,
    DecryptionFailed,
    EncryptedFile,
    ImportRunning,
    NotEncrypted,
    UploadNotFound,
    WrongKey,
)
from backup.format.encryption import Decryption, is_encrypted
from backup.restore import ImportOptions, ImportReport, Mode, import_backup, preview_import
from tenants.models import Tenant

DATA_SUFFIX, RECORD_SUFFIX = ".backup", ".json"
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{20,64}")


def upload_storage() -> Storage:
    return storages["backup_uploads"]


def ttl() -> dt.timedelta:
    return dt.timedelta(seconds=int(getattr(settings, "BACKUP_UPLOAD_TTL_SECONDS", 3600)))


@dataclass(frozen=True)
class PendingImport:
    id: str
    tenant_id: str  # the tenant whose page or endpoint received the upload
    user_id: int | None
    mode: str
    create_missing_master_data: bool
    new_tenant_slug: str
    new_tenant_name: str
    filename: str
    size: int
    expires_at: str
    encrypted: bool = False  # an age file, kept as it came

    def options(self) -> ImportOptions:
        return ImportOptions(
            mode=Mode(self.mode),
            create_missing_master_data=self.create_missing_master_data,
            new_tenant_slug=self.new_tenant_slug,
            new_tenant_name=self.new_tenant_name,
            source_tenant_id=self.tenant_id if self.mode == Mode.NEW_TENANT else "",
            max_bytes=int(settings.BACKUP_UPLOAD_MAX_DECOMPRESSED_BYTES),
        )

    @property
    def expired(self) -> bool:
        return dt.datetime.fromisoformat(self.expires_at) <= dt.datetime.now(dt.UTC)


def _source(pending: PendingImport) -> Any:
    return upload_storage().open(pending.id + DATA_SUFFIX, "rb")


def _target(pending: PendingImport, tenant: Tenant) -> Tenant | None:
    return None if pending.mode == Mode.NEW_TENANT else tenant


def keep(upload: File, *, tenant: Tenant, user: Any, options: ImportOptions) -> PendingImport:
    """Keep the upload in storage, for `user` and `tenant` only, until its import or expiry."""
    purge_expired()
    storage = upload_storage()
    pending = PendingImport(
        id=secrets.token_urlsafe(24),
        tenant_id=str(tenant.pk),
        user_id=getattr(user, "pk", None),
        mode=str(options.mode),
        create_missing_master_data=options.create_missing_master_data,
        new_tenant_slug=options.new_tenant_slug,
        new_tenant_name=options.new_tenant_name,
        filename=str(upload.name or "backup.json")[-200:],
        size=upload.size or 0,
        expires_at=(dt.datetime.now(dt.UTC) + ttl()).isoformat(),
        encrypted=_encrypted(upload),
    )
    upload.seek(0)
    storage.save(pending.id + DATA_SUFFIX, upload)
    storage.save(pending.id + RECORD_SUFFIX, File(_record_bytes(pending)))
    return pending


def _encrypted(upload: File) -> bool:
    upload.seek(0)
    head = upload.read(64)
    upload.seek(0)
    return is_encrypted(head)


def open_pending(pending: PendingImport) -> Any:
    return _source(pending)


def _decryption(
    pending: PendingImport, passphrase: str, identities: Callable[[], tuple[str, ...]]
) -> Decryption | None:
    """How an upload is opened: with the passphrase typed (for a file that is not encrypted, the
    reader says so), else an encrypted file with the deployment's keys."""
    if passphrase:
        return Decryption(passphrase=passphrase)
    if not pending.encrypted:
        return None
    keys = identities()
    if not keys:
        raise EncryptedFile(
            "The file is encrypted (age): type the passphrase it was encrypted with. A file "
            "encrypted to age keys imports here only when they are this deployment's "
            "(BACKUP_AGE_IDENTITY_FILE)."
        )
    return Decryption(identities=keys)


@contextmanager
def _opened_with_keys(passphrase: str) -> Iterator[None]:
    """A file the deployment's keys do not open, when no passphrase was typed, asks for one."""
    try:
        yield
    except WrongKey:
        if passphrase:
            raise
        raise WrongKey(
            "The file is encrypted, and not to this deployment's keys: type the passphrase it "
            "was encrypted with."
        ) from None


def preview_upload(
    upload: File,
    *,
    tenant: Tenant,
    user: Any,
    options: ImportOptions,
    passphrase: str = "",
    identities: Callable[[], tuple[str, ...]] = tuple,
) -> tuple[PendingImport, ImportReport]:
    """Keep the upload and preview its import into `tenant` (or, for a new-tenant restore, from
    it). A file that cannot be imported is not kept: the error is raised. An encrypted upload
    is opened with `passphrase` or, without one, with the deployment's keys (`identities()`,
    read only then); it is kept encrypted, and opened again for the import."""
    pending = keep(upload, tenant=tenant, user=user, options=options)
    try:
        decryption = _decryption(pending, passphrase, identities)
        with _opened_with_keys(passphrase), _source(pending) as source:
            report = preview_import(
                source,
                tenant=_target(pending, tenant),
                options=pending.options(),
                actor=user,
                decryption=decryption,
            )
    except Exception:
        # Whatever went wrong, the caller gets no id to import with: nothing is left behind.
        discard(pending.id)
        raise
    return pending, report


def get_pending(pending_id: str, *, tenant: Tenant, user: Any) -> PendingImport:
    """The upload previewed by this user for this tenant; unknown, foreign and expired ones are
    all 'not found', so an id reveals nothing about other users' uploads."""
    not_found = UploadNotFound(
        "No uploaded backup with this id is waiting for you: it was already imported, expired "
        "or never existed. Upload the file again."
    )
    if not isinstance(pending_id, str) or not ID_PATTERN.fullmatch(pending_id):
        raise not_found
    storage = upload_storage()
    try:
        with storage.open(pending_id + RECORD_SUFFIX, "rb") as handle:
            pending = PendingImport(**json.loads(handle.read()))
    except (OSError, ValueError, TypeError):
        raise not_found from None
    if pending.tenant_id != str(tenant.pk) or pending.user_id != getattr(user, "pk", None):
        raise not_found
    if pending.expired:
        discard(pending.id)
        raise not_found
    return pending


def import_pending(
    pending_id: str,
    *,
    tenant: Tenant,
    user: Any,
    confirmation: str = "",
    passphrase: str = "",
    identities: Callable[[], tuple[str, ...]] = tuple,
) -> ImportReport:
    """Import a previewed upload. A replace needs the tenant's name typed as `confirmation`; an
    encrypted upload its passphrase again (or the deployment's `identities`).

    The upload is removed afterwards, whatever the outcome, except when the confirmation or the
    passphrase was missing or wrong, or another import was running: then it can be tried again."""
    pending = get_pending(pending_id, tenant=tenant, user=user)
    if pending.mode == Mode.REPLACE and confirmation.strip() != tenant.name:
        raise ConfirmationRequired(
            f"Replace deletes the current data of tenant '{tenant.name}': type the tenant's "
            "name exactly to confirm."
        )
    decryption = _decryption(pending, passphrase, identities)
    try:
        with _opened_with_keys(passphrase), _source(pending) as source:
            report = import_backup(
                source,
                tenant=_target(pending, tenant),
                options=pending.options(),
                actor=user,
                decryption=decryption,
            )
    except (ImportRunning, DecryptionFailed, EncryptedFile, NotEncrypted):
        raise
    except BackupError:
        discard(pending.id)
        raise
    discard(pending.id)
    return report


def discard(pending_id: str) -> None:
    storage = upload_storage()
    for suffix in (DATA_SUFFIX, RECORD_SUFFIX):
        storage.delete(pending_id + suffix)


def purge_expired() -> int:
    """Remove expired uploads (and stray files of half-written ones); returns how many."""
    storage = upload_storage()
    try:
        _dirs, files = storage.listdir("")
    except FileNotFoundError:
        return 0
    removed = 0
    cutoff = dt.datetime.now(dt.UTC) - ttl()
    for name in files:
        if not name.endswith((RECORD_SUFFIX, DATA_SUFFIX)):
            continue
        try:
            modified = storage.get_modified_time(name)
        except OSError:
            continue
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=dt.UTC)
        if modified <= cutoff:
            storage.delete(name)
            removed += name.endswith(DATA_SUFFIX)
    return removed


def _record_bytes(pending: PendingImport) -> io.BytesIO:
    return io.BytesIO(json.dumps(asdict(pending)).encode())
