"""A sample of what a previewed import would do: for each table, the first rows it would create,
update (the fields that change, old -> new) and delete, each labelled as problems are (its
position in the file and its natural key). Read from the staging tables once they are planned,
a few rows per table: the counts beside them stay exact at any size."""

from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection

from backup.db.dialect import dialect
from backup.db.sql import q
from backup.registry import Registry, TableSpec
from backup.restore.options import Mode, replaced
from backup.restore.planner import compared_fields
from backup.restore.report import display, row_label
from backup.restore.staging import ACTION, CREATE, POS, TARGET, UPDATE, StagingTable

HIDDEN = "(secret: not shown)"


def sample_rows() -> int:
    return int(getattr(settings, "BACKUP_PREVIEW_SAMPLE_ROWS", 5))


@dataclass
class TableSample:
    create: list[str] = field(default_factory=list)
    # {"row": label, "changes": {field: [old, new]}}
    update: list[dict[str, Any]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.create or self.update or self.delete)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fetch(sql: str, params: list[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _key_columns(spec: TableSpec) -> list[str]:
    return [spec.field_map[name].column for name in spec.natural_key]


def _label(spec: TableSpec, position: Any, key: tuple) -> str:
    return row_label(position, dict(zip(spec.natural_key, key, strict=True)))


def preview_samples(
    reg: Registry, stages: dict[str, StagingTable], mode: Mode, tenant_db_id: Any
) -> dict[str, dict[str, Any]]:
    """A few rows of each kind for every staged table that has any."""
    limit = sample_rows()
    found = {}
    for spec in reg.tenant_tables:
        if spec.name in stages:
            sample = table_sample(spec, stages[spec.name], mode, tenant_db_id, limit)
            if sample:
                found[spec.name] = sample.as_dict()
    return found


def table_sample(
    spec: TableSpec, stage: StagingTable, mode: Mode, tenant_db_id: Any, limit: int
) -> TableSample:
    """The first `limit` rows of each kind, by their position in the file."""
    sample = TableSample()
    if limit <= 0:
        return sample
    S, T = stage.sql_name, q(spec.db_table)
    sample.create = staged_labels(spec, S, CREATE, limit)
    sample.update = updated_rows(spec, S, T, limit)
    if replaced(mode, spec):
        # A replace deletes every row the tenant has in the table, then loads the file's.
        sample.delete = existing_labels(spec, T, f"t.{q('tenant_id')} = %s", [tenant_db_id], limit)
    return sample


def staged_labels(spec: TableSpec, S: str, action: str, limit: int) -> list[str]:
    """The first `limit` staged rows planned as `action`, labelled."""
    key_sql = "".join(f", s.{q(c)}" for c in _key_columns(spec))
    return [
        _label(spec, position, tuple(key))
        for position, *key in _fetch(
            f"SELECT s.{q(POS)}{key_sql} FROM {S} s WHERE s.{q(ACTION)} = %s "
            f"ORDER BY s.{q(POS)} LIMIT {limit}",
            [action],
        )
    ]


def existing_labels(
    spec: TableSpec, T: str, where: str, params: list[Any], limit: int
) -> list[str]:
    """The first `limit` rows of `T` (alias t) that `where` selects, by natural key."""
    keys = [f"t.{q(c)}" for c in _key_columns(spec)] or ["t.id"]
    labels = []
    for key in _fetch(
        f"SELECT {', '.join(keys)} FROM {T} t WHERE {where} ORDER BY {', '.join(keys)} "
        f"LIMIT {limit}",
        params,
    ):
        pairs = zip(spec.natural_key or ("id",), key, strict=True)
        labels.append(", ".join(f"{name}={display(value)!r}" for name, value in pairs))
    return labels


def updated_rows(
    spec: TableSpec, S: str, T: str, limit: int, ignored: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """The first `limit` staged rows planned as updates, each with its fields that differ from
    the row of `T` it targets: {"row": label, "changes": {field: [old, new]}}."""
    compared = compared_fields(spec, ignored)
    if not compared or limit <= 0:
        return []
    key_sql = "".join(f", s.{q(c)}" for c in _key_columns(spec))
    secret = set(getattr(spec.model, "secret_fields", ()))
    # For each field: whether it differs (as the planner decides it), then old and new.
    columns = "".join(
        f", CASE WHEN {dialect().distinct(f't.{q(f.column)}', f's.{q(f.column)}')} "
        f"THEN 1 ELSE 0 END, t.{q(f.column)}, s.{q(f.column)}"
        for f in compared
    )
    updates = []
    width = len(_key_columns(spec))
    for row in _fetch(
        f"SELECT s.{q(POS)}{key_sql}{columns} FROM {S} s JOIN {T} t ON t.id = s.{q(TARGET)} "
        f"WHERE s.{q(ACTION)} = %s ORDER BY s.{q(POS)} LIMIT {limit}",
        [UPDATE],
    ):
        position, key, values = row[0], tuple(row[1 : 1 + width]), row[1 + width :]
        changes = {}
        for index, f in enumerate(compared):
            differs, old, new = values[3 * index : 3 * index + 3]
            if differs:
                shown = [HIDDEN, HIDDEN] if f.name in secret else [display(old), display(new)]
                changes[f.name] = [_plain(v) for v in shown]
        updates.append({"row": _label(spec, position, key), "changes": changes})
    return updates


def _plain(value: Any) -> Any:
    """A value as JSON can carry it (a report is stored and sent as JSON)."""
    if value is None or isinstance(value, bool | int | float | str | dict | list):
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
