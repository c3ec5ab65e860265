"""Streaming export of one tenant to the backup document.

Rows come from the database in chunks and are written as they come; no table is held in memory.
Without `include_deleted`, soft-deleted rows are left out together with the rows that cannot
exist without them (the readings of a deleted vehicle), and optional references to them are
written as null. With `include_files`, the document goes into an archive with the files its rows
name (`backup.format.archive`).
"""

import datetime as dt
import logging
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any, BinaryIO

import orjson
from django.db.models import Case, F, Q, QuerySet, Value, When

from backup.audit import record
from backup.db.dialect import dialect
from backup.db.session import export_transaction
from backup.errors import ExportFailed
from backup.export.files import file_chunks, listed_files
from backup.format.archive import ArchivedFile, archive_chunks
from backup.format.document import FORMAT_NAME, FORMAT_VERSION, app_version, schema_section
from backup.format.encryption import Encryption, encrypted_chunks
from backup.format.values import encode_datetime, encoder, json_bytes
from backup.registry import Registry, RowBlocks, TableSpec, alive, alive_paths, registry
from tenants.models import Tenant

log = logging.getLogger(__name__)

CHUNK_ROWS = 2000
# (table, rows): `progress` is called once per table with its rows, `rows_written` after every
# block of rows with that block's count (a job's progress bar).
Progress = Callable[[str, int], None]
Reports = tuple[Progress | None, Progress | None]  # (progress, rows_written)


@dataclass(frozen=True)
class ExportOptions:
    include_audit_logs: bool = False
    include_deleted: bool = False
    include_files: bool = False  # an archive: the document and the files its rows name


@dataclass
class ExportResult:
    statistics: dict[str, int] = field(default_factory=dict)
    master_statistics: dict[str, int] = field(default_factory=dict)
    # With `include_files`: each file listed, and the storage it is read from.
    files: list[tuple[Any, ArchivedFile]] = field(default_factory=list)
    rows_sent: int = 0  # tenant rows handed on so far

    @property
    def total_rows(self) -> int:
        return sum(self.statistics.values())


def exported_tables(options: ExportOptions, reg: Registry | None = None) -> list[TableSpec]:
    reg = reg or registry()
    return [t for t in reg.tenant_tables if not t.optional or options.include_audit_logs]


def expected_rows(tenant: Tenant, options: ExportOptions) -> int:
    """The rows an export with `options` will write (one count per table): a job's progress."""
    reg = registry()
    return sum(
        table_queryset(tenant, spec, options, reg).count() for spec in exported_tables(options, reg)
    )


def exported_rows(
    tenant: Tenant, spec: TableSpec, options: ExportOptions, reg: Registry
) -> QuerySet:
    """The rows of one table that the export writes."""
    qs = spec.model.objects.filter(tenant=tenant)
    if not options.include_deleted:
        qs = qs.filter(alive(alive_paths(spec, reg)))
    return qs


def table_queryset(
    tenant: Tenant, spec: TableSpec, options: ExportOptions, reg: Registry
) -> QuerySet:
    """The rows of one table that the export writes, as tuples in file field order."""
    columns: list[Any] = []
    for f in spec.fields:
        if f.kind == "user_fk":
            columns.append(f"{f.name}__email")
            continue
        target_paths = (
            alive_paths(reg.table(f.target), reg)
            if f.kind == "tenant_fk" and f.null and not options.include_deleted
            else []
        )
        if target_paths:
            # An optional reference to a row that is left out is written as null.
            prefixed = [f"{f.name}__{p}" for p in target_paths]
            columns.append(Case(When(alive(prefixed), then=F(f.column)), default=Value(None)))
        else:
            columns.append(f.column)
    for secret in spec.secrets:
        columns.append(Case(When(~Q(**{secret.field: ""}), then=Value(True)), default=Value(False)))
    return exported_rows(tenant, spec, options, reg).order_by("pk").values_list(*columns)


def _row_writer(spec: TableSpec) -> Callable[[tuple], bytes]:
    names = spec.file_fields()
    encoders = [encoder(f) for f in spec.fields] + [None] * len(spec.secrets)
    pairs = list(zip(names, encoders, strict=True))

    def write(row: tuple) -> bytes:
        return json_bytes(
            {
                name: (value if enc is None or value is None else enc(value))
                for (name, enc), value in zip(pairs, row, strict=True)
            }
        )

    return write


def _section(name: str, value: Any, *, first: bool = False) -> bytes:
    return (b"{" if first else b",\n") + orjson.dumps(name) + b":" + orjson.dumps(value)


def _tables(name: str, tables: Iterator[tuple[str, Iterator[bytes]]]) -> Iterator[bytes]:
    """A section of tables, each a JSON array with one row per line; `rows` yields blocks of
    rows that are already joined by ",\n"."""
    yield b",\n" + orjson.dumps(name) + b":{"
    for index, (table, blocks) in enumerate(tables):
        yield (b",\n" if index else b"\n") + orjson.dumps(table) + b":["
        separator = b"\n"
        for block in blocks:
            yield separator + block
            separator = b",\n"
        yield b"\n]"
    yield b"\n}"


def _blocks(rows: Iterator[bytes]) -> Iterator[bytes]:
    buffer: list[bytes] = []
    for row in rows:
        buffer.append(row)
        if len(buffer) >= CHUNK_ROWS:
            yield b",\n".join(buffer)
            buffer.clear()
    if buffer:
        yield b",\n".join(buffer)


def _written(spec: TableSpec, qs: QuerySet) -> Iterator[bytes]:
    """The rows of `qs` as blocks, written by the portable path."""
    write = _row_writer(spec)
    rows = qs.iterator(chunk_size=CHUNK_ROWS)
    try:
        yield from _blocks(write(row) for row in rows)
    finally:
        # Closed now, when a row fails or the download stops, not whenever the garbage is
        # collected: on PostgreSQL that closes a server-side cursor, which by then may belong to
        # a transaction rolled back, and so fail the connection's next one.
        rows.close()


def _master_ids(
    tenant: Tenant, tables: list[TableSpec], options: ExportOptions, reg: Registry
) -> dict[str, set]:
    """Ids of the master-data rows that the exported tenant rows reference, closed over the
    references between master tables."""
    ids: dict[str, set] = {t.name: set() for t in reg.master_tables}
    for spec in tables:
        for f in spec.fields_of_kind("master_fk"):
            qs = spec.model.objects.filter(tenant=tenant)
            if not options.include_deleted:
                qs = qs.filter(alive(alive_paths(spec, reg)))
            ids[f.target].update(
                qs.filter(**{f"{f.column}__isnull": False})
                .values_list(f.column, flat=True)
                .distinct()
            )
    for spec in reversed(reg.master_tables):  # dependents first, so closure needs one pass
        for f in spec.fields_of_kind("master_fk"):
            if ids[spec.name]:
                ids[f.target].update(
                    spec.model.objects.filter(
                        pk__in=ids[spec.name], **{f"{f.column}__isnull": False}
                    ).values_list(f.column, flat=True)
                )
    return ids


def export_tenant(
    tenant: Tenant,
    out: BinaryIO,
    *,
    options: ExportOptions | None = None,
    actor: Any = None,
    progress: Progress | None = None,
    rows_written: Progress | None = None,
    encryption: Encryption | None = None,
) -> ExportResult:
    """Write the tenant's backup document to `out`; record the export in the audit log.
    `encryption`: how `out` encrypts what it is given (`streams.open_output`); only then does
    the document carry the secrets."""
    result = ExportResult()
    options = options or ExportOptions()
    chunks = _archived(
        _document(tenant, options, (progress, rows_written), result, encryption), options, result
    )
    for chunk in _audited(chunks, tenant, options, actor, result, encryption):
        out.write(chunk)
    return result


def iter_export(
    tenant: Tenant,
    *,
    options: ExportOptions | None = None,
    actor: Any = None,
    compress: bool = False,
    encryption: Encryption | None = None,
) -> Iterator[bytes]:
    """The backup document as a stream of byte chunks (gzip when `compress`, then age-encrypted
    when `encryption` says to whom), for a streamed HTTP response; the export is recorded in the
    audit log when the last chunk is produced, or as incomplete when the stream stops before.
    With `include_files`, the archive of the document and the files, which compresses the
    document itself (`compress` is not used)."""
    options = options or ExportOptions()
    result = ExportResult()
    chunks = _archived(
        _document(tenant, options, (None, None), result, encryption), options, result
    )
    if compress and not options.include_files:
        chunks = _gzipped(chunks)
    if encryption is not None:
        chunks = encrypted_chunks(chunks, encryption)
    yield from _audited(chunks, tenant, options, actor, result, encryption)


def download_name(
    slug: str, options: ExportOptions, *, compress: bool, encrypted: bool
) -> tuple[str, str]:
    """(file name, content type) of a downloaded export, as `iter_export` writes it."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    if options.include_files:
        name, content_type = f"{slug}-backup-{stamp}.zip", "application/zip"
    elif compress:
        name, content_type = f"{slug}-backup-{stamp}.json.gz", "application/gzip"
    else:
        name, content_type = f"{slug}-backup-{stamp}.json", "application/json"
    return (name + ".age", "application/octet-stream") if encrypted else (name, content_type)


def _archived(
    document: Iterator[bytes], options: ExportOptions, result: ExportResult
) -> Iterator[bytes]:
    if not options.include_files:
        return document
    return archive_chunks(document, lambda: file_chunks(result.files))


def _gzipped(chunks: Iterator[bytes]) -> Iterator[bytes]:
    # wbits 31: a gzip stream whose header carries no time, so the same data gives the same bytes.
    zipper = zlib.compressobj(6, zlib.DEFLATED, 31)
    pending: list[bytes] = []
    size = 0
    for chunk in chunks:
        pending.append(zipper.compress(chunk))
        size += len(pending[-1])
        if size >= 1 << 16:
            yield b"".join(pending)
            pending, size = [], 0
    pending.append(zipper.flush())
    yield b"".join(pending)


def _metadata(tenant: Tenant, options: ExportOptions, secrets: bool) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "exported_at": encode_datetime(dt.datetime.now(dt.UTC)),
        "tenant": {"id": str(tenant.pk), "name": tenant.name, "slug": tenant.slug},
        "app_version": app_version(),
        "options": asdict(options),
        "secrets": secrets,
    }


def _master_rows(
    reg: Registry, master_ids: dict[str, set[Any]], result: ExportResult
) -> Iterator[tuple[str, Iterator[bytes]]]:
    for spec in reg.master_tables:
        qs = (
            spec.model.objects.filter(pk__in=master_ids[spec.name])
            .order_by("pk")
            .values_list(*(f.column for f in spec.fields))
        )
        result.master_statistics[spec.name] = len(master_ids[spec.name])
        yield spec.name, _written(spec, qs)


def _tenant_rows(
    reg: Registry,
    tenant: Tenant,
    tables: list[TableSpec],
    options: ExportOptions,
    database_json: tuple[ModuleType | None, RowBlocks | None],
    result: ExportResult,
    reports: Reports,
) -> Iterator[tuple[str, Iterator[bytes]]]:
    """Each table's rows as blocks of JSON lines: written by the database itself when its
    module (`database_json`) supports the table, else by Python."""
    own, row_blocks = database_json
    for spec in tables:
        qs = table_queryset(tenant, spec, options, reg)
        if own is not None and row_blocks is not None and own.supports(spec):
            blocks = row_blocks(spec, qs)
        else:
            blocks = _written(spec, qs)
        yield spec.name, _counted(spec, blocks, result, reports)


def _counted(
    spec: TableSpec, blocks: Iterator[bytes], result: ExportResult, reports: Reports
) -> Iterator[bytes]:
    progress, rows_written = reports
    count = 0
    try:
        for block in blocks:
            rows = block.count(b"\n") + 1
            count += rows
            result.rows_sent += rows
            if rows_written:
                rows_written(spec.name, rows)
            yield block
    except ExportFailed as exc:
        raise ExportFailed(f"Table '{spec.name}': {exc.message}.") from None
    result.statistics[spec.name] = count
    if progress:
        progress(spec.name, count)


def _document(
    tenant: Tenant,
    options: ExportOptions,
    reports: Reports,
    result: ExportResult,
    encryption: Encryption | None = None,  # how the document leaves encrypted
) -> Iterator[bytes]:
    # Secrets travel only in an encrypted backup, where they are values like any other.
    secrets = encryption is not None
    reg = registry(with_secrets=secrets)
    tables = exported_tables(options, reg)
    with export_transaction():
        yield _section("metadata", _metadata(tenant, options, secrets), first=True)
        yield _section("schema", schema_section(reg, tables))
        master_ids = _master_ids(tenant, tables, options, reg)
        yield from _tables("master_data", _master_rows(reg, master_ids, result))
        with ExitStack() as stack:
            # The fast path: the database writes each row's JSON itself (SQLite's fills a cache
            # first).
            own = dialect().export_rows()
            blocks = stack.enter_context(own.exporting(tenant, tables, reg)) if own else None
            # Not kept in a name: a stopped export must close the rows' cursors before the
            # stack drops what they read from.
            yield from _tables(
                "tenant_data",
                _tenant_rows(reg, tenant, tables, options, (own, blocks), result, reports),
            )
        if options.include_files:
            result.files = listed_files(
                (f, exported_rows(tenant, spec, options, reg))
                for spec in tables
                for f in spec.fields
                if f.type == "file"
            )
            yield _section("files", [entry.listed() for _storage, entry in result.files])
        yield _section("statistics", result.statistics) + b"}\n"


def _audited(
    chunks: Iterator[bytes],
    tenant: Tenant,
    options: ExportOptions,
    actor: Any,
    result: ExportResult,
    encryption: Encryption | None,
) -> Iterator[bytes]:
    """The export's chunks, recorded in the audit log once they end: complete, or cut off (the
    download stopped, or the export failed) with the rows sent so far."""
    stopped: BaseException | None = None
    try:
        yield from chunks
    except BaseException as exc:  # GeneratorExit too: the client went away
        stopped = exc
        raise
    finally:
        details: dict[str, Any] = {
            "outcome": "complete" if stopped is None else "incomplete",
            "options": asdict(options),
            "statistics": result.statistics,
            **({"files": len(result.files)} if options.include_files else {}),
            **(encryption.describe() if encryption else {}),
        }
        if stopped is not None:
            details["rows_sent"] = result.rows_sent
            details["stopped_by"] = (
                "the download was stopped"
                if isinstance(stopped, GeneratorExit)
                else getattr(stopped, "message", None) or f"{type(stopped).__name__}: {stopped}"
            )
        try:
            record(tenant, "backup.export", actor=actor, details=details)
        except Exception:  # never in place of why the export stopped
            log.exception("The export of tenant %s could not be audited", tenant.slug)
