"""COPY into PostgreSQL from a thread of its own, in statements of about `CHUNK_ROWS` rows.

A direct load (`direct_load`) writes every row once, straight into its tenant table, and
PostgreSQL checks each row's foreign keys with one query per row and reference: about as much
work as the insert itself. Deferred to the end of the import, those checks ran while Python
waited, and PostgreSQL queued an event per row and reference until then (50 MB of its memory for
a new tenant of 1.7 million rows, growing with the tenant). With the foreign keys immediate, a
COPY statement checks its own rows when it ends; so the rows go out in statements of about
`CHUNK_ROWS` rows (a statement ends with the batch that reaches it) from this thread, while the
caller's thread reads and checks the next rows of the file and queues them. A new-tenant restore
of those 1.7 million rows took 30.5-33.7 s instead of 38.6 s, a replace 37.6-38.6 s instead of
40.9 s, all of it PostgreSQL's work now (`bench/README.md`).

The thread uses the database connection of the thread that made it (a psycopg connection may be
used from any thread); the caller must not use the connection until `finish` or `abort` returned.
Memory stays bounded by the queue, whatever the size of the tenant.
"""

import queue
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection

from .staging import copy_statement

# Rows per COPY statement: when one ends, PostgreSQL checks its rows' foreign keys while the next
# rows are read. Batches of rows are what the threads hand over, and the queue holds enough of
# them for the reading to go on during a whole statement's check.
CHUNK_ROWS = 20_000
BATCH_ROWS = 1_000
QUEUED_BATCHES = 2 * CHUNK_ROWS // BATCH_ROWS

_END, _ABORT = object(), object()


class _Aborted(Exception):
    pass


def _busy(*args: Any) -> None:
    # A query from the caller's thread would wait for the connection the COPY holds, while the
    # COPY waits for the caller's rows: fail instead of hanging.
    raise RuntimeError("the connection is busy with a COPY: call finish() or abort() first")


class BackgroundCopy:
    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUED_BATCHES)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, first: str = ""
    ) -> int:
        """Queue the rows (in `columns` order, prepared for the database) for `table` (quoted),
        after the statement `first` if any; returns how many rows. A failure of an earlier
        statement is raised here or by `finish`."""
        statement = copy_statement(table, columns)
        if first:
            self._put(first)
        written = 0
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == BATCH_ROWS:
                self._put((statement, batch))
                written += BATCH_ROWS
                batch = []
        if batch:
            self._put((statement, batch))
            written += len(batch)
        return written

    def finish(self) -> None:
        """Wait until every queued row is written and checked; raise what went wrong, as
        Django's error (an `IntegrityError` for a key refused, say)."""
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

    def _put(self, item: str | tuple[str, list[Sequence[Any]]]) -> None:
        if self._error is not None:
            self.finish()
        if self._thread is None:
            connection.ensure_connection()
            connection.execute_wrappers.append(_busy)
            self._thread = threading.Thread(
                target=self._run, args=(connection.connection,), name="backup-copy", daemon=True
            )
            self._thread.start()
        self._queue.put(item)

    def _stop(self, how: object) -> None:
        if self._thread is not None:
            self._queue.put(how)
            self._thread.join()
            self._thread = None
            connection.execute_wrappers.remove(_busy)

    def _run(self, raw: Any) -> None:
        item = self._queue.get()
        try:
            with raw.cursor() as cursor:
                while item is not _END and item is not _ABORT:
                    if type(item) is str:  # a statement between two COPYs
                        cursor.execute(item)
                        item = self._queue.get()
                        continue
                    statement, written = item[0], 0
                    with cursor.copy(statement) as copy:
                        while True:
                            for row in item[1]:
                                copy.write_row(row)
                            written += len(item[1])
                            item = self._queue.get()
                            if item is _ABORT:
                                raise _Aborted  # ends the COPY as failed, at once
                            if (
                                item is _END
                                or type(item) is str
                                or item[0] != statement
                                or written >= CHUNK_ROWS
                            ):
                                break
        except _Aborted:
            pass
        except BaseException as exc:  # handed to the caller's thread
            self._error = exc
            # Take what the caller still queues until it stops, so that it never waits on a
            # full queue.
            while item is not _END and item is not _ABORT:
                item = self._queue.get()
