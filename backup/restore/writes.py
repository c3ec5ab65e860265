"""A plan carried out: the staging tables' rows written into the tenant tables, set-based."""

from typing import Any

from django.db import connection

from backup.db.dialect import dialect
from backup.db.sql import q
from backup.registry import Registry, TableSpec
from backup.restore.options import Mode, replaced
from backup.restore.row_layout import row_layout
from backup.restore.staging import ACTION, CREATE, TARGET, UPDATE, StagingTable


def write_plan(
    reg: Registry, mode: Mode, stages: dict[str, StagingTable], tid: Any, *, deleted: bool
) -> None:
    """Write the planned rows of the staging tables into the tenant tables: a replace first
    deletes the tenant's rows (unless a direct load did, `deleted`), then every table's rows
    planned as created are inserted and those planned as updated are updated."""
    with connection.cursor() as cursor:
        for spec in reversed(reg.tenant_tables):
            if replaced(mode, spec) and not deleted:
                cursor.execute(f"DELETE FROM {q(spec.db_table)} WHERE {q('tenant_id')} = %s", [tid])
        for spec in reg.tenant_tables:
            stage = stages.get(spec.name)
            if stage is None:
                continue
            _insert(cursor, mode, stages, spec, stage, tid)
            _update(cursor, spec, stage)


def _insert(
    cursor: Any,
    mode: Mode,
    stages: dict[str, StagingTable],
    spec: TableSpec,
    stage: StagingTable,
    tid: Any,
) -> None:
    layout = row_layout(spec)
    values = [f"s.{q(TARGET)}", "%s"]
    joins = []
    flags = {s.flag: s for s in layout.secrets}
    for f in spec.fields[1:]:
        referred = stages.get(f.target) if f.kind == "tenant_fk" else None
        if mode == Mode.NEW_TENANT and referred is not None:
            # The new id of the row referred to (`Planner._resolve_reference`).
            alias = f"r{len(joins)}"
            joins.append(f" LEFT JOIN {referred.sql_name} {alias} ON {alias}.id = s.{q(f.column)}")
            values.append(f"{alias}.{q(TARGET)}")
        elif f.name in flags:
            values.append(f"(s.{q(f.column)} OR s.{q(flags[f.name].present)})")
        else:
            values.append(f"s.{q(f.column)}")
    values += ["%s"] * len(layout.secrets)
    cursor.execute(
        f"INSERT INTO {q(spec.db_table)} ({', '.join(q(c) for c in layout.columns)}) "
        f"SELECT {', '.join(values)} FROM {stage.sql_name} s{''.join(joins)} "
        f"WHERE s.{q(ACTION)} = %s",
        [tid, *(s.cleared for s in layout.secrets), CREATE],
    )


def _update(cursor: Any, spec: TableSpec, stage: StagingTable) -> None:
    columns = [f.column for f in spec.fields if f.kind != "id"]
    if not columns:
        return
    table = q(spec.db_table)
    # Column -> (expression, its parameters); kept secrets are assigned first.
    assignments: dict[str, tuple[str, list[Any]]] = {}
    for secret in row_layout(spec).secrets:
        # A kept secret goes where the row says: when the file moves it elsewhere (another
        # endpoint, user or service), the secret is cleared and flagged for re-entry. The
        # expressions read the row as it was before this UPDATE.
        moved = " OR ".join(
            dialect().distinct(f"{table}.{q(c)}", f"s.{q(c)}") for c in secret.destination
        )
        if not moved:
            continue
        column, flag = q(secret.column), spec.field_map[secret.flag].column
        assignments[secret.column] = (
            f"CASE WHEN {moved} THEN %s ELSE {column} END",
            [secret.cleared],
        )
        assignments[flag] = (
            f"CASE WHEN ({moved}) AND {dialect().distinct(f'{table}.{column}', '%s')} THEN %s "
            f"ELSE s.{q(flag)} END",
            [secret.cleared, True],
        )
    for c in columns:
        assignments.setdefault(c, (f"s.{q(c)}", []))
    sets = ", ".join(f"{q(c)} = {sql}" for c, (sql, _params) in assignments.items())
    cursor.execute(
        f"UPDATE {table} SET {sets} FROM {stage.sql_name} s "
        f"WHERE {table}.id = s.{q(TARGET)} AND s.{q(ACTION)} = %s",
        [*(p for _sql, params in assignments.values() for p in params), UPDATE],
    )
