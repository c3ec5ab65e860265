"""The export's fast path on SQLite: rows written as JSON by SQLite's own `json_object`.

As on PostgreSQL (`backup.db.postgresql_export`), the database builds each row's JSON in exactly
the bytes orjson would write (the same field order, no spaces, the same string escapes, the same
encodings as `values.py`), so Python only joins ready rows. The query is the portable path's own
queryset wrapped; tests compare both paths byte for byte.

The values are read as Django stores them in SQLite: UUIDs as 32 hex digits, datetimes in UTC as
'YYYY-MM-DD HH:MM:SS[.ffffff]', booleans as 0 and 1, and decimals as numbers, which are exact to
15 significant digits: a table with a longer decimal stays on the portable path. JSON columns are
kept as Django wrote them (its own spacing, `\\u` escapes), so SQLite builds the row's text around
them and Python puts in each one read and written again as the portable path does. Dashes are
what the UUIDs cost: the ids that rows refer to are formatted once each, in a cache (`exporting`).
"""

import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from backup.format.values import json_field_bytes
from backup.registry import FieldSpec, Registry, RowBlocks, TableSpec
from tenants.models import Tenant

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


def _dashed(column: str) -> str:
    """SQL giving the UUID in `column` (32 hex digits) in its written form, with dashes: one
    printf allocates less than four concatenations, and it runs for every UUID of every row."""
    return (
        f"printf('%%.8s-%%.4s-%%.4s-%%.4s-%%s', {column}, substr({column}, 9), "
        f"substr({column}, 13), substr({column}, 17), substr({column}, 21))"
    )


def _value(value_type: str, kind: str, column: str, places: int, nullable: bool) -> str:
    """SQL giving one column's value for `json_object` (NULL stays NULL, written as null)."""
    if kind == "master_fk" or value_type == "integer":
        return column
    if value_type == "boolean":
        return f"json(CASE {column} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)"
    if value_type == "uuid":
        dashed = _dashed(column)
        # printf would print NULL as dashes, where the column must stay NULL.
        return f"CASE WHEN {column} IS NOT NULL THEN {dashed} END" if nullable else dashed
    if value_type == "datetime":
        text = f"replace({column}, ' ', 'T')"
        # Django leaves the microseconds out when they are zero; the file always has six.
        return f"CASE WHEN length({column}) = 19 THEN {text} || '.000000Z' ELSE {text} || 'Z' END"
    if value_type == "decimal":
        # '%%': Django's SQLite cursor turns '%s' into '?' and '%%' into '%'.
        return f"CASE WHEN {column} IS NOT NULL THEN printf('%%.{places}f', {column}) END"
    return column  # strings, dates and file names are stored as they are written


# The written form of the ids that rows refer to, made once for each referenced row rather than
# once for each reference: a lookup in the cache costs less than making the dashes again, and
# the cache, one printf for each referenced row, costs little to fill.
@dataclass(frozen=True)
class _Cache:
    table: str  # in SQLite's temp schema, named for one export
    targets: frozenset[str]  # the tables whose ids it holds


def _cacheable(f: FieldSpec) -> bool:
    return f.kind == "tenant_fk" and f.type == "uuid" and f.target is not None


def _row_sql(
    spec: TableSpec, qs: QuerySet, cache: _Cache | None = None
) -> tuple[str, list[Any], list[FieldSpec]]:
    """The query of the rows' text, and the JSON fields the text leaves out. Without JSON fields
    each row is one `json_object`; with them, its text in pieces around them (`_joined`).
    References to the tables in `cache` take their written form from it (`exporting`)."""
    inner, params = qs.order_by().query.sql_with_params()
    names = spec.file_fields()
    columns = [f"c{i}" for i in range(len(names))]
    fields: list[FieldSpec | None] = [*spec.fields, *[None] * len(spec.secrets)]
    pairs: list[str] = []  # of the fields since the last JSON field
    pieces: list[list[str]] = [[]]  # the SQL of each piece of text, as concatenated parts
    holes: list[FieldSpec] = []
    joins: list[str] = []

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
            if cache is not None and _cacheable(f) and f.target in cache.targets:
                joins.append(f"LEFT JOIN {cache.table} d{index} ON d{index}.stored = r.{column}")
                value = f"coalesce(d{index}.dashed, {value})"  # computed when not cached
        pairs.append(f"'{name}', {value}")
    if holes:
        close_pairs()
        pieces[-1].append("'}'")
        select = ", ".join(" || ".join(parts) for parts in pieces)
    else:
        select = f"json_object({', '.join(pairs)})"
    sql = (
        f"WITH r({', '.join(columns)}) AS ({inner}) "
        f"SELECT {select} FROM r {' '.join(joins)} ORDER BY r.c0"
    )
    return sql, list(params), holes


def _joined(holes: list[FieldSpec]) -> Callable[[tuple], str]:
    """A row's text from its pieces and its JSON fields as Django stored them: each read back by
    the field, as the portable path reads it, and written by orjson, as it writes it."""
    reads = [f.model_field.from_db_value for f in holes]

    def join(row: tuple) -> str:
        parts = [row[0]]
        for i, read in enumerate(reads):
            parts.append(json_field_bytes(read(row[2 * i + 1], None, connection)).decode())
            parts.append(row[2 * i + 2])
        return "".join(parts)

    return join


def row_blocks(spec: TableSpec, qs: QuerySet, cache: _Cache | None = None) -> Iterator[bytes]:
    """The rows of `qs` as blocks of JSON rows joined by ",\\n", like the portable path."""
    sql, params, holes = _row_sql(spec, qs, cache)
    join = _joined(holes) if holes else None
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_ROWS):
            texts = [join(row) for row in rows] if join else [row[0] for row in rows]
            yield ",\n".join(texts).encode()


@contextmanager
def exporting(tenant: Tenant, specs: list[TableSpec], reg: Registry) -> Iterator[RowBlocks]:
    """For one export of `tenant`, inside its transaction: `row_blocks` for its tables, with the
    written ids of the tenant's rows that `specs` refer to in a temporary table. Only a cache: a
    reference that is not in it (none should be) is written as it would be without. The table is
    made in the export's transaction, so that a failed export takes it away too."""
    targets = sorted(
        {f.target for spec in specs if supports(spec) for f in spec.fields if _cacheable(f)}
    )
    if not targets:
        yield row_blocks
        return
    # A name of its own, so that no other export on the connection can take it away.
    cache = _Cache(f"temp.backup_dashed_ids_{secrets.token_hex(8)}", frozenset(targets))
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {cache.table} "
            "(stored TEXT PRIMARY KEY, dashed TEXT NOT NULL) WITHOUT ROWID"
        )
        for name in targets:
            rows = reg.table(name).model.objects.filter(tenant=tenant).order_by().values("pk")
            ids, params = rows.query.sql_with_params()
            # OR IGNORE: an id found in two tables has the same written form in both.
            cursor.execute(
                f"WITH r(c0) AS ({ids}) "
                f"INSERT OR IGNORE INTO {cache.table} SELECT c0, {_dashed('c0')} FROM r",
                params,
            )
    try:
        yield partial(row_blocks, cache=cache)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {cache.table}")
