"""One object per database for everything the engine does differently on it, as Django keeps its
own differences behind `connection.ops` and `connection.features`: `dialect()` is the one place
that asks which database this is.

`Dialect` is the portable base: what any database Django supports does, through plain INSERTs,
with no fast path (an export through the ORM, every value through Django's own preparation, an
applied replace through staging tables). `PostgreSQL` and `SQLite` add what each does faster.
`BACKUP_FAST_PATHS` off leaves them their SQL, locks, session settings and bulk writes, and
takes away the rest (the export's JSON, the text decoders, the direct load).
"""

from collections.abc import Callable, Iterable, Sequence
from functools import cache
from types import ModuleType
from typing import Any, NamedTuple

from django.conf import settings
from django.db import DatabaseError, connection, models, transaction
from psycopg.copy import QueuedLibpqWriter

from backup.db import postgresql_export, sqlite_export
from backup.db.sql import copy_statement, q
from backup.db.writers import BackgroundCopy, BackgroundInsert, BackgroundWriter
from backup.errors import ImportRunning
from backup.format.values import Decoder, text_decoder
from backup.registry import FieldSpec, ValueType

BATCH_ROWS = 5000


class Preparation(NamedTuple):
    """How a checked value is made ready for the database, on the way to a table."""

    call: Callable[[Any], Any]
    text_as_is: bool  # text is already in the stored form (left as it is)


class Dialect:
    name = "portable"
    # SQL giving each row a random (version 4) UUID as it is loaded; None: not offered.
    random_uuid: str | None = None
    # A direct load has its foreign keys checked as each statement ends, so it deletes every
    # table's rows first, referring tables first; otherwise they are checked at the commit only,
    # and each table's rows are deleted just before its own are loaded.
    checks_foreign_keys_while_loading = False
    # The writer thread of a direct load on this database; None: no direct load.
    writer: type[BackgroundWriter] | None = None

    @property
    def fast_paths(self) -> bool:
        """Whether this database's own ways of exporting and loading are on."""
        return False

    @property
    def loads_directly(self) -> bool:
        """Whether an applied replace or new tenant may load straight into the tenant tables."""
        return self.writer is not None and self.fast_paths

    # -- SQL -----------------------------------------------------------------------------------
    def distinct(self, left: str, right: str) -> str:
        """SQL that is true when two values differ, nulls included."""
        return f"{left} IS DISTINCT FROM {right}"

    # -- sessions and locks --------------------------------------------------------------------
    def configure_session(self, *, export: bool = False) -> None:
        """Settings for the current transaction's queries; they end with it."""

    def export_transaction_mode(self) -> str | None:
        """The mode an export's outermost transaction begins in (None: the settings')."""
        return None

    def begin_export(self) -> None:
        """The first statements of an export's outermost transaction."""

    def lock_tenant(self, key: int, slug: str) -> None:
        """Serialise imports of one tenant (`key`: a number of its id), or raise
        `ImportRunning`; the lock ends with the transaction."""

    def analyze(self, table: str) -> None:
        """Statistics for the planner, of a table (quoted) just loaded."""

    # -- bulk writes ---------------------------------------------------------------------------
    def write_rows(
        self,
        table: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        streaming: bool = True,
    ) -> int:
        """Write rows (in `columns` order, prepared for the database) into `table` (quoted);
        returns how many. `streaming`: producing the rows runs no query."""
        return _batched(rows, lambda batch: self._insert(table, columns, batch))

    @staticmethod
    def _insert(table: str, columns: Sequence[str], batch: list[Sequence[Any]]) -> int:
        marks = ", ".join(["%s"] * len(columns))
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(q(c) for c in columns)}) VALUES ({marks})",
                batch,
            )
        return len(batch)

    def background_writer(self) -> BackgroundWriter:
        """A writer of rows from a thread of its own, for a direct load (`loads_directly`)."""
        assert self.writer is not None and self.fast_paths, f"{self.name}: no direct load"
        return self.writer()

    def deferrable_foreign_keys(self, tables: list[str]) -> dict[str, list[str]]:
        """The deferrable foreign keys (quoted names) of the tables (unquoted names), but those
        to the table itself, by table; for a direct load to make them immediate."""
        return {}

    # -- the fast paths: values as text, rows written as JSON ------------------------------------
    def text_decoder(self, spec: FieldSpec) -> Decoder | None:
        """A decoder that hands canonical values to the database as text, or None."""
        return None

    def preparation(
        self, value_type: ValueType, model_field: models.Field, conn: Any
    ) -> Preparation | None:
        """What a checked value (of `value_type`, for `model_field`) needs before it is
        written; None: nothing. The portable answer is Django's own preparation of the value."""
        prep = model_field.get_db_prep_save
        return Preparation(lambda value: prep(value, connection=conn), False)

    def export_rows(self) -> ModuleType | None:
        """The module whose row blocks this database writes as JSON itself, or None."""
        return None


def _batched(rows: Iterable[Sequence[Any]], write: Callable[[list[Sequence[Any]]], int]) -> int:
    written = 0
    batch: list[Sequence[Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            written += write(batch)
            batch = []
    if batch:
        written += write(batch)
    return written


class PostgreSQL(Dialect):
    name = "postgresql"
    random_uuid = "gen_random_uuid()"
    checks_foreign_keys_while_loading = True
    writer = BackgroundCopy

    @property
    def fast_paths(self) -> bool:
        return bool(getattr(settings, "BACKUP_FAST_PATHS", True))

    def configure_session(self, *, export: bool = False) -> None:
        """- `work_mem` is `BACKUP_WORK_MEM`: an export sorts each table by id and an import
          groups and joins its staging tables, and with PostgreSQL's default a large tenant's
          sorts go to temporary files.
        - No JIT compilation: it costs more per query than the expressions it compiles, which
          run in well under a microsecond a row.
        - For an `export`, no planner cost for handing a row from a parallel worker to the
          leader (`parallel_tuple_cost` 0): every row goes to the leader anyway, and the workers
          are what builds the rows' JSON. Otherwise the planner reads a table whose ids follow
          its physical order serially through its primary key to spare the sort, while the
          workers' scan, JSON and sort take less time. A small tenant's queries stay serial:
          starting workers still costs (`parallel_setup_cost`)."""
        values = {"work_mem": getattr(settings, "BACKUP_WORK_MEM", "128MB"), "jit": "off"}
        if export:
            values["parallel_tuple_cost"] = "0"
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(values)),
                [item for pair in values.items() for item in pair],
            )

    def begin_export(self) -> None:
        with connection.cursor() as cursor:  # the transaction's first statement
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        self.configure_session(export=True)

    def lock_tenant(self, key: int, slug: str) -> None:
        wait = int(getattr(settings, "BACKUP_IMPORT_LOCK_WAIT_SECONDS", 10))
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{wait}s'")
            try:
                with transaction.atomic():
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
            except DatabaseError:
                raise ImportRunning(
                    f"Another import of tenant '{slug}' is running; try again when it is done."
                ) from None
            cursor.execute("SET LOCAL lock_timeout = DEFAULT")

    def analyze(self, table: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")

    def write_rows(
        self,
        table: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        streaming: bool = True,
    ) -> int:
        """Rows streamed into one COPY, unless producing them runs queries: a connection cannot
        query while a COPY is open, so they are then gathered in batches and each batch copied."""
        if streaming:
            return self._copy(table, columns, rows)
        return _batched(rows, lambda batch: self._copy(table, columns, batch))

    @staticmethod
    def _copy(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        # The queued writer sends the data from its own thread, so PostgreSQL takes in rows
        # while Python is still reading and checking the next ones.
        written = 0
        # Raw psycopg: its errors become Django's (an `IntegrityError` on a duplicate key, say).
        with connection.wrap_database_errors, connection.cursor() as cursor:
            raw = cursor.cursor
            with raw.copy(copy_statement(table, columns), writer=QueuedLibpqWriter(raw)) as copy:
                for row in rows:
                    copy.write_row(row)
                    written += 1
        return written

    def deferrable_foreign_keys(self, tables: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT t.relname, k.conname FROM pg_constraint k JOIN pg_class t "
                "ON t.oid = k.conrelid WHERE k.contype = 'f' AND k.condeferrable "
                "AND k.conrelid = ANY(%s::regclass[]) AND k.confrelid <> k.conrelid "
                "ORDER BY k.conname",
                [[q(table) for table in tables]],
            )
            for table, name in cursor.fetchall():
                found.setdefault(table, []).append(q(name))
        return found

    def text_decoder(self, spec: FieldSpec) -> Decoder | None:
        return text_decoder(spec, self.name) if self.fast_paths else None

    def preparation(
        self, value_type: ValueType, model_field: models.Field, conn: Any
    ) -> Preparation | None:
        # psycopg sends the decoded Python values as they are, but JSON, which needs its adapter.
        if self.fast_paths and value_type != "json":
            return None
        return super().preparation(value_type, model_field, conn)

    def export_rows(self) -> ModuleType | None:
        return postgresql_export if self.fast_paths else None


# Types whose decoded value Django stores as it is on SQLite.
_SQLITE_AS_IS = frozenset({"string", "file", "integer", "boolean"})

# A random version 4 UUID, as 32 hex digits like Django's own UUIDs on SQLite.
_SQLITE_RANDOM_UUID = (
    "(lower(hex(randomblob(6)) || '4' || substr(hex(randomblob(2)), 2) "
    "|| substr('89ab', 1 + abs(random() % 4), 1) || substr(hex(randomblob(8)), 2)))"
)


class SQLite(Dialect):
    name = "sqlite"
    random_uuid = _SQLITE_RANDOM_UUID
    writer = BackgroundInsert

    @property
    def fast_paths(self) -> bool:
        return bool(getattr(settings, "BACKUP_FAST_PATHS", True))

    def distinct(self, left: str, right: str) -> str:
        return f"{left} IS NOT {right}"

    def export_transaction_mode(self) -> str | None:
        """Deferred, so that its snapshot (in WAL mode, as the settings open it) starts at its
        first read: the settings begin every other transaction IMMEDIATE, so that an import
        never fails upgrading a read lock, and that would hold the write lock for the whole
        download."""
        return "DEFERRED"

    def text_decoder(self, spec: FieldSpec) -> Decoder | None:
        return text_decoder(spec, self.name) if self.fast_paths else None

    def preparation(
        self, value_type: ValueType, model_field: models.Field, conn: Any
    ) -> Preparation | None:
        # Nothing for values Django stores as they are, nor for text from `text_decoder`, which
        # is already in Django's storage form; the rest (values in other forms) as Django would.
        if not self.fast_paths:
            return super().preparation(value_type, model_field, conn)
        if value_type in _SQLITE_AS_IS:
            return None
        prep = model_field.get_db_prep_save
        return Preparation(lambda value: prep(value, connection=conn), value_type != "json")

    def export_rows(self) -> ModuleType | None:
        return sqlite_export if self.fast_paths else None


@cache
def _dialects() -> dict[str, Dialect]:
    return {d.name: d for d in (PostgreSQL(), SQLite())}


def dialect() -> Dialect:
    """The dialect of the default database connection (the portable one for any other)."""
    return _dialects().get(connection.vendor) or _PORTABLE


_PORTABLE = Dialect()
