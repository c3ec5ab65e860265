"""Streaming export of one tenant to the backup document.

Rows come from the database in chunks and are written as they come; no table is held in memory.
Without `include_deleted`, soft-deleted rows are left out together with the rows that cannot
exist without them (the readings of a deleted vehicle), and optional references to them are
written as null.
"""

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

import orjson
from django.db import connection, transaction
from django.db.models import Case, F, Q, QuerySet, Value, When

from tenants.models import Tenant

from .audit import record
from .document import FORMAT_NAME, FORMAT_VERSION, app_version, schema_section
from .tables import Registry, TableSpec, alive, alive_paths, registry
from .values import encode_datetime, encoder

CHUNK_ROWS = 2000
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class ExportOptions:
    include_audit_logs: bool = False
    include_deleted: bool = False


@dataclass
class ExportResult:
    statistics: dict[str, int] = field(default_factory=dict)
    master_statistics: dict[str, int] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.statistics.values())


def exported_tables(options: ExportOptions, reg: Registry | None = None) -> list[TableSpec]:
    reg = reg or registry()
    return [t for t in reg.tenant_tables if not t.optional or options.include_audit_logs]


def table_queryset(tenant: Tenant, spec: TableSpec, options: ExportOptions) -> QuerySet:
    """The rows of one table that the export writes, as tuples in file field order."""
    reg = registry()
    qs = spec.model.objects.filter(tenant=tenant)
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
    if not options.include_deleted:
        qs = qs.filter(alive(alive_paths(spec, reg)))
    return qs.order_by("pk").values_list(*columns)


def _row_writer(spec: TableSpec) -> Callable[[tuple], bytes]:
    names = spec.file_fields()
    encoders = [encoder(f) for f in spec.fields] + [None] * len(spec.secrets)
    pairs = list(zip(names, encoders, strict=True))
    dumps = orjson.dumps

    def write(row: tuple) -> bytes:
        return dumps(
            {
                name: (value if enc is None or value is None else enc(value))
                for (name, enc), value in zip(pairs, row, strict=True)
            }
        )

    return write


class _DocumentWriter:
    """Writes the document section by section, a table's rows one per line."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out

    def section(self, name: str, value: Any, *, first: bool = False, last: bool = False) -> None:
        prefix = b"{" if first else b",\n"
        self.out.write(prefix + orjson.dumps(name) + b":" + orjson.dumps(value))
        if last:
            self.out.write(b"}\n")

    def tables(self, name: str, tables: Iterator[tuple[str, Iterator[bytes]]]) -> None:
        self.out.write(b",\n" + orjson.dumps(name) + b":{")
        for index, (table, rows) in enumerate(tables):
            self.out.write((b",\n" if index else b"\n") + orjson.dumps(table) + b":[")
            buffer: list[bytes] = []
            separator = b"\n"
            for row in rows:
                buffer.append(row)
                if len(buffer) >= CHUNK_ROWS:
                    self.out.write(separator + b",\n".join(buffer))
                    separator = b",\n"
                    buffer.clear()
            if buffer:
                self.out.write(separator + b",\n".join(buffer))
            self.out.write(b"\n]")
        self.out.write(b"\n}")


def _master_ids(tenant: Tenant, tables: list[TableSpec], options: ExportOptions) -> dict[str, set]:
    """Ids of the master-data rows that the exported tenant rows reference, closed over the
    references between master tables."""
    reg = registry()
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
) -> ExportResult:
    """Write the tenant's backup document to `out`; record the export in the audit log."""
    options = options or ExportOptions()
    reg = registry()
    tables = exported_tables(options, reg)
    result = ExportResult()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            # Must be the transaction's first statement; inside an outer transaction (tests)
            # the caller's snapshot applies instead.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        writer = _DocumentWriter(out)
        writer.section(
            "metadata",
            {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "exported_at": encode_datetime(dt.datetime.now(dt.UTC)),
                "tenant": {"id": str(tenant.pk), "name": tenant.name, "slug": tenant.slug},
                "app_version": app_version(),
                "options": asdict(options),
            },
            first=True,
        )
        writer.section("schema", schema_section(reg, tables))

        master_ids = _master_ids(tenant, tables, options)

        def master_rows() -> Iterator[tuple[str, Iterator[bytes]]]:
            for spec in reg.master_tables:
                write = _row_writer(spec)
                qs = (
                    spec.model.objects.filter(pk__in=master_ids[spec.name])
                    .order_by("pk")
                    .values_list(*(f.column for f in spec.fields))
                )
                result.master_statistics[spec.name] = len(master_ids[spec.name])
                yield spec.name, (write(row) for row in qs.iterator(chunk_size=CHUNK_ROWS))

        writer.tables("master_data", master_rows())

        def tenant_rows() -> Iterator[tuple[str, Iterator[bytes]]]:
            for spec in tables:
                yield spec.name, _counted(spec, table_queryset(tenant, spec, options))

        def _counted(spec: TableSpec, qs: QuerySet) -> Iterator[bytes]:
            write = _row_writer(spec)
            count = 0
            for row in qs.iterator(chunk_size=CHUNK_ROWS):
                count += 1
                yield write(row)
            result.statistics[spec.name] = count
            if progress:
                progress(spec.name, count)

        writer.tables("tenant_data", tenant_rows())
        writer.section("statistics", result.statistics, last=True)

    record(
        tenant,
        "backup.export",
        actor=actor,
        details={"options": asdict(options), "statistics": result.statistics},
    )
    return result
