"""The files of a backup archive, restored into storage beside the rows that name them.

Each file is checked against the document's list (its size and SHA-256) on a spool file before
the storage sees it, so that only whole, verified files reach the storage. A file is never
written over another: a name this tenant's rows already give to the same bytes is kept as it
is; any other is saved under the name the storage gives (a new one when the name is taken, by
another tenant say), and the restored rows are renamed to it. When the import fails, the files
it wrote are deleted (`discard`), so the storage is left as it was; an import whose transaction a
caller rolls back (a restore drill) checks the files and writes none (`restore_files`).
"""

import contextlib
import hashlib
import re
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage
from django.db.models import Case, Value, When

from backup.errors import InvalidFile
from backup.format.archive import FILES_DIR, ArchivedFile, ArchiveReader, safe_name
from backup.registry import FieldSpec, Registry, TableSpec
from backup.restore.report import ProblemLog
from tenants.models import Tenant

CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RENAME_BATCH = 500


@dataclass
class FileCounts:
    listed: int = 0
    restored: int = 0  # written to storage
    kept: int = 0  # already in storage with the same bytes, as this tenant's
    renamed: int = 0  # written under a new name (theirs was taken)
    bytes: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def max_file_bytes() -> int:
    return int(getattr(settings, "BACKUP_MAX_FILE_BYTES", 2 << 30))


def _file_fields(reg: Registry) -> list[tuple[TableSpec, FieldSpec]]:
    return [(spec, f) for spec in reg.tenant_tables for f in spec.fields if f.type == "file"]


class NamedFiles:
    """The files the backup's rows name (the values of `file` fields), noted as the rows are
    read: none may be a file that only other tenants' rows name, unless the archive brings its
    own copy (saved under a new name). Otherwise a crafted backup could give this tenant another
    tenant's file, to download or to export with its files. The tenant's own files are those
    its rows named before the import, and a new tenant's those of the tenant it came from."""

    def __init__(self, reg: Registry, tenant: Tenant | None, sharing: str | None = None) -> None:
        """`tenant`: the tenant imported into (None for a new one), its files read now, before
        the import changes its rows. `sharing`: the id of the tenant a new tenant comes from,
        as the backup's metadata gives it."""
        self.fields = _file_fields(reg)
        self.own = _names_of(self.fields, tenant.pk) if tenant is not None else set()
        self.sharing: uuid.UUID | None = None
        with contextlib.suppress(ValueError):  # none, or not an id: no tenant's
            self.sharing = uuid.UUID(sharing or "")
        self.names: dict[tuple[TableSpec, FieldSpec], set[str]] = {}

    def noted(self, table: str, rows: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
        fields = [(spec, f) for spec, f in self.fields if spec.name == table]
        if not fields:
            return rows

        def noting() -> Iterator[tuple[int, Any]]:
            for position, row in rows:
                if isinstance(row, dict):
                    for spec, f in fields:
                        value = row.get(f.name)
                        if isinstance(value, str) and value:
                            self.names.setdefault((spec, f), set()).add(value)
                yield position, row

        return noting()

    def check(self, archived: set[str], tenant_id: Any, problems: ProblemLog) -> None:
        """`tenant_id`: the tenant imported into (a direct load's rows are already there)."""
        mine = {tenant_id} | ({self.sharing} if self.sharing else set())
        for (spec, f), names in self.names.items():
            outside = sorted(names - archived - self.own)
            for start in range(0, len(outside), _RENAME_BATCH):
                rows = spec.model.objects.filter(
                    **{f"{f.name}__in": outside[start : start + _RENAME_BATCH]}
                )
                theirs = set(rows.exclude(tenant_id__in=mine).values_list(f.name, flat=True))
                if self.sharing:
                    theirs -= set(
                        rows.filter(tenant_id=self.sharing).values_list(f.name, flat=True)
                    )
                for name in sorted(theirs):
                    problems.add(
                        spec.name,
                        f"file '{name}'",
                        f.name,
                        "names a file of another tenant: a backup names only its own tenant's "
                        "files, or brings them in an archive",
                    )


def _names_of(fields: list[tuple[TableSpec, FieldSpec]], tenant_id: Any) -> set[str]:
    names: set[str] = set()
    for spec, f in fields:
        names.update(spec.model.objects.filter(tenant_id=tenant_id).values_list(f.name, flat=True))
    return names


def listing(items: list[Any], max_total: int | None = None) -> dict[str, ArchivedFile]:
    """The document's `files` section, checked: each item a file's name, size and SHA-256,
    no name twice, none larger than a restore accepts, together no more than `max_total`
    (an upload's limit on what it decompresses to)."""
    limit = max_file_bytes()
    listed: dict[str, ArchivedFile] = {}
    for position, item in enumerate(items, 1):
        where = f"Section 'files', item {position}"
        if not isinstance(item, dict) or set(item) != {"name", "size", "sha256"}:
            raise InvalidFile(f"{where}: expected an object with name, size and sha256.")
        name, size, sha256 = item["name"], item["size"], item["sha256"]
        if not isinstance(name, str) or not isinstance(size, int) or isinstance(size, bool):
            raise InvalidFile(f"{where}: the name must be text and the size an integer.")
        safe_name(FILES_DIR + name)
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise InvalidFile(f"{where} ('{name}'): sha256 must be 64 lowercase hex digits.")
        if not 0 <= size <= limit:
            raise InvalidFile(
                f"{where}: the file '{name}' is listed with {size:,} bytes, outside the 0 to "
                f"{limit:,} a restore accepts (BACKUP_MAX_FILE_BYTES)."
            )
        if name in listed:
            raise InvalidFile(f"{where}: the file '{name}' is listed twice.")
        listed[name] = ArchivedFile(name=name, size=size, sha256=sha256)
    total = sum(entry.size for entry in listed.values())
    if max_total is not None and total > max_total:
        raise InvalidFile(
            f"The archive's files add up to {total:,} bytes, more than the {max_total:,} "
            "accepted here (BACKUP_UPLOAD_MAX_DECOMPRESSED_BYTES)."
        )
    return listed


class FileRestore:
    """Restores an archive's files for one import (`write`), or only checks them (a preview, a
    restore drill)."""

    def __init__(
        self,
        reg: Registry,
        owned: set[str],
        problems: ProblemLog,
        *,
        write: bool,
        max_total: int | None = None,
    ) -> None:
        """`owned`: the files the tenant's rows named before the import (`NamedFiles.own`).
        `max_total`: the most bytes the files may add up to (None: no limit)."""
        self.fields = _file_fields(reg)
        storages = {id(f.model_field.storage): f.model_field.storage for _s, f in self.fields}  # type: ignore[attr-defined]
        if len(storages) > 1:
            raise ValueError("the backup restores files into one storage; the file fields differ")
        self.storage: Storage | None = next(iter(storages.values()), None)
        self.max_length = min((f.max_length or 255 for _s, f in self.fields), default=255)
        self.problems = problems
        self.write = write
        self.max_total = max_total
        self.owned = owned
        self.written: list[str] = []
        self.renamed: dict[str, str] = {}
        self.counts = FileCounts()

    def restore(self, archive: ArchiveReader, listed: dict[str, ArchivedFile]) -> None:
        """Every file of the archive, checked against the document's list (`listing`); a file
        listed and missing, or whose bytes differ, is a problem; an entry not listed is
        refused."""
        self.counts.listed = len(listed)
        if listed and self.storage is None:
            raise InvalidFile("The backup lists files, and no table here holds files.")
        seen: set[str] = set()
        for name, chunks in archive.files():
            entry = listed.get(name)
            if entry is None:
                raise InvalidFile(
                    f"The archive's entry '{FILES_DIR}{name}' is not in the document's list of "
                    "files: refused."
                )
            seen.add(name)
            self._restore(entry, chunks)
        archive.check_directory()
        for name in sorted(listed.keys() - seen):
            self.problems.add("files", f"'{name}'", "", "listed in the backup, not in the archive")

    def _restore(self, entry: ArchivedFile, chunks: Iterator[bytes]) -> None:
        if not self.write:
            self._checked(entry, chunks, None)
            return
        # The workers' spool: on the disk, where a file of any size fits.
        spool_dir = Path(settings.BACKUP_SPOOL_DIR)
        spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=spool_dir) as spool:
            if not self._checked(entry, chunks, spool):
                return
            if entry.name in self.owned and self._holds(entry):
                self.counts.kept += 1
                return
            spool.seek(0)
            assert self.storage is not None
            saved = self.storage.save(entry.name, File(spool), max_length=self.max_length)
        self.written.append(saved)
        self.counts.restored += 1
        if saved != entry.name:
            self.renamed[entry.name] = saved
            self.counts.renamed += 1

    def _checked(self, entry: ArchivedFile, chunks: Iterator[bytes], spool: Any) -> bool:
        """Whether the entry's bytes are the listed ones (copied into `spool` when given); a
        problem when not."""
        digest, size = hashlib.sha256(), 0
        for chunk in chunks:
            size += len(chunk)
            if size > entry.size:
                # Read no further: an entry can decompress to far more than it declares.
                raise InvalidFile(
                    f"The archive's entry '{FILES_DIR}{entry.name}' holds more than the "
                    f"{entry.size:,} bytes the backup lists for it: refused."
                )
            digest.update(chunk)
            if spool is not None:
                spool.write(chunk)
        if size != entry.size or digest.hexdigest() != entry.sha256:
            self.problems.add(
                "files",
                f"'{entry.name}'",
                "",
                f"the archive's copy ({size:,} bytes) differs from the one the backup lists "
                f"({entry.size:,} bytes, SHA-256 {entry.sha256[:12]}...): corrupt",
            )
            return False
        self.counts.bytes += size
        return True

    def _holds(self, entry: ArchivedFile) -> bool:
        """Whether the storage has the file under its name with the same bytes."""
        assert self.storage is not None
        if not self.storage.exists(entry.name) or self.storage.size(entry.name) != entry.size:
            return False
        digest = hashlib.sha256()
        with self.storage.open(entry.name, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest() == entry.sha256

    def rename_rows(self, tenant_id: Any) -> None:
        """Point the restored rows at the names their files were saved under."""
        pairs = list(self.renamed.items())
        for spec, f in self.fields:
            for start in range(0, len(pairs), _RENAME_BATCH):
                batch = dict(pairs[start : start + _RENAME_BATCH])
                new_name = Case(
                    *(When(**{f.name: old}, then=Value(new)) for old, new in batch.items())
                )
                spec.model.objects.filter(
                    tenant_id=tenant_id, **{f"{f.name}__in": list(batch)}
                ).update(**{f.name: new_name})

    def discard(self) -> None:
        """Delete the files this import wrote (it failed, or was rolled back)."""
        while self.written:
            name = self.written.pop()
            if self.storage is not None:
                self.storage.delete(name)

    def summary(self) -> dict[str, int]:
        return self.counts.as_dict()
