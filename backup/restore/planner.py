"""What an import would do, computed by the database from the staging tables.

For each table, in dependency order: duplicate ids, references resolved (to a row of the file or,
in merge mode, of this tenant, never of another tenant) and remapped to the ids the referenced rows
will have, rows matched to existing rows (merge: by id, then by natural key), conflicts, and each
row classified as create, update or unchanged. Nothing here writes to a tenant table.
"""

from typing import Any

from django.db import connection

from backup.db.dialect import dialect
from backup.db.sql import q
from backup.registry import FieldSpec, Registry, TableSpec, alive, alive_paths
from backup.restore.options import Mode, merged, replaced
from backup.restore.report import ProblemLog, TableCounts, display, row_label
from backup.restore.row_layout import row_layout
from backup.restore.staging import ACTION, BAD, CREATE, POS, TARGET, UPDATE, StagingTable


class TenantRows:
    """The rows a file is matched against: the tenant's own, in its tables."""

    def __init__(self, tenant_db_id: Any) -> None:
        self.tid = tenant_db_id

    def table(self, spec: TableSpec) -> str:
        return q(spec.db_table)

    def owned(self, alias: str) -> tuple[str, list[Any]]:
        return f"{alias}.{q('tenant_id')} = %s", [self.tid]


class StagedRows:
    """Another backup's rows, in its staging tables (a comparison of two files): they are all
    one tenant's, and every table has a staging table, empty when the file has no rows."""

    def __init__(self, stages: dict[str, StagingTable], present: set[str]) -> None:
        """`present`: the tables the backup carries (the others' staging tables are empty)."""
        self.stages = stages
        self.present = present

    def table(self, spec: TableSpec) -> str:
        return self.stages[spec.name].sql_name

    def owned(self, alias: str) -> tuple[str, list[Any]]:
        return "1 = 1", []


def compared_fields(spec: TableSpec, ignored: frozenset[str] = frozenset()) -> list[FieldSpec]:
    """The fields whose values make two matched rows differ."""
    return [f for f in spec.fields if f.kind != "id" and f.name not in ignored]


def unique_in_database(spec: TableSpec) -> bool:
    """Whether the natural key constraint refuses exactly what the check of keys in the file
    reports (a partial constraint, or a nullable column, whose nulls never clash, would not)."""
    constraint = spec.model.natural_key_constraint()
    nullable = any(spec.field_map[name].null for name in spec.natural_key)
    return constraint is not None and constraint.condition is None and not nullable


class Planner:
    def __init__(
        self,
        *,
        reg: Registry,
        mode: Mode,
        tenant_db_id: Any,
        tenant_slug: str,
        stages: dict[str, StagingTable],
        problems: ProblemLog,
        file_has_deleted: bool = True,
        rely_on_constraints: bool = False,
        existing: TenantRows | StagedRows | None = None,
        compare: bool = False,
        ignored: frozenset[str] = frozenset(),
    ) -> None:
        """`rely_on_constraints`: leave out, for the tables a replace deletes and loads, the
        checks that their unique constraints make again on write; the caller checks everything
        again when the write fails. `existing`: the rows a merge matches the file's to (the
        tenant's by default). `compare`: a comparison, which writes nothing: what only a write
        could trip over is not checked, and append-only tables are compared too; `ignored`:
        fields it leaves out."""
        self.reg = reg
        self.mode = mode
        self.rely_on_constraints = rely_on_constraints
        self.file_has_deleted = file_has_deleted
        self.tid = tenant_db_id
        self.existing = existing or TenantRows(tenant_db_id)
        self.compare = compare
        self.ignored = ignored
        self.slug = tenant_slug
        self.stages = stages
        self.problems = problems

    # -- helpers -----------------------------------------------------------------------------
    def _rows(self, sql: str, params: list[Any] | tuple = ()) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def _exec(self, sql: str, params: list[Any] | tuple = ()) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    def _key_columns(self, spec: TableSpec) -> list[str]:
        return [spec.field_map[name].column for name in spec.natural_key]

    def _report(self, spec: TableSpec, sql: str, params: list[Any], field: str, message) -> None:
        """Run a query whose rows are (position, *natural key, *details) and log each."""
        if not self.problems.remaining:
            # The list is full: only whether there is more is worth a query, not the count.
            if self._rows(f"{sql} LIMIT 1", params):
                self.problems.total += 1
            return
        keys = list(spec.natural_key)
        for row in self._rows(f"{sql} LIMIT {self.problems.remaining + 1}", params):
            position, key, rest = row[0], row[1 : 1 + len(keys)], row[1 + len(keys) :]
            label = row_label(position, dict(zip(keys, key, strict=True)))
            self.problems.add(spec.name, label, field, message(*(display(v) for v in rest)))

    def _select_label(self, spec: TableSpec, alias: str = "s") -> str:
        cols = [f"{alias}.{q(POS)}", *(f"{alias}.{q(c)}" for c in self._key_columns(spec))]
        return ", ".join(cols)

    # -- the plan ----------------------------------------------------------------------------
    def plan(self, spec: TableSpec) -> TableCounts:
        stage = self.stages[spec.name]
        # A replaced table's rows are all inserted under their own ids: its primary key refuses
        # an id twice or another tenant's id, its natural key constraint a key twice.
        constrained = self.rely_on_constraints and replaced(self.mode, spec)
        if not constrained:
            self._check_ids_twice(spec, stage)
        for f in spec.fields_of_kind("tenant_fk"):
            self._resolve_reference(spec, stage, f.column, f.name, f.target)
        if merged(self.mode, spec):
            self._match(spec, stage)
        # else every row was staged as a creation: with a fresh id (new tenant) or its own.
        if self.mode != Mode.NEW_TENANT and not constrained and not self.compare:
            self._check_ids_elsewhere(spec, stage)
        if not (constrained and unique_in_database(spec)):
            self._check_keys_twice(spec, stage)
        self._classify(spec, stage)
        if merged(self.mode, spec) and not self.compare:
            self._check_matches(spec, stage)
        return self._counts(spec, stage)

    def check_file(self, spec: TableSpec) -> None:
        """Only what the file's own rows must satisfy: no id twice, no natural key twice."""
        stage = self.stages[spec.name]
        self._check_ids_twice(spec, stage)
        self._check_keys_twice(spec, stage)

    def secrets_cleared(self, spec: TableSpec) -> int:
        """How many of the table's rows planned as updated lose the secret they have here,
        because the file changes where it is sent (`writes._update` clears it)."""
        if not merged(self.mode, spec) or spec.append_only:
            return 0
        stage, table = self.stages[spec.name], q(spec.db_table)
        cleared = 0
        for secret in row_layout(spec).secrets:
            moved = " OR ".join(
                dialect().distinct(f"t.{q(c)}", f"s.{q(c)}") for c in secret.destination
            )
            if moved:
                cleared += self._rows(
                    f"SELECT COUNT(*) FROM {stage.sql_name} s JOIN {table} t "
                    f"ON t.id = s.{q(TARGET)} WHERE s.{q(ACTION)} = %s AND ({moved}) "
                    f"AND {dialect().distinct(f't.{q(secret.column)}', '%s')}",
                    [UPDATE, secret.cleared],
                )[0][0]
        return cleared

    def _check_ids_twice(self, spec: TableSpec, stage: StagingTable) -> None:
        # One grouping of the ids, not a look-up per row, which would take far longer.
        S = stage.sql_name
        self._report(
            spec,
            f"SELECT {self._select_label(spec)}, s.id, d.first FROM {S} s JOIN (SELECT "
            f"id, MIN({q(POS)}) AS first FROM {S} GROUP BY id HAVING COUNT(*) > 1) d "
            f"ON d.id = s.id WHERE s.{q(POS)} > d.first ORDER BY s.{q(POS)}",
            [],
            "id",
            lambda value, first: f"id {value} already appears in row {first}",
        )

    def _check_ids_elsewhere(self, spec: TableSpec, stage: StagingTable) -> None:
        # Only a row created under its own id can take another tenant's id: one matched by id
        # was found in this tenant, and ids are unique.
        S, T = stage.sql_name, q(spec.db_table)
        self._report(
            spec,
            f"SELECT {self._select_label(spec)}, s.id FROM {S} s WHERE s.{q(TARGET)} = s.id "
            f"AND s.{q(ACTION)} = %s "
            f"AND EXISTS (SELECT 1 FROM {T} t WHERE t.id = s.id AND t.{q('tenant_id')} <> %s)",
            [CREATE, self.tid],
            "id",
            lambda value: f"id {value} is already used by a row outside this tenant",
        )

    def _check_keys_twice(self, spec: TableSpec, stage: StagingTable) -> None:
        keys = self._key_columns(spec)
        self._report(
            spec,
            "SELECT "
            + ", ".join([f"MIN({q(POS)})", *(q(c) for c in keys)])
            + f", COUNT(*) FROM {stage.sql_name} WHERE NOT {q(BAD)}"
            + (f" GROUP BY {', '.join(q(c) for c in keys)}" if keys else "")
            + " HAVING COUNT(*) > 1",
            [],
            ", ".join(spec.natural_key) or "tenant",
            lambda count: f"the natural key appears {count} times in the file",
        )

    def _check_matches(self, spec: TableSpec, stage: StagingTable) -> None:
        S, T = stage.sql_name, q(spec.db_table)
        # Only matching by natural key can send two rows to one target: elsewhere targets are
        # the rows' own ids (duplicates reported above) or fresh ones.
        self._report(
            spec,
            f"SELECT {self._select_label(spec)}, s.{q(TARGET)} FROM {S} s WHERE s.{q(TARGET)} "
            f"IN (SELECT {q(TARGET)} FROM {S} WHERE {q(TARGET)} IN (SELECT {q(TARGET)} "
            f"FROM {S} WHERE {q(TARGET)} <> id) GROUP BY {q(TARGET)} HAVING COUNT(*) > 1)",
            [],
            "id",
            lambda target: f"several rows of the file match the same existing row {target}",
        )
        key_match = " AND ".join(f"t.{q(c)} = s.{q(c)}" for c in self._key_columns(spec))
        # A merged row left unchanged has its target's natural key, which the unique
        # constraint keeps from any other row: only created and updated rows can collide.
        compared = self.mode == Mode.MERGE and not spec.append_only
        self._report(
            spec,
            f"SELECT {self._select_label(spec)}, t.id FROM {S} s JOIN {T} t "
            f"ON t.{q('tenant_id')} = %s"
            + (f" AND {key_match}" if key_match else "")
            + f" AND t.id <> s.{q(TARGET)} WHERE NOT s.{q(BAD)}"
            + (f" AND s.{q(ACTION)} IS NOT NULL" if compared else ""),
            [self.tid],
            ", ".join(spec.natural_key) or "tenant",
            lambda other: (
                f"the natural key already belongs to another row ({other}) of this tenant"
            ),
        )

    def _resolve_reference(
        self, spec: TableSpec, stage: StagingTable, column: str, field: str, target: str
    ) -> None:
        S = stage.sql_name
        target_stage = self.stages.get(target)
        in_file = (
            f"EXISTS (SELECT 1 FROM {target_stage.sql_name} r WHERE r.id = s.{q(column)})"
            if target_stage
            else "1 = 0"
        )
        params: list[Any] = []
        in_tenant = "1 = 0"
        if self.mode == Mode.MERGE:
            owned, params = self.existing.owned("r")
            in_tenant = (
                f"EXISTS (SELECT 1 FROM {self.existing.table(self.reg.table(target))} r "
                f"WHERE r.id = s.{q(column)} AND {owned})"
            )
        where = (
            "in this backup"
            if self.mode != Mode.MERGE
            else f"in this backup or in tenant '{self.slug}'"
        )
        self._report(
            spec,
            f"SELECT {self._select_label(spec)}, s.{q(column)} FROM {S} s "
            f"WHERE s.{q(column)} IS NOT NULL AND NOT {in_file} AND NOT {in_tenant}",
            params,
            field,
            lambda value: f"refers to {target} {value}, which does not exist {where}",
        )
        if target_stage and merged(self.mode, self.reg.table(target)):
            # Point at the id the referenced row will have (it differs when it was matched by
            # natural key, which only a merged table's rows are: a replaced table's keep their
            # own). In a new tenant every referenced row has a new id: the insert joins them
            # (`writes._insert`) rather than every staged reference rewritten.
            R = target_stage.sql_name
            self._exec(
                f"UPDATE {S} SET {q(column)} = (SELECT r.{q(TARGET)} FROM {R} r "
                f"WHERE r.id = {S}.{q(column)}) WHERE EXISTS (SELECT 1 FROM {R} r "
                f"WHERE r.id = {S}.{q(column)} AND r.{q(TARGET)} <> r.id)"
            )

    def _match(self, spec: TableSpec, stage: StagingTable) -> None:
        S, T = stage.sql_name, self.existing.table(spec)
        owned, params = self.existing.owned("t")
        # Rows were staged with their own id as target; only those whose id is not one of this
        # tenant's (new rows, rows known here under another id) are rewritten, so a merge of
        # a million known rows does not rewrite a million staged ones.
        self._exec(
            f"UPDATE {S} SET {q(TARGET)} = NULL WHERE NOT EXISTS "
            f"(SELECT 1 FROM {T} t WHERE t.id = {S}.id AND {owned})",
            params,
        )
        keys = self._key_columns(spec)
        key_match = "".join(f" AND t.{q(c)} = {S}.{q(c)}" for c in keys)
        self._exec(
            f"UPDATE {S} SET {q(TARGET)} = (SELECT t.id FROM {T} t WHERE {owned}"
            f"{key_match}) WHERE {q(TARGET)} IS NULL AND NOT {q(BAD)}",
            params,
        )
        self._exec(
            f"UPDATE {S} SET {q(TARGET)} = id, {q(ACTION)} = %s WHERE {q(TARGET)} IS NULL",
            [CREATE],
        )

    def _classify(self, spec: TableSpec, stage: StagingTable) -> None:
        S, T = stage.sql_name, self.existing.table(spec)
        if not merged(self.mode, spec):
            return  # staged as creations
        compared = [f.column for f in compared_fields(spec, self.ignored)]
        if not self.file_has_deleted and not spec.append_only:
            self._keep_references_to_hidden_rows(spec, stage)
        if (spec.append_only and not self.compare) or not compared:
            return  # matched rows stay as they are
        # Only the rows that differ are marked; a matched row left unmarked is unchanged.
        differs = " OR ".join(dialect().distinct(f"t.{q(c)}", f"{S}.{q(c)}") for c in compared)
        self._exec(
            f"UPDATE {S} SET {q(ACTION)} = %s FROM {T} t WHERE t.id = {S}.{q(TARGET)} "
            f"AND {S}.{q(ACTION)} IS NULL AND ({differs})",
            [UPDATE],
        )

    def _keep_references_to_hidden_rows(self, spec: TableSpec, stage: StagingTable) -> None:
        """A backup without soft-deleted rows writes an optional reference to one as null; that
        null says nothing about the reference, so merge keeps the one the row has here."""
        S, T = stage.sql_name, q(spec.db_table)
        reg = self.reg
        for f in spec.fields_of_kind("tenant_fk"):
            paths = alive_paths(reg.table(f.target), reg) if f.null else []
            if not paths:
                continue
            hidden, params = (
                reg.table(f.target)
                .model.objects.filter(tenant_id=self.tid)
                .exclude(alive(paths))
                .values("pk")
                .query.sql_with_params()
            )
            self._exec(
                f"UPDATE {S} SET {q(f.column)} = (SELECT t.{q(f.column)} FROM {T} t "
                f"WHERE t.id = {S}.{q(TARGET)}) WHERE {q(f.column)} IS NULL AND {q(ACTION)} "
                f"IS NULL AND EXISTS (SELECT 1 FROM {T} t WHERE t.id = {S}.{q(TARGET)} "
                f"AND t.{q(f.column)} IN ({hidden}))",
                list(params),
            )

    def _counts(self, spec: TableSpec, stage: StagingTable) -> TableCounts:
        counts = TableCounts(in_file=stage.rows)
        for action, count in self._rows(
            f"SELECT {q(ACTION)}, COUNT(*) FROM {stage.sql_name} GROUP BY {q(ACTION)}"
        ):
            if action == CREATE:
                counts.create = count
            elif action == UPDATE:
                counts.update = count
            else:
                counts.unchanged = count
        return counts
