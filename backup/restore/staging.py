"""Temporary tables that hold a backup's rows inside the import transaction.

Every tenant table of the file is loaded into a staging table of the same columns (plus the row's
position, whether it failed validation, the id it will have and what will happen to it), so that
references, matching and the preview are computed by the database in a few set-based statements
and Python memory does not grow with the tenant. Loading is the only part that differs by
database (`Dialect.write_rows`: COPY on PostgreSQL, batched inserts elsewhere).
"""

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import UUIDField

from backup.db.dialect import dialect
from backup.db.sql import q
from backup.registry import TableSpec

# Bookkeeping columns in front of the table's own.
POS, BAD, TARGET, ACTION = "_pos", "_bad", "_target", "_action"
CREATE, UPDATE = "c", "u"  # a row planned as neither is unchanged


class StagingTable:
    def __init__(
        self, spec: TableSpec, *, fresh_ids: bool = False, prefix: str = "_stage_"
    ) -> None:
        """`fresh_ids`: every row's target is a new random UUID, given by the database (the
        rows are loaded without one). `prefix`: another for a second file staged beside the
        first (a comparison of two backups)."""
        self.spec = spec
        self.name = f"{prefix}{spec.name}"
        self.sql_name = q(self.name)
        pk = spec.model._meta.pk
        target_type = pk.db_type(connection)
        if fresh_ids:
            assert isinstance(pk, UUIDField), f"{spec.name}: fresh ids need a UUID primary key"
            # Made by the database for each row as it is loaded, beside the rest of the row's
            # work: made in Python, it would cost more than that work.
            assert dialect().random_uuid, f"{dialect().name} makes no random UUIDs"
            target_type += f" DEFAULT {dialect().random_uuid}"
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
        self.indexes: set[str] = set()

    def create(self) -> None:
        ddl = ", ".join(f"{q(name)} {db_type}" for name, db_type in self.columns)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.sql_name}")
            cursor.execute(f"CREATE TEMPORARY TABLE {self.sql_name} ({ddl})")

    def load(self, rows: Iterable[Sequence[Any]], *, streaming: bool = True) -> None:
        """Rows in `loaded_columns` order, already prepared for the database."""
        self.rows += dialect().write_rows(
            self.sql_name, self.loaded_columns, rows, streaming=streaming
        )

    def analyze(self, *, index: bool) -> None:
        """Once loaded: statistics for the planner and, for a table that others refer to, an
        index on the ids, which their references are joined on."""
        if index:
            self.index("id", ["id"])
        dialect().analyze(self.sql_name)

    def index(self, name: str, columns: list[str]) -> None:
        """An index on `columns`, once (`name` tells it from the table's others)."""
        if name in self.indexes:
            return
        self.indexes.add(name)
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE INDEX {q(f'{self.name}_{name}')} ON {self.sql_name} "
                f"({', '.join(q(c) for c in columns)})"
            )

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.sql_name}")
