"""The tenant's files for a backup archive: which ones the exported rows name (the values of
the tables' `file` fields), each listed with its size and SHA-256, then its bytes.

Each file is read twice: once to list it in the document, which the archive holds before the
files so that an import can plan before the first file arrives, and once into the archive.
A file that changed between the two fails the export.
"""

import hashlib
import zlib
from collections.abc import Iterable, Iterator

from django.core.files.storage import Storage
from django.db.models import QuerySet

from backup.errors import ExportFailed
from backup.format.archive import ArchivedFile, FileChunks
from backup.registry import FieldSpec

CHUNK = 1 << 20
Listed = list[tuple[Storage, ArchivedFile]]  # each file, and the storage it is read from


def _storage(field: FieldSpec) -> Storage:
    return field.model_field.storage  # type: ignore[attr-defined]


def listed_files(named_by: Iterable[tuple[FieldSpec, QuerySet]]) -> Listed:
    """The files that the rows of each queryset (the values of one `file` field) name, in
    name order, each hashed; a name whose file is not in storage is left out (its row keeps
    the name, as it does in a backup without files)."""
    storages: dict[str, Storage] = {}
    for field, rows in named_by:
        storage = _storage(field)
        for name in rows.exclude(**{field.column: ""}).values_list(field.column, flat=True):
            storages.setdefault(name, storage)
    listed = []
    for name in sorted(storages):
        storage = storages[name]
        if storage.exists(name):
            listed.append((storage, _hashed(storage, name)))
    return listed


def _hashed(storage: Storage, name: str) -> ArchivedFile:
    digest, crc, size = hashlib.sha256(), 0, 0
    with storage.open(name, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    return ArchivedFile(name=name, size=size, sha256=digest.hexdigest(), crc32=crc)


def file_chunks(listed: Listed) -> Iterator[FileChunks]:
    """Each listed file with its bytes, read as the archive takes them."""
    for storage, entry in listed:
        yield entry, _read(storage, entry)


def _read(storage: Storage, entry: ArchivedFile) -> Iterator[bytes]:
    digest, size = hashlib.sha256(), 0
    with storage.open(entry.name, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if size > entry.size:
                break
            yield chunk
    if size != entry.size or digest.hexdigest() != entry.sha256:
        raise ExportFailed(f"The file '{entry.name}' changed while it was exported: export again.")
