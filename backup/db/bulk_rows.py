"""Many rows of one model written in a few statements, as the ORM writes them, without an
instance per row.

The scheduler's pass over a fleet writes tens of thousands of rows at once (backups, their
jobs, audit entries, alerts, the schedules moved on); Django's `bulk_create` and `update` spend
most of such a pass in Python, building an instance per row and binding every value into the
statement's text. Here the values that differ from row to row go into a temporary table through
`Dialect.write_rows` (COPY on PostgreSQL), and one INSERT ... SELECT (the other values its
parameters) or UPDATE ... FROM applies them.

Rows are mappings of field `attname`s (`tenant_id`, not `tenant`) to values. A field a row does
not give gets what the ORM would give it: its default (a callable one called for each row) or,
for `auto_now`/`auto_now_add`, the current time. Values are prepared for the database as the
engine prepares the tenant tables' values of the same type (`Dialect.preparation`).
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.utils import timezone

from backup.db.dialect import dialect
from backup.db.sql import q
from backup.registry import RegistryError, value_type


def insert_rows(
    model: type[models.Model], rows: Sequence[Mapping[str, Any]], *, skip_conflicts: bool = False
) -> list[Any]:
    """Insert the rows; returns their primary keys. `skip_conflicts`: a row that would break a
    unique constraint is left out (as `bulk_create(ignore_conflicts=True)` does), and only the
    keys of the rows written are returned: the database, not a check made beforehand, decides
    which, so concurrent writers cannot both write the same row."""
    if not rows:
        return []
    given = list(rows[0])
    fields = list(model._meta.concrete_fields)
    pk = model._meta.pk
    assert pk is not None and (pk.attname in given or pk.has_default()), (
        f"{model.__name__}: each row needs its primary key, given or by default"
    )
    makers = {field: _maker(field, given) for field in fields}
    # Only the values that differ from row to row are staged; the others are one parameter.
    varying = [f for f in fields if makers[f].per_row]
    prepared = [[makers[f](row) for f in varying] for row in rows]
    pk_index = varying.index(pk)
    keys = [pk.to_python(values[pk_index]) for values in prepared]
    table = q(model._meta.db_table)
    names = ", ".join(q(f.column) for f in fields)
    values = ", ".join("staged." + q(f.column) if f in varying else "%s" for f in fields)
    constants = [makers[f](None) for f in fields if f not in varying]
    conflicts = f"ON CONFLICT DO NOTHING RETURNING {q(pk.column)}" if skip_conflicts else ""
    with (
        transaction.atomic(),
        _staged(model, [f.column for f in varying], prepared) as staged,
        connection.cursor() as cursor,
    ):
        # `WHERE 1 = 1` keeps SQLite from reading ON CONFLICT as part of a join.
        cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT {values} FROM {staged} AS staged "
            f"WHERE 1 = 1 {conflicts}",
            constants,
        )
        if not skip_conflicts:
            return keys
        return [pk.to_python(value) for (value,) in cursor.fetchall()]


def update_rows(model: type[models.Model], rows: Sequence[Mapping[str, Any]]) -> int:
    """Set, in each row of the table whose primary key a row gives (as `pk`), the other fields
    that row gives (every row the same fields); returns how many rows were updated. Like
    `update()`, `auto_now` fields are left alone."""
    if not rows:
        return 0
    pk = model._meta.pk
    assert pk is not None
    given = list(rows[0])
    assert "pk" in given, f"{model.__name__}: each row needs its primary key"
    rows = [{pk.attname: row["pk"], **row} for row in rows]
    # `get_field` knows foreign keys by their attnames too.
    fields = [pk] + [model._meta.get_field(name) for name in given if name != "pk"]
    given = [pk.attname, *given]
    makers = [_maker(field, given) for field in fields]
    prepared = [[make(row) for make in makers] for row in rows]
    columns = [f.column for f in fields]
    table = q(model._meta.db_table)
    changes = ", ".join(f"{q(c)} = staged.{q(c)}" for c in columns[1:])
    with (
        transaction.atomic(),
        _staged(model, columns, prepared) as staged,
        connection.cursor() as cursor,
    ):
        cursor.execute(
            f"UPDATE {table} SET {changes} FROM {staged} AS staged "
            f"WHERE {table}.{q(pk.column)} = staged.{q(pk.column)}"
        )
        return cursor.rowcount


class _Maker:
    """How a row's value of a field is made, ready for the database."""

    def __init__(self, make: Callable[[Any], Any], *, per_row: bool) -> None:
        self.make = make
        self.per_row = per_row

    def __call__(self, row: Any) -> Any:
        return self.make(row)


def _maker(field: models.Field, given: list[str]) -> _Maker:
    prepare = _preparation(field)
    if field.attname in given:
        name = field.attname
        return _Maker(lambda row: prepare(row[name]), per_row=True)
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        assert isinstance(field, models.DateTimeField), f"{field}: only date-times are stamped"
        return _Maker(lambda row: prepare(timezone.now()), per_row=True)
    if field.has_default() and callable(field.default) and field.default not in (dict, list):
        # `dict` and `list` give each instance its own empty one: the same value once stored.
        return _Maker(lambda row: prepare(field.get_default()), per_row=True)
    value = prepare(field.get_default())
    return _Maker(lambda row: value, per_row=False)


def _preparation(field: models.Field) -> Callable[[Any], Any]:
    """What a value of the field needs before it is written: what the engine does for the
    tenant tables' values of the same type (nothing, on PostgreSQL, but for JSON), or Django's
    own preparation for a type the backup format does not know."""
    conn = connections[DEFAULT_DB_ALIAS]  # once: `connection` looks it up on each use
    try:
        kind = value_type(field)
    except RegistryError:
        return lambda value: field.get_db_prep_save(value, conn)
    preparation = dialect().preparation(kind, field, conn)
    return preparation.call if preparation is not None else _as_is


def _as_is(value: Any) -> Any:
    return value


class _staged:
    """A temporary table of the table's `columns`, holding the rows for the duration."""

    def __init__(self, model: type[models.Model], columns: list[str], rows: list[list[Any]]):
        self.source = q(model._meta.db_table)
        self.name = q(f"_bulk_{model._meta.db_table}")
        self.columns = columns
        self.rows = rows

    def __enter__(self) -> str:
        names = ", ".join(q(c) for c in self.columns)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.name}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {self.name} AS SELECT {names} FROM {self.source} "
                "WHERE 1 = 0"
            )
        dialect().write_rows(self.name, self.columns, self.rows)
        return self.name

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE {self.name}")
