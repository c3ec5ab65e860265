"""A direct load's rows written from a thread of its own, while the caller's thread reads on.

A direct load (`backup.restore.direct_load`) writes every row once, straight into its tenant
table. The caller's thread reads and checks the file's rows and queues them in batches; this
thread writes them. The two overlap because the database does its part without holding
Python's interpreter lock.

- PostgreSQL (`BackgroundCopy`): COPY statements of about `CHUNK_ROWS` rows. PostgreSQL checks
  each row's foreign keys with one query per row and reference, about as much work as the insert
  itself. Deferred to the end of the import, those checks ran while Python waited, and PostgreSQL
  queued an event per row and reference until then, its memory growing with the tenant. With the
  foreign keys immediate, a COPY statement checks its own rows when it ends, while the next rows
  are read.
- SQLite (`BackgroundInsert`): one INSERT statement of many rows per batch. `executemany` would
  step once per row, letting go of the interpreter lock and waiting for it again each time: with
  the reading thread busy, each wait lasts Python's switch interval, and a replace took longer
  than with no thread at all.

The thread uses the database connection of the thread that made it (psycopg's and Django's
sqlite3 connections may be used from any thread); the caller must not use the connection until
`finish` or `abort` returned. Memory stays bounded by the queue, whatever the size of the tenant.
"""

import itertools
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from django.db import connection

from backup.db.sql import copy_statement, q

# Rows per COPY statement: when one ends, PostgreSQL checks its rows' foreign keys while the next
# rows are read. Batches of rows are what the threads hand over (on SQLite, one INSERT each), and
# the queue holds enough of them for the reading to go on during a whole statement's check (on
# SQLite, during the deletion of a table's rows before its load).
CHUNK_ROWS = 20_000
BATCH_ROWS = 1_000
QUEUED_BATCHES = 2 * CHUNK_ROWS // BATCH_ROWS

# A statement (SQL with %s placeholders, as Django's cursors take it, and its parameters).
Statement = tuple[str, Sequence[Any]]

_END, _ABORT = object(), object()


class _Batch(NamedTuple):
    statement: str  # as the writer makes it for a table and its columns
    rows: list[Sequence[Any]]


class _Aborted(Exception):
    pass


def _busy(*args: Any) -> None:
    # A query from the caller's thread would wait for the connection the writer holds, while the
    # writer waits for the caller's rows: fail instead of hanging.
    raise RuntimeError("the connection is busy with a background write: call finish() or abort()")


class BackgroundWriter(ABC):
    """The queue, the thread and the hand-over of errors; a database's writer says how it
    writes (`_statement`, `_write`)."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUED_BATCHES)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._item: Any = None

    def write(
        self,
        table: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        first: Sequence[Statement] = (),
    ) -> int:
        """Queue the rows (in `columns` order, prepared for the database) for `table` (quoted),
        after the statements `first`; returns how many rows. A failure of an earlier statement
        is raised here or by `finish`."""
        statement = self._statement(table, columns)
        size = self._batch_rows(columns)
        for each in first:
            self._put(each)
        written = 0
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == size:
                self._put(_Batch(statement, batch))
                written += size
                batch = []
        if batch:
            self._put(_Batch(statement, batch))
            written += len(batch)
        return written

    def finish(self) -> None:
        """Wait until every queued row is written (and, on PostgreSQL, checked); raise what went
        wrong, as Django's error (an `IntegrityError` for a key refused, say)."""
        self._stop(_END)
        error, self._error = self._error, None
        if error is not None:
            with connection.wrap_database_errors:
                raise error

    def abort(self) -> None:
        """Stop writing, leaving what was queued unwritten; the transaction is then to be rolled
        back. Does nothing when there is nothing under way."""
        self._stop(_ABORT)
        self._error = None

    @abstractmethod
    def _statement(self, table: str, columns: Sequence[str]) -> str:
        """What a batch of rows for `table` is written with (the `_Batch`'s statement)."""

    def _batch_rows(self, columns: Sequence[str]) -> int:
        return BATCH_ROWS

    @abstractmethod
    def _write(self, raw: Any, item: Any) -> Any:
        """Write a batch, or run a statement, on the raw connection; returns the next item of
        the queue (`_next`)."""

    def _put(self, item: Statement | _Batch) -> None:
        if self._error is not None:
            self.finish()
        if self._thread is None:
            connection.ensure_connection()
            connection.execute_wrappers.append(_busy)
            self._thread = threading.Thread(
                target=self._run, args=(connection.connection,), name="backup-write", daemon=True
            )
            self._thread.start()
        self._queue.put(item)

    def _stop(self, how: object) -> None:
        if self._thread is not None:
            self._queue.put(how)
            self._thread.join()
            self._thread = None
            connection.execute_wrappers.remove(_busy)

    def _next(self) -> Any:
        # Kept, so that `_run` knows whether the item taken last, where a write failed, was the
        # end.
        self._item = self._queue.get()
        return self._item

    def _run(self, raw: Any) -> None:
        item = self._next()
        try:
            while item is not _END and item is not _ABORT:
                item = self._write(raw, item)
        except _Aborted:
            pass
        except BaseException as exc:  # handed to the caller's thread
            self._error = exc
            # Take what the caller still queues until it stops, so that it never waits on a
            # full queue.
            while self._item is not _END and self._item is not _ABORT:
                self._next()


class BackgroundCopy(BackgroundWriter):
    """PostgreSQL: the rows of consecutive batches for one table in one COPY statement, until it
    holds `CHUNK_ROWS` rows."""

    def _statement(self, table: str, columns: Sequence[str]) -> str:
        return copy_statement(table, columns)

    def _write(self, raw: Any, item: Any) -> Any:
        with raw.cursor() as cursor:
            if type(item) is not _Batch:
                cursor.execute(item[0], item[1] or None)
                return self._next()
            statement, written = item.statement, 0
            with cursor.copy(statement) as copy:
                while True:
                    for row in item.rows:
                        copy.write_row(row)
                    written += len(item.rows)
                    item = self._next()
                    if item is _ABORT:
                        raise _Aborted  # ends the COPY as failed, at once
                    if (
                        item is _END
                        or type(item) is not _Batch
                        or item.statement != statement
                        or written >= CHUNK_ROWS
                    ):
                        return item


class BackgroundInsert(BackgroundWriter):
    """SQLite: each batch in one INSERT of many rows, within SQLite's limit of parameters."""

    def __init__(self) -> None:
        super().__init__()
        self._sql: dict[tuple[str, int], str] = {}

    def _statement(self, table: str, columns: Sequence[str]) -> str:
        return f"INSERT INTO {table} ({', '.join(q(c) for c in columns)}) VALUES "

    def _batch_rows(self, columns: Sequence[str]) -> int:
        return max(1, min(BATCH_ROWS, connection.features.max_query_params // len(columns)))

    def _write(self, raw: Any, item: Any) -> Any:
        if type(item) is not _Batch:
            raw.execute(item[0].replace("%s", "?"), item[1])
            return self._next()
        statement, batch = item
        width = len(batch[0])
        sql = self._sql.get((statement, len(batch)))
        if sql is None:
            row = f"({', '.join(['?'] * width)})"
            sql = self._sql[statement, len(batch)] = statement + ", ".join([row] * len(batch))
        raw.execute(sql, list(itertools.chain.from_iterable(batch)))
        return self._next()
