"""The `backups` storage: files appear there only once complete.

A backup is written to a local spool file first (readable by the server's user only) and then
handed to the storage in one call: the file system renames it into place; S3 receives it as a
multipart upload streamed from the spool file, which the S3 client aborts if it fails. A worker
killed mid-way leaves at most a spool file and, on S3, an unfinished multipart upload; both are
removed by `sweep_partial`, which the lease sweep calls for every dead job.
"""

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages

from backup.errors import StorageFailed
from backup.models import ENCRYPTED_SUFFIX

SUFFIX = ".json.zst"
ARCHIVE_SUFFIX = ".zip"  # a backup with its files (`ExportOptions.include_files`)
SPOOL_SUFFIX = ".partial"


def backup_storage() -> Storage:
    return storages["backups"]


def storage_name(
    tenant_id: Any, backup_id: Any, *, encrypted: bool = False, archive: bool = False
) -> str:
    """Where a stored backup lives: one folder per tenant, named by ids only (`.zip` for an
    archive with files, `.age` after an encrypted one's name)."""
    suffix = ARCHIVE_SUFFIX if archive else SUFFIX
    return f"{tenant_id}/{backup_id}{suffix}" + (ENCRYPTED_SUFFIX if encrypted else "")


def download_name(storage_name: str, prefix: str) -> tuple[str, str]:
    """(file name, content type) of a stored backup's download: `prefix` and its suffixes."""
    suffixes = storage_name.rsplit("/", 1)[-1].split(".", 1)[1]
    if storage_name.endswith(ENCRYPTED_SUFFIX):
        content_type = "application/octet-stream"
    elif storage_name.endswith(ARCHIVE_SUFFIX):
        content_type = "application/zip"
    else:
        content_type = "application/zstd"
    return f"{prefix}.{suffixes}", content_type


def spool_dir() -> Path:
    path = Path(settings.BACKUP_SPOOL_DIR)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageFailed(
            f"The spool directory (BACKUP_SPOOL_DIR) cannot be used: {exc.strerror}."
        ) from exc
    return path


class _SpoolFile(File):
    """A finished spool file; `temporary_file_path` lets the file system storage move it into
    place (a rename) instead of copying it."""

    def temporary_file_path(self) -> str:
        return self.file.name


class HashingWriter:
    """Passes bytes to `raw` while counting them and computing their SHA-256."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.size = 0
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        try:
            return self.raw.write(data)
        except OSError as exc:
            raise _spool_failed(exc) from exc

    def flush(self) -> None:
        try:
            self.raw.flush()
        except OSError as exc:
            raise _spool_failed(exc) from exc


def _spool_failed(exc: OSError) -> StorageFailed:
    # A full disk (or a quota) shows here, mid-export: say which disk (not its path, which
    # the tenant's admins reading the error need not know).
    return StorageFailed(
        "The backup could not be written to the spool directory (BACKUP_SPOOL_DIR): "
        f"{exc.strerror or exc}."
    )


@contextmanager
def spooled(job_id: Any) -> Iterator[tuple[HashingWriter, BinaryIO]]:
    """A spool file named after the job (so that a sweep can find it), removed on failure."""
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below
        "w+b", dir=spool_dir(), prefix=f"{job_id}.", suffix=SPOOL_SUFFIX, delete=False
    )
    os.chmod(handle.name, 0o600)
    try:
        yield HashingWriter(handle), handle
    finally:
        handle.close()
        if os.path.exists(handle.name):
            os.unlink(handle.name)


def save(name: str, spool: BinaryIO) -> str:
    """Move or upload the finished spool file to `name`; returns the name the storage used."""
    spool.flush()
    spool.seek(0)
    try:
        saved = backup_storage().save(name, _SpoolFile(spool, name=os.path.basename(name)))
    except Exception as exc:
        raise StorageFailed(f"The backup storage refused the file {name}: {exc}") from exc
    return saved


def open_stored(name: str) -> BinaryIO:
    try:
        return backup_storage().open(name, "rb")
    except Exception as exc:
        raise StorageFailed(f"The backup file {name} cannot be read from storage: {exc}") from exc


def sha256_of(handle: BinaryIO) -> str:
    """The SHA-256 of a stored file's bytes, read from where `handle` stands to its end."""
    try:
        return hashlib.file_digest(handle, "sha256").hexdigest()  # type: ignore[arg-type]
    except OSError as exc:
        raise StorageFailed(f"The backup file cannot be read from storage: {exc}") from exc


def delete(name: str) -> None:
    if not name:
        return
    storage = backup_storage()
    try:
        storage.delete(name)
    except (FileNotFoundError, NotADirectoryError):  # nothing there, nor could there be
        pass
    except Exception as exc:
        raise StorageFailed(f"The backup file {name} cannot be deleted: {exc}") from exc


def stored_names() -> Iterator[str]:
    """Every file in the backup storage, one folder per tenant deep (`storage_name`)."""
    store = backup_storage()
    try:
        folders, files = store.listdir("")
        yield from files
        for folder in folders:
            yield from (f"{folder}/{name}" for name in store.listdir(folder)[1])
    except FileNotFoundError:  # an empty storage directory not made yet
        return
    except Exception as exc:
        raise StorageFailed(f"The backup storage cannot be listed: {exc}") from exc


def sweep_partial(job_id: Any, name: str = "") -> None:
    """Remove what a dead job may have left: its spool files, the file it was writing to if it
    appeared before the job could record success, and an unfinished S3 multipart upload."""
    # Not spool_dir(): a spool directory that cannot be made holds nothing to remove.
    spool = Path(settings.BACKUP_SPOOL_DIR)
    try:
        for path in spool.glob(f"{job_id}.*{SPOOL_SUFFIX}"):
            path.unlink(missing_ok=True)
    except OSError as exc:
        raise StorageFailed(
            f"The spool files of job {job_id} cannot be removed: {exc.strerror}."
        ) from exc
    if not name:
        return
    delete(name)
    abort_uploads(lambda key: key == name_key, prefix=(name_key := _key(name)))


def _key(name: str) -> str:
    storage = backup_storage()
    if not hasattr(storage, "bucket"):
        return name
    return storage._normalize_name(name)  # the key S3Storage writes the name to


def abort_uploads(doomed: Callable[[str], bool], prefix: str = "") -> int:
    """S3 keeps the parts of an upload cut short (a worker killed while uploading, or a sweep
    that could not reach S3 then) until it is aborted: abort those whose key is `doomed`.
    Nothing to do on other storages. Returns how many were aborted."""
    storage = backup_storage()
    if not hasattr(storage, "bucket"):
        return 0
    aborted = 0
    try:
        for upload in storage.bucket.multipart_uploads.filter(Prefix=prefix or storage.location):
            if doomed(upload.key):
                upload.abort()
                aborted += 1
    except Exception as exc:
        raise StorageFailed(f"Unfinished uploads to S3 cannot be aborted: {exc}") from exc
    return aborted


def abort_stale_uploads(running: Iterable[str]) -> int:
    """Abort every unfinished upload but those of the backups still `running` (their names,
    read only when the storage is S3)."""
    if not hasattr(backup_storage(), "bucket"):
        return 0
    keep = {_key(name) for name in running}
    return abort_uploads(lambda key: key not in keep)
