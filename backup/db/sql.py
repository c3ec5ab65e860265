"""SQL text that every database shares: quoted names and the COPY statement's shape."""

from collections.abc import Sequence

from django.db import connection


def q(name: str) -> str:
    """A table or column name, quoted for this database."""
    return connection.ops.quote_name(name)


def copy_statement(table: str, columns: Sequence[str]) -> str:
    """COPY of rows into `table` (quoted), given in `columns` order (PostgreSQL)."""
    return f"COPY {table} ({', '.join(q(c) for c in columns)}) FROM STDIN"
