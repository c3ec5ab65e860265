"""Temporary tables that hold a backup's rows inside the import transaction.

Every tenant table of the file is loaded into a staging table of the same columns (plus the row's
position, whether it failed validation, the id it will have and what will happen to it), so that
references, matching and the preview are computed by the database in a few set-based statements
and Python memory does not grow with the tenant. Loading is the only part that differs by
database: COPY on PostgreSQL, batched inserts elsewhere.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import UUIDField
from psycopg.copy import QueuedLibpqWriter

from backup.registry import TableSpec

BATCH_ROWS = 5000

# Bookkeeping columns in front of the table's own.
POS, BAD, TARGET, ACTION = "_pos", "_bad", "_target", "_action"
CREATE, UPDATE = "c", "u"  # a row planned as neither is unchanged


# A random (version 4) UUID made by the database for each row as it is loaded, next to the
# rest of the row's work: made in Python, `uuid.uuid4()` alone cost 1.5 us a row.
_RANDOM_UUID = {
    "postgresql": "gen_random_uuid()",
    "sqlite": (
        "(lower(hex(randomblob(6)) || '4' || substr(hex(randomblob(2)), 2) "
        "|| substr('89ab', 1 + abs(random() % 4), 1) || substr(hex(randomblob(8)), 2)))"
    ),
}


def q(name: str) -> str:
    return connection.ops.quote_name(name)


def distinct(left: str, right: str) -> str:
    """SQL that is true when two values differ, nulls included."""
    op = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    return f"{left} {op} {right}"


class StagingTable:
    def __init__(self, spec: TableSpec, *, fresh_ids: bool = False) -> None:
        """`fresh_ids`: every row's target is a new random UUID, given by the database (the
        rows are loaded without one)."""
        self.spec = spec
        self.name = f"_stage_{spec.name}"
        self.sql_name = q(self.name)
        pk = spec.model._meta.pk
        target_type = pk.db_type(connection)
        if fresh_ids:
            assert isinstance(pk, UUIDField), f"{spec.name}: fresh ids need a UUID primary key"
            target_type += f" DEFAULT {_RANDOM_UUID[connection.vendor]}"
        self.columns: list[tuple[str, str]] = [
            (POS, "integer"),
            (BAD, "boolean"),
            (TARGET, target_type),
            (ACTION, "varchar(1)"),
        ]
        for f in spec.fields:
            self.columns.append((f.column, f.model_field.db_type(connection)))
        for secret in spec.secrets:
            self.columns.append((secret.present_field, "boolean"))
        self.loaded_columns = [
            name for name, _type in self.columns if not (fresh_ids and name == TARGET)
        ]
        self.rows = 0

    def create(self) -> None:
        ddl = ", ".join(f"{q(name)} {db_type}" for name, db_type in self.columns)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.sql_name}")
            cursor.execute(f"CREATE TEMPORARY TABLE {self.sql_name} ({ddl})")

    def load(self, rows: Iterable[Sequence[Any]], *, streaming: bool = True) -> None:
        """Rows in `loaded_columns` order, already prepared for the database."""
        self.rows += write_rows(self.sql_name, self.loaded_columns, rows, streaming=streaming)

    def analyze(self, *, index: bool) -> None:
        """Once loaded: statistics for the planner and, for a table that others refer to, an
        index on the ids, which their references are joined on."""
        with connection.cursor() as cursor:
            if index:
                cursor.execute(f"CREATE INDEX {q(self.name + '_id')} ON {self.sql_name} (id)")
            if connection.vendor == "postgresql":
                cursor.execute(f"ANALYZE {self.sql_name}")

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.sql_name}")


def write_rows(
    table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, streaming: bool = True
) -> int:
    """Write rows (in `columns` order, prepared for the database) into `table` (quoted); returns
    how many.

    On PostgreSQL the rows are streamed into one COPY, unless producing them runs queries
    (`streaming=False`): a connection cannot query while a COPY is open, so they are gathered in
    batches and each batch copied. Elsewhere they are inserted in batches."""
    if connection.vendor == "postgresql" and streaming:
        return _copy(table, columns, rows)
    write = _copy if connection.vendor == "postgresql" else _insert
    written = 0
    batch: list[Sequence[Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            written += write(table, columns, batch)
            batch = []
    if batch:
        written += write(table, columns, batch)
    return written


def copy_statement(table: str, columns: Sequence[str]) -> str:
    """COPY of rows into `table` (quoted), given in `columns` order."""
    return f"COPY {table} ({', '.join(q(c) for c in columns)}) FROM STDIN"


def _copy(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    # One COPY for the whole table; the queued writer sends the data from its own thread, so
    # PostgreSQL takes in rows while Python is still reading and checking the next ones.
    written = 0
    statement = copy_statement(table, columns)
    # Raw psycopg: its errors become Django's (an `IntegrityError` on a duplicate key, say).
    with connection.wrap_database_errors, connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(statement, writer=QueuedLibpqWriter(raw)) as copy:
            for row in rows:
                copy.write_row(row)
                written += 1
    return written


def _insert(table: str, columns: Sequence[str], batch: list[Sequence[Any]]) -> int:
    marks = ", ".join(["%s"] * len(columns))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({', '.join(q(c) for c in columns)}) VALUES ({marks})", batch
        )
    return len(batch)
