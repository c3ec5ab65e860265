"""The database session an export or import runs in: its settings, and an export's snapshot."""

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from django.db import connection, transaction

from backup.db.dialect import dialect


def configure_session(*, export: bool = False) -> None:
    """This database's settings for the current transaction's queries; they end with it."""
    dialect().configure_session(export=export)


@contextmanager
def export_transaction() -> Iterator[None]:
    """The export's transaction: one snapshot of the data, and no lock that keeps writers
    waiting while it streams, which lasts as long as the download. Inside a caller's
    transaction (tests) the caller's applies. PostgreSQL: REPEATABLE READ, READ ONLY; SQLite: a
    deferred transaction (`Dialect.export_transaction_mode`)."""
    outermost = not connection.in_atomic_block
    mode = dialect().export_transaction_mode() if outermost else None
    with ExitStack() as stack:
        if mode is not None:
            connection.ensure_connection()  # connecting sets the mode from the settings
            mode, connection.transaction_mode = connection.transaction_mode, mode
        try:
            stack.enter_context(transaction.atomic())  # whose BEGIN takes the mode
        finally:
            if mode is not None:
                connection.transaction_mode = mode
        if outermost:
            dialect().begin_export()
        yield
