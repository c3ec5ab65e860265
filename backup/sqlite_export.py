"""The export's fast path on SQLite: rows written as JSON by SQLite's own `json_object`.

As on PostgreSQL (`copy_export`), the database builds each row's JSON in exactly the bytes orjson
would write (the same field order, no spaces, the same string escapes, the same encodings as
`values.py`), so Python only joins ready rows. The query is the portable path's own queryset
wrapped; tests compare both paths byte for byte.

The values are read as Django stores them in SQLite: UUIDs as 32 hex digits, datetimes in UTC as
'YYYY-MM-DD HH:MM:SS[.ffffff]', booleans as 0 and 1, and decimals as numbers, which are exact to
15 significant digits: a table with a longer decimal stays on the portable path. JSON columns are
kept as Django wrote them (its own spacing, `\\u` escapes), so SQLite builds the row's text around
them and Python puts in each one read and written again as the portable path does.
"""

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import orjson
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
    return f.type != "decimal" or (f.max_digits or EXACT_DIGITS + 1) <= EXACT_DIGITS


def _value(value_type: str, kind: str, column: str, places: int, nullable: bool) -> str:
    """SQL giving one column's value for `json_object` (NULL stays NULL, written as null)."""
    if kind == "master_fk" or value_type == "integer":
        return column
    if value_type == "boolean":
        return f"json(CASE {column} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)"
    if value_type == "uuid":
        # One printf allocates less than four concatenations (4% of the readings' query); it
        # would print NULL as dashes, where a concatenation stays NULL.
        dashed = (
            f"printf('%%.8s-%%.4s-%%.4s-%%.4s-%%s', {column}, substr({column}, 9), "
            f"substr({column}, 13), substr({column}, 17), substr({column}, 21))"
        )
        return f"CASE WHEN {column} IS NOT NULL THEN {dashed} END" if nullable else dashed
    if value_type == "datetime":
        text = f"replace({column}, ' ', 'T')"
        # Django leaves the microseconds out when they are zero; the file always has six.
        return f"CASE WHEN length({column}) = 19 THEN {text} || '.000000Z' ELSE {text} || 'Z' END"
    if value_type == "decimal":
        # '%%': Django's SQLite cursor turns '%s' into '?' and '%%' into '%'.
        return f"CASE WHEN {column} IS NOT NULL THEN printf('%%.{places}f', {column}) END"
    return column  # strings, dates and file names are stored as they are written


def _row_sql(spec: TableSpec, qs: QuerySet) -> tuple[str, list[Any], list[FieldSpec]]:
    """The query of the rows' text, and the JSON fields the text leaves out. Without JSON fields
    each row is one `json_object`; with them, its text in pieces around them (`_joined`)."""
    inner, params = qs.order_by().query.sql_with_params()
    names = spec.file_fields()
    columns = [f"c{i}" for i in range(len(names))]
    fields: list[FieldSpec | None] = [*spec.fields, *[None] * len(spec.secrets)]
    pairs: list[str] = []  # of the fields since the last JSON field
    pieces: list[list[str]] = [[]]  # the SQL of each piece of text, as concatenated parts
    holes: list[FieldSpec] = []

    def close_pairs() -> None:
        if pairs:  # json_object's braces off: the pieces put in their own
            pieces[-1].append(f"rtrim(ltrim(json_object({', '.join(pairs)}), '{{'), '}}')")
            pairs.clear()

    for index, (name, column, f) in enumerate(zip(names, columns, fields, strict=True)):
        assert name.isidentifier(), name  # nothing to escape in an SQL literal
        separator = "{" if index == 0 else ","
        if f is not None and f.type == "json":
            close_pairs()
            pieces[-1].append(f"'{separator}\"{name}\":'")
            pieces.append([f"r.{column}"])  # the JSON field as stored, then the next piece
            pieces.append([])
            holes.append(f)
            continue
        if not pairs:
            pieces[-1].append(f"'{separator}'")
        if f is None:  # a secret's flag
            value = _value("boolean", "flag", f"r.{column}", 0, False)
        else:
            value = _value(f.type, f.kind, f"r.{column}", f.decimal_places or 0, f.null)
        pairs.append(f"'{name}', {value}")
    if holes:
        close_pairs()
        pieces[-1].append("'}'")
        select = ", ".join(" || ".join(parts) for parts in pieces)
    else:
        select = f"json_object({', '.join(pairs)})"
    sql = f"WITH r({', '.join(columns)}) AS ({inner}) SELECT {select} FROM r ORDER BY r.c0"
    return sql, list(params), holes


def _joined(holes: list[FieldSpec]) -> Callable[[tuple], str]:
    """A row's text from its pieces and its JSON fields as Django stored them: each read back by
    the field, as the portable path reads it, and written by orjson, as it writes it."""
    reads = [f.model_field.from_db_value for f in holes]
    dumps = orjson.dumps

    def join(row: tuple) -> str:
        parts = [row[0]]
        for i, read in enumerate(reads):
            parts.append(dumps(read(row[2 * i + 1], None, connection)).decode())
            parts.append(row[2 * i + 2])
        return "".join(parts)

    return join


def row_blocks(spec: TableSpec, qs: QuerySet) -> Iterator[bytes]:
    """The rows of `qs` as blocks of JSON rows joined by ",\\n", like the portable path."""
    sql, params, holes = _row_sql(spec, qs)
    join = _joined(holes) if holes else None
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_ROWS):
            texts = [join(row) for row in rows] if join else [row[0] for row in rows]
            yield ",\n".join(texts).encode()
