"""Settings of the database session that an export or import runs in."""

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from django.conf import settings
from django.db import connection, transaction


def configure_session(*, export: bool = False) -> None:
    """Settings for the current transaction's queries (PostgreSQL only); they end with it.

    - `work_mem` is `BACKUP_WORK_MEM`: an export sorts each table by id and an import groups and
      joins its staging tables; with PostgreSQL's default 4 MB a million rows go to temporary
      files, which cost a third of an export's database time. 128 MB (per sort, and per
      parallel worker) sorts a million readings in memory: 1.18 s for the table against 1.30 s
      with 64 MB, which spilled 70-80 MB per worker.
    - No JIT compilation: it costs tens of milliseconds per query for expressions that run in
      well under a microsecond a row; without it an export of 1.7 million rows took 4% less
      time and a preview 3% less.
    - For an `export`, no planner cost for handing a row from a parallel worker to the leader
      (`parallel_tuple_cost` 0): every row goes to the leader anyway, and the workers are what
      builds the rows' JSON. Otherwise the planner reads a table whose ids follow its physical
      order (the bench's, say) serially through its primary key to spare the sort, while the
      workers' scan, JSON and sort take less time: the 980,000 readings 1.12 s against 1.33 s,
      a whole export of 1.7 million rows 3.82 s against 4.20 s (medians of seven alternating
      rounds). A small tenant's queries stay serial: starting workers still costs
      (`parallel_setup_cost`)."""
    if connection.vendor != "postgresql":
        return
    values = {"work_mem": getattr(settings, "BACKUP_WORK_MEM", "128MB"), "jit": "off"}
    if export:
        values["parallel_tuple_cost"] = "0"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(values)),
            [item for pair in values.items() for item in pair],
        )


@contextmanager
def export_transaction() -> Iterator[None]:
    """The export's transaction: one snapshot of the data, and no lock that keeps writers
    waiting while it streams, which lasts as long as the download. Inside a caller's
    transaction (tests) the caller's applies.

    PostgreSQL: REPEATABLE READ, READ ONLY, with the export's `configure_session`. SQLite: a
    deferred transaction, whose snapshot (in WAL mode, as the settings open it) starts at its
    first read; the settings begin every other transaction IMMEDIATE, so that an import never
    fails upgrading a read lock, and that would hold the write lock for the whole download."""
    outermost = not connection.in_atomic_block
    deferred = outermost and connection.vendor == "sqlite"
    with ExitStack() as stack:
        if deferred:
            connection.ensure_connection()  # connecting sets the mode from the settings
            mode, connection.transaction_mode = connection.transaction_mode, "DEFERRED"
        try:
            stack.enter_context(transaction.atomic())  # whose BEGIN takes the mode
        finally:
            if deferred:
                connection.transaction_mode = mode
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # the transaction's first statement
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            configure_session(export=True)
        yield
