"""The export's fast path on SQLite: rows written as JSON by SQLite's own `json_object`.

As on PostgreSQL (`copy_export`), the database builds each row's JSON in exactly the bytes orjson
would write (the same field order, no spaces, the same string escapes, the same encodings as
`values.py`), so Python only joins ready rows. The query is the portable path's own queryset
wrapped; tests compare both paths byte for byte.

The values are read as Django stores them in SQLite: UUIDs as 32 hex digits, datetimes in UTC as
'YYYY-MM-DD HH:MM:SS[.ffffff]', booleans as 0 and 1, and decimals as numbers, which are exact to
15 significant digits: a table with a longer decimal stays on the portable path, and so does a
table with a JSON column (SQLite keeps JSON text as it was written, orjson would rewrite it).
"""

import sqlite3
from collections.abc import Iterator
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from .tables import FieldSpec, TableSpec

FETCH_ROWS = 2000
EXACT_DIGITS = 15  # a double holds any decimal of up to 15 significant digits exactly


def supports(spec: TableSpec) -> bool:
    return (
        connection.vendor == "sqlite"
        and sqlite3.sqlite_version_info >= (3, 38)  # JSON functions built in
        and all(_supported(f) for f in spec.fields)
    )


def _supported(f: FieldSpec) -> bool:
    if f.type == "json":
        return False
    return f.type != "decimal" or (f.max_digits or EXACT_DIGITS + 1) <= EXACT_DIGITS


def _value(value_type: str, kind: str, column: str, places: int) -> str:
    """SQL giving one column's value for `json_object` (NULL stays NULL, written as null)."""
    if kind == "master_fk" or value_type == "integer":
        return column
    if value_type == "boolean":
        return f"json(CASE {column} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)"
    if value_type == "uuid":
        parts = [(1, 8), (9, 4), (13, 4), (17, 4), (21, 12)]
        return " || '-' || ".join(f"substr({column}, {start}, {size})" for start, size in parts)
    if value_type == "datetime":
        text = f"replace({column}, ' ', 'T')"
        # Django leaves the microseconds out when they are zero; the file always has six.
        return f"CASE WHEN length({column}) = 19 THEN {text} || '.000000Z' ELSE {text} || 'Z' END"
    if value_type == "decimal":
        # '%%': Django's SQLite cursor turns '%s' into '?' and '%%' into '%'.
        return f"CASE WHEN {column} IS NOT NULL THEN printf('%%.{places}f', {column}) END"
    return column  # strings, dates and file names are stored as they are written


def _row_sql(spec: TableSpec, qs: QuerySet) -> tuple[str, list[Any]]:
    inner, params = qs.order_by().query.sql_with_params()
    names = spec.file_fields()
    columns = [f"c{i}" for i in range(len(names))]
    specs = [(f.type, f.kind, f.decimal_places or 0) for f in spec.fields]
    specs += [("boolean", "flag", 0)] * len(spec.secrets)
    pairs = []
    for name, column, (value_type, kind, places) in zip(names, columns, specs, strict=True):
        assert name.isidentifier(), name  # nothing to escape in an SQL literal
        pairs.append(f"'{name}', {_value(value_type, kind, 'r.' + column, places)}")
    sql = (
        f"WITH r({', '.join(columns)}) AS ({inner}) "
        f"SELECT json_object({', '.join(pairs)}) FROM r ORDER BY r.c0"
    )
    return sql, list(params)


def row_blocks(spec: TableSpec, qs: QuerySet) -> Iterator[bytes]:
    """The rows of `qs` as blocks of JSON rows joined by ",\\n", like the portable path."""
    sql, params = _row_sql(spec, qs)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_ROWS):
            yield ",\n".join([row[0] for row in rows]).encode()
