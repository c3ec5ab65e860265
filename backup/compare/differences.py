"""Per table, once the backup's rows are planned against the other side: the counts of rows the
same, differing and only on one side, and the first few of each. Rows only on the other side are
those no staged row targets, found by the database; nothing grows with the tenant."""

import datetime as dt
from typing import Any

from django.db import connection

from backup.db.dialect import dialect
from backup.db.sql import q
from backup.registry import Registry, TableSpec, alive, alive_paths
from backup.restore.planner import StagedRows, TenantRows
from backup.restore.report import TableCounts
from backup.restore.samples import existing_labels, staged_labels, updated_rows
from backup.restore.staging import CREATE, TARGET, StagingTable

from .report import TableComparison


def _fetch(sql: str, params: list[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


class Conditions:
    """SQL conditions on the other side's rows (alias t), joined by AND, with their params."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []

    def add(self, sql: str, params: list[Any] | tuple = ()) -> None:
        self.parts.append(sql)
        self.params.extend(params)

    def sql(self, *extra: str) -> str:
        return " AND ".join([*self.parts, *extra]) or "1 = 1"


def compare_table(
    spec: TableSpec,
    stage: StagingTable | None,
    planned: TableCounts | None,
    existing: TenantRows | StagedRows,
    *,
    reg: Registry,
    limit: int,
    ignored: frozenset[str] = frozenset(),
    alive_only: bool = False,
    exported_at: dt.datetime | None = None,
) -> TableComparison:
    """`stage`: the backup's rows of the table, and `planned` what the planner made of them
    (both None: it has none). `alive_only`: the backup leaves soft-deleted rows out, so the
    tenant's are not missing from it. `exported_at`: when the backup was made; an append-only
    table's rows the tenant wrote after it are counted apart (`written_since`)."""
    result = TableComparison()
    T, S = existing.table(spec), stage.sql_name if stage is not None else ""
    others = Conditions()
    others.add(*existing.owned("t"))
    if isinstance(existing, TenantRows) and alive_only and (paths := alive_paths(spec, reg)):
        rows = spec.model.objects.filter(tenant_id=existing.tid).filter(alive(paths))
        sql, params = rows.values("pk").query.sql_with_params()
        others.add(f"t.id IN ({sql})", params)
    if stage is not None and planned is not None:
        result.only_new, result.differ, result.same = (
            planned.create,
            planned.update,
            planned.unchanged,
        )
        # The other side's rows no staged row targets: one anti-join, on an index of targets.
        stage.index("target", [TARGET])
        dialect().analyze(S)
        others.add(f"NOT EXISTS (SELECT 1 FROM {S} s WHERE s.{q(TARGET)} = t.id)")
    if isinstance(existing, TenantRows) and spec.appended_at and exported_at is not None:
        f = spec.field_map[spec.appended_at].model_field
        since = f"t.{q(f.column)} > %s"
        value = f.get_db_prep_value(exported_at, connection)
        result.written_since = _count(T, others.sql(since), [*others.params, value])
        others.add(f"NOT ({since})", [value])
    result.only_old = _count(T, others.sql(), others.params)
    if limit > 0:
        if result.only_old:
            result.sample_only_old = existing_labels(spec, T, others.sql(), others.params, limit)
        if result.only_new:  # rows counted only with a stage
            result.sample_only_new = staged_labels(spec, S, CREATE, limit)
        if result.differ:
            result.sample_differ = updated_rows(spec, S, T, limit, ignored)
    return result


def _count(table: str, where: str, params: list[Any]) -> int:
    return _fetch(f"SELECT COUNT(*) FROM {table} t WHERE {where}", params)[0][0]
