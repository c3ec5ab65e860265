"""An applied replace or new-tenant restore, loaded straight into the tenant tables.

Through staging tables every row is written twice (into its staging table, then from there into
its tenant table), and the database waits while Python reads the file. Loaded straight into the
tenant table, a row is written once, by a thread of its own while Python reads the next one
(`backup.db.writers`), which makes a replace or a new tenant markedly faster on both databases
(`bench/run.py` measures it against the database's own load).

The load is optimistic. It stops at the first sign of trouble and raises `Retry`: a row with a
problem, a key that a unique constraint refuses, a reference that does not resolve within the
tenant, a foreign key that fails. The caller then rolls everything back and imports again through
the staging tables, which report every problem exactly as the preview does. A file with problems
costs two passes; a good file costs one.

The rows are written with this tenant's id whatever the file says, and a reference counts only
when it points at a row of this tenant. So a crafted file can make the load fail, but it cannot
make it read or write another tenant's rows.

A new tenant's rows get new ids, and the references must follow them without a table of old and
new ids, whose memory would grow with the tenant. So each new id is computed from the old one: the
old id XOR a random 128-bit key drawn for this import, with the version 4 bits set. Two ids of the
file that differ only in those bits would get the same new id; the primary key refuses that and
the import goes through staging tables, where every row gets a random id.
"""

import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.db import IntegrityError, connection

from backup.db.dialect import dialect
from backup.db.sql import q
from backup.db.writers import Statement
from backup.registry import FieldSpec, Registry, TableSpec
from backup.restore.attempts import Retry
from backup.restore.options import Mode, replaced, straight
from backup.restore.report import ProblemLog
from backup.restore.row_layout import row_layout

# Where the values of a staged row start: (position, bad, target, action, *values, *flags), and
# in a new tenant, whose rows are staged without a target, (position, bad, action, ...).
_FIRST_VALUE, _FIRST_VALUE_NEW_TENANT = 4, 3

# The bits of a UUID's integer that say "version 4, RFC 4122 variant" (as `uuid.UUID` sets them).
_VERSION_BITS = (0xF000 << 64) | (0xC000 << 48)
_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)


class DirectLoad:
    def __init__(self, reg: Registry, mode: Mode, tenant_db_id: Any, problems: ProblemLog) -> None:
        self.reg = reg
        self.mode = mode
        self.tid = tenant_db_id
        self.problems = problems
        self.deleted: dict[str, int] = {}  # rows of this tenant deleted, per table
        self.rows: dict[str, int] = {}  # rows loaded, per table
        self.new_id = _new_ids() if mode == Mode.NEW_TENANT else None
        self._writer = dialect().background_writer()
        self._foreign_keys: dict[str, list[str]] = {}  # deferrable ones, quoted, per db_table
        # A database that checks foreign keys at the commit only (SQLite) has each table's rows
        # deleted just before its own are loaded, by the writer, while Python reads on: deleted
        # all first, they kept Python waiting. One that checks them as the rows are written
        # (PostgreSQL) has them all deleted first, referring tables first (see `_immediate`).
        self._to_delete: set[str] = set()  # tables whose rows are deleted as they are loaded

    def start(self) -> None:
        """Delete this tenant's rows of every table a replace loads, referring tables first (on
        SQLite: count them, to delete as each table is loaded), and find the foreign keys that
        `_immediate` makes checked as each table is loaded."""
        delete_first = dialect().checks_foreign_keys_while_loading
        with connection.cursor() as cursor:
            for spec in reversed(self.reg.tenant_tables):
                if not replaced(self.mode, spec):
                    continue
                if delete_first:
                    cursor.execute(*self._delete(spec))
                    self.deleted[spec.name] = cursor.rowcount
                else:
                    cursor.execute(
                        f"SELECT COUNT(*) FROM {q(spec.db_table)} WHERE {q('tenant_id')} = %s",
                        [self.tid],
                    )
                    self.deleted[spec.name] = cursor.fetchone()[0]
                    self._to_delete.add(spec.name)
        if delete_first:
            # Each table's foreign keys but those to itself (a row may refer to a later one).
            loaded = [s.db_table for s in self.reg.tenant_tables if straight(self.mode, s)]
            self._foreign_keys = dialect().deferrable_foreign_keys(loaded)

    def _delete(self, spec: TableSpec) -> Statement:
        return (f"DELETE FROM {q(spec.db_table)} WHERE {q('tenant_id')} = %s", [self.tid])

    def _deletion(self, spec: TableSpec) -> list[Statement]:
        """The deletion of a table's rows before it is loaded, if that is still to do (on
        SQLite, see `__init__`)."""
        if spec.name not in self._to_delete:
            return []
        self._to_delete.remove(spec.name)
        return [self._delete(spec)]

    def _immediate(self, spec: TableSpec) -> list[Statement]:
        """The statement that makes a table's foreign keys checked by each statement that writes
        its rows, from now on (see `backup.db.writers`). Made so when the table is loaded, not
        before: the deletion's own checks wait until then, when the rows deleted from the tables
        it refers to are back, and PostgreSQL, finding a row with the deleted row's id, skips
        looking for rows still referring to it, a good part of a replace's time otherwise."""
        names = self._foreign_keys.get(spec.db_table)
        return [(f"SET CONSTRAINTS {', '.join(names)} IMMEDIATE", [])] if names else []

    def load(self, spec: TableSpec, staged: Iterable[tuple], *, streaming: bool) -> None:
        """Write a table's staged rows (as `row_checks.row_stager` makes them) into the tenant
        table; `Retry` at the first row with a problem."""
        columns, make_row = _row_maker(spec, self.tid, self.new_id)
        problems = self.problems
        if not streaming:
            self.settle()

        def rows() -> Iterator[tuple]:
            for row in staged:
                if row[1] or problems.total:  # an attribute, not a call: once a row
                    raise Retry
                yield make_row(row)

        table, first = q(spec.db_table), self._deletion(spec) + self._immediate(spec)
        if streaming:
            self.rows[spec.name] = self._writer.write(table, columns, rows(), first=first)
            return
        with connection.cursor() as cursor:
            for sql, params in first:
                cursor.execute(sql, params)
        self.rows[spec.name] = dialect().write_rows(table, columns, rows(), streaming=False)

    def settle(self) -> None:
        """Wait until every row loaded is written and its foreign keys checked; until then the
        connection is not to be used. Raises `IntegrityError` for a key refused."""
        self._writer.finish()

    def abort(self) -> None:
        """Stop a load under way (the transaction is then to be rolled back)."""
        self._writer.abort()

    def check(self) -> None:
        """What staging tables would have found in the rows loaded, found in the tenant tables:
        `Retry` when anything is wrong. Duplicate ids, another tenant's ids and natural keys
        twice fail with an `IntegrityError` instead, raised by the unique constraints as the
        rows are written, and on PostgreSQL references to rows that do not exist, by the
        foreign keys."""
        self.settle()
        with connection.cursor() as cursor:
            for name in sorted(self._to_delete):  # tables the file did not have
                for sql, params in self._deletion(self.reg.table(name)):
                    cursor.execute(sql, params)
        for name in self.rows:
            spec = self.reg.table(name)
            for f in spec.fields_of_kind("tenant_fk"):
                self._retry_if(outside_tenant(self.reg, spec, f), [self.tid, self.tid])
        if not dialect().checks_foreign_keys_while_loading:
            # SQLite can check deferred foreign keys before the commit only by scanning whole
            # tables, other tenants' rows too (`PRAGMA foreign_key_check`). The references were
            # checked above and the row checks resolved the rest; what still fails does at the
            # commit, as in an import through staging tables.
            return
        try:
            # Every deferred foreign key checked now rather than at commit, so that one failing
            # is a retry, not an error.
            connection.check_constraints()
        except IntegrityError:
            raise Retry from None

    def _retry_if(self, sql: str, params: list[Any]) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            if cursor.fetchone() is not None:
                raise Retry


def outside_tenant(reg: Registry, spec: TableSpec, f: FieldSpec) -> str:
    """The query finding a row of the tenant (`%s`, twice) whose reference `f` points outside
    it (at another tenant's row): a row or none."""
    table, target, column = q(spec.db_table), q(reg.table(f.target).db_table), q(f.column)
    # NOT IN, planned as one hash of the tenant's ids, whatever the statistics say: they know
    # nothing yet of rows just loaded, and as NOT EXISTS a new tenant's readings were joined by
    # a nested loop over its vehicles.
    return (
        f"SELECT 1 FROM {table} s WHERE s.{q('tenant_id')} = %s "
        f"AND s.{column} IS NOT NULL AND s.{column} NOT IN (SELECT r.id FROM "
        f"{target} r WHERE r.{q('tenant_id')} = %s) LIMIT 1"
    )


def _new_ids() -> Callable[[Any], str]:
    """A new tenant's id for each id of the file (see the module's docstring)."""
    key = secrets.randbits(128) & ~_VERSION_BITS

    def new_id(value: Any) -> str:
        # Canonical text as the file has it, or a `uuid.UUID` decoded from another form.
        old = value.int if type(value) is uuid.UUID else int(value.replace("-", ""), 16)
        return "%032x" % ((old ^ key) & ~_VERSION_BITS | _VERSION_4)

    return new_id


def _row_maker(
    spec: TableSpec, tid: Any, new_id: Callable[[Any], str] | None
) -> tuple[tuple[str, ...], Callable[[tuple], tuple]]:
    """The tenant table's columns, and what makes a staged row one of its rows: the staging
    path's INSERT (`writes._insert`) done in Python, by the same `row_layout`."""
    layout = row_layout(spec)
    first = _FIRST_VALUE if new_id is None else _FIRST_VALUE_NEW_TENANT
    count = len(spec.fields)
    if not layout.secrets and new_id is None:
        return layout.columns, lambda row: (row[first], tid, *row[first + 1 :])
    positions = {f.name: i for i, f in enumerate(spec.fields)}
    # Each flag is set for re-entry when the file says its secret was set (the staged row
    # carries the file's "was set" after the values).
    flags = [(positions[s.flag], first + count + i) for i, s in enumerate(layout.secrets)]
    cleared = [s.cleared for s in layout.secrets]
    ids = [positions[name] for name in layout.ids]

    def make_row(row: tuple) -> tuple:
        values = list(row[first : first + count])
        if new_id is not None:
            for i in ids:
                if values[i] is not None:
                    values[i] = new_id(values[i])
        for flag, present in flags:
            if row[present]:
                values[flag] = True
        return (values[0], tid, *values[1:], *cleared)

    return layout.columns, make_row
