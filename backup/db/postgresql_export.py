"""The export's fast path on PostgreSQL: rows written as JSON by the database, sent by COPY.

The portable path turns each row into a tuple of Python objects and each tuple into JSON with
orjson; for a large tenant that is most of an export's time. Here PostgreSQL builds every row's
JSON text itself, in exactly the bytes orjson would write (the same field order, no spaces, the
same encodings as `values.py`), and streams the rows with `COPY ... TO STDOUT`, so Python only
joins blocks of ready rows. The query is the portable path's own queryset (the same filters,
joins and nulls), wrapped; tests compare both paths byte for byte.

JSON columns are the exception: PostgreSQL prints them with spaces, so their text is sent as a
column of its own, between the text before and after it, and written by Python as the portable
path writes it (`json.loads` as Django reads the column, then orjson).
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from django.db import DatabaseError, connection
from django.db.models import QuerySet

from backup.format.values import json_field_bytes
from backup.registry import Registry, RowBlocks, TableSpec
from tenants.models import Tenant

# Binary COPY: each row arrives as its own message (a field count and a length, then the JSON
# text as it is), the first one after the file header, and a last message, the trailer, says the
# rows are done before the copy itself ends.
_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
_ROW_PREFIX = 6  # field count (int16) and the field's length (int32)
_TRAILER = b"\xff\xff"
BLOCK_BYTES = 1 << 18
# Every row's text starts with the separator that comes before it in the file, so that Python
# appends rows as they come, and a block leaves out its first row's (PostgreSQL adds it to the
# literal text in front of the first value, which costs less than Python putting it between
# the rows).
_SEPARATOR = ",\n"


def _block(rows: bytearray) -> bytes:
    with memoryview(rows) as view:
        return bytes(view[len(_SEPARATOR) :])


def supports(spec: TableSpec) -> bool:
    return connection.vendor == "postgresql"


class _Sql(str):
    """An SQL expression giving text, as opposed to literal text."""


def _literal(text: str) -> str:
    """`text` as an SQL literal in a statement with parameters ('%' doubled for psycopg)."""
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


def _choice(column: str, choices: tuple[str, ...]) -> str:
    """A string column's JSON text when it is one of `choices`: each choice's text written once
    here, by orjson as the portable path writes it, rather than `to_json` for every row, which
    would escape the same few texts again and again. Any other value still goes to `to_json`;
    compared byte for byte ("C"), whatever the column's collation."""
    cases = " ".join(
        f"WHEN {_literal(c)} THEN {_literal(orjson.dumps(c).decode())}" for c in choices
    )
    return f'CASE ({column} COLLATE "C") {cases} ELSE to_json({column})::text END'


def _json(
    value_type: str, kind: str, column: str, null: bool, choices: tuple[str, ...] = ()
) -> list[str | _Sql]:
    """One column's JSON text, as literal text and SQL expressions (see `_concatenation`). A
    column that may be NULL is one expression giving 'null' for NULL; the quotes around a string
    that never is stay literal text, which joins the text around it."""
    if kind == "master_fk" or value_type in ("integer", "boolean"):
        parts: list[str | _Sql] = [_Sql(f"{column}::text")]
    elif value_type in ("decimal", "uuid"):  # strings whose text needs no escaping
        parts = ['"', _Sql(f"{column}::text"), '"']
    elif value_type == "datetime":
        utc = f"{column} AT TIME ZONE 'UTC'"
        parts = ['"', _Sql(f"""to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""), '"']
    elif value_type == "date":
        parts = ['"', _Sql(f"to_char({column}, 'YYYY-MM-DD')"), '"']
    elif choices:
        parts = [_Sql(_choice(column, choices))]
    else:
        parts = [_Sql(f"to_json({column})::text")]
    if not null:
        return parts
    return [_Sql(f"COALESCE({_concatenation(parts)}, 'null')")]


def _concatenation(parts: list[str | _Sql]) -> str:
    """SQL concatenating the parts, each run of literal text as one literal: every `||` makes
    PostgreSQL copy the text so far, so the quotes and keys are folded into their neighbours
    rather than each costing a copy of their own."""
    pieces: list[str] = []
    literal = ""
    for part in parts:
        if isinstance(part, _Sql):
            if literal:
                pieces.append(f"'{literal}'")
                literal = ""
            pieces.append(part)
        else:
            assert "'" not in part, part  # keys are identifiers: nothing to escape
            literal += part
    if literal:
        pieces.append(f"'{literal}'")
    return " || ".join(pieces)


def _row_sql(spec: TableSpec, qs: QuerySet) -> tuple[str, list[Any], list[Any]]:
    """The query giving each row's JSON text, after `_SEPARATOR`, as one column, or, when the
    table has JSON columns, as the text around them and each of them (`json_columns` says which
    are which: None for text, else the JSON column's model field)."""
    inner, params = qs.order_by().query.sql_with_params()
    columns = [f"c{i}" for i in range(len(spec.file_fields()))]
    specs = [(f.type, f.kind, f.null, f.model_field, f.choices) for f in spec.fields]
    specs += [("boolean", "flag", False, None, ())] * len(spec.secrets)
    outputs: list[str] = []
    json_columns: list[Any] = []
    parts: list[str | _Sql] = [_SEPARATOR]
    for index, (name, (value_type, kind, null, model_field, choices)) in enumerate(
        zip(spec.file_fields(), specs, strict=True)
    ):
        parts.append(("{" if index == 0 else ",") + _quoted_key(name) + ":")
        if value_type == "json":
            outputs += [_concatenation(parts), f"r.{columns[index]}::text"]
            json_columns += [None, model_field]
            parts = []
        else:
            parts += _json(value_type, kind, f"r.{columns[index]}", null, choices)
    outputs.append(_concatenation([*parts, "}"]))
    json_columns.append(None)
    sql = f"SELECT {', '.join(outputs)} FROM ({inner}) AS r({', '.join(columns)}) ORDER BY r.c0"
    return sql, list(params), json_columns


def _quoted_key(name: str) -> str:
    # Field names are Python identifiers: nothing to escape for JSON or for an SQL literal.
    assert name.isidentifier(), name
    return f'"{name}"'


def _spliced(json_columns: list[Any]) -> Callable[[Any], bytes] | None:
    """For a table with JSON columns, a function joining one row message's columns into the
    row's JSON; None for the others, whose message holds the row's JSON whole."""
    if len(json_columns) == 1:
        return None
    writers = [None if f is None else _json_writer(f) for f in json_columns]

    def splice(message: Any) -> bytes:
        parts = []
        offset = 2  # the column count
        for write in writers:
            size = int.from_bytes(message[offset : offset + 4], "big", signed=True)
            offset += 4
            if size < 0:  # only a JSON column is ever NULL
                parts.append(b"null")
                continue
            value = message[offset : offset + size]
            offset += size
            parts.append(value if write is None else write(value))
        return b"".join(parts)

    return splice


def _json_writer(field: Any) -> Callable[[Any], bytes]:
    def write(text: Any) -> bytes:
        return json_field_bytes(json.loads(bytes(text), cls=field.decoder))

    return write


def row_blocks(spec: TableSpec, qs: QuerySet) -> Iterator[bytes]:
    """The rows of `qs` as blocks of JSON rows joined by ",\\n", like the portable path."""
    sql, params, json_columns = _row_sql(spec, qs)
    splice = _spliced(json_columns)
    statement = f"COPY ({sql}) TO STDOUT (FORMAT binary)"
    with connection.cursor() as cursor, cursor.cursor.copy(statement, params) as copy:
        # psycopg's own `read()` goes through Python generators for every row, which costs more
        # than the row's own work here; libpq's `get_copy_data` hands over a message already
        # received directly. psycopg still waits for the messages not yet received and reads
        # the end of the copy, which comes after the trailer, so it ends the copy as it always
        # does.
        get_copy_data = cursor.cursor.connection.pgconn.get_copy_data
        pending = bytearray()
        message = copy.read()
        if message[: len(_HEADER)] != _HEADER:
            raise DatabaseError("COPY TO returned no binary header")
        message = message[len(_HEADER) :]
        while message != _TRAILER:
            if not message:
                raise DatabaseError("COPY TO ended without its trailer")
            if splice is None:
                pending += message[_ROW_PREFIX:]
            else:
                pending += splice(message)
            if len(pending) >= BLOCK_BYTES:
                yield _block(pending)
                pending.clear()
            size, message = get_copy_data(1)
            if size <= 0:  # none received yet (or an error, which psycopg raises)
                message = copy.read()
        if pending:
            yield _block(pending)
        if copy.read():
            raise DatabaseError("COPY TO sent data after its trailer")


@contextmanager
def exporting(tenant: Tenant, specs: list[TableSpec], reg: Registry) -> Iterator[RowBlocks]:
    """`row_blocks` for one export (the SQLite path prepares a cache; this one needs none)."""
    yield row_blocks
