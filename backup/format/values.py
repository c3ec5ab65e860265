"""How each kind of value is written to a backup file and read back from it.

Written: UUIDs as strings, decimals as exact strings, dates as ISO-8601, datetimes as ISO-8601 in
UTC with all six digits of microseconds and a `Z` (so that the same data gives the same bytes and
nothing is lost), JSON as JSON. Read: the same, strictly; a wrong value raises `ValueError` with a
message that says what was expected.
"""

import datetime as dt
import decimal
import math
import re
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from django.core.exceptions import ValidationError
from django.core.validators import DecimalValidator
from django.db.backends.base.operations import BaseDatabaseOperations

from backup.errors import ExportFailed
from backup.registry import FieldSpec

UTC = dt.UTC

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]


def encode_datetime(value: dt.datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_decimal(value: decimal.Decimal) -> str:
    return format(value, "f")


# The integers orjson writes; it refuses the others, which JSON allows and a JSON field keeps.
_ORJSON_INTS = range(-(2**63), 2**64)


def _json_mapped(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """A JSON value with `leaf` applied to every value in it that is not an object or a list."""
    if isinstance(value, dict):
        return {key: _json_mapped(item, leaf) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_mapped(item, leaf) for item in value]
    return leaf(value)


def _big_int_written(value: Any) -> Any:
    if type(value) is int and value not in _ORJSON_INTS:
        return orjson.Fragment(str(value))
    return value


# The levels of objects and lists orjson writes in one value (and so the most a backup holds).
JSON_LEVELS = 254


def json_bytes(value: Any) -> bytes:
    """orjson's text of a value, integers beyond 64 bits included (written as their digits).
    Raises `ExportFailed` for a value nested deeper than `JSON_LEVELS`."""
    try:
        return orjson.dumps(value)
    except TypeError:  # rare: only then is the value walked
        try:
            return orjson.dumps(_json_mapped(value, _big_int_written))
        except (TypeError, RecursionError) as exc:
            if isinstance(exc, TypeError) and "Recursion limit" not in str(exc):
                raise
            raise ExportFailed(
                f"a JSON value is nested more than {JSON_LEVELS - 1} levels deep in its row, "
                "more than a backup file holds"
            ) from None


def json_field_bytes(value: Any) -> bytes:
    """A JSON field's text, written as `json_bytes` writes it inside its row: `JSON_LEVELS`
    counts the row's level, and so a field written by itself is written in a list of its own,
    to be refused exactly where its row would be."""
    return json_bytes([value])[1:-1]


def _encode_uuid(value: uuid.UUID) -> str:
    return str(value)


def _encode_date(value: dt.date) -> str:
    return value.isoformat()


_ENCODERS: dict[str, Encoder] = {
    "uuid": _encode_uuid,
    "datetime": encode_datetime,
    "date": _encode_date,
    "decimal": encode_decimal,
}


def encoder(spec: FieldSpec) -> Encoder | None:
    """A function turning a database value into its JSON form, or None when it is already."""
    if spec.kind in ("master_fk", "user_fk"):
        return None
    return _ENCODERS.get(spec.type)


def _type_name(value: Any) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        decimal.Decimal: "a number",
        bool: "a boolean",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _expect(value: Any, kind: type | tuple[type, ...], what: str) -> None:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ValueError(f"expected {what}, got {_type_name(value)}")


def _decode_uuid(value: Any) -> uuid.UUID:
    _expect(value, str, "a UUID string")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid UUID") from None


# The forms a value is read in, whatever else Python's parsers accept ('20260105', '2026-W01-1',
# a space for the T, '1_000', ' 12'): what the format defines, and nothing a database would read
# otherwise. [0-9], not \d: \d also matches other scripts' digits.
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def _decode_date(value: Any) -> dt.date:
    _expect(value, str, "a date (YYYY-MM-DD)")
    try:
        if not _DATE.fullmatch(value):
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid date (YYYY-MM-DD)") from None


def _decode_datetime(value: Any) -> dt.datetime:
    _expect(value, str, "an ISO-8601 datetime")
    match = _DATETIME.fullmatch(value)
    if match and len(match.group(1) or "") > 7:
        raise ValueError(
            f"{value!r} has more than the six decimals of a second (microseconds) that a "
            "database keeps"
        )
    try:
        if not match:
            raise ValueError
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        if not match and _DATETIME.fullmatch(value.replace(" ", "T", 1) + "Z"):
            raise ValueError(
                f"{value!r} has no time zone (expected UTC, e.g. ending in Z)"
            ) from None
        raise ValueError(
            f"{value!r} is not a valid ISO-8601 datetime (YYYY-MM-DDTHH:MM:SS[.ffffff]Z)"
        ) from None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value!r} is outside the years 1 to 9999 in UTC") from None


def _decode_boolean(value: Any) -> bool:
    _expect(value, bool, "true or false")
    return value


def _json_number(value: Any) -> Any:
    if not isinstance(value, decimal.Decimal):
        return value
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value} is too large a number for a JSON field")
    return number


def _decode_json(value: Any) -> Any:
    """The reader gives integers of any size as `int` and every other number as an exact
    `Decimal`; a JSON field holds those as floats, as `json.loads` reads them. No text in it,
    key or value, may hold a NUL character."""
    if isinstance(value, dict):
        return {storable_text(key): _decode_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode_json(item) for item in value]
    if type(value) is str:
        return storable_text(value)
    return _json_number(value)


def storable_text(text: str) -> str:
    """The text, when every database can store it: PostgreSQL stores no NUL character in text
    or JSON, so it is refused on every database alike (`ValueError`)."""
    if "\x00" in text:
        raise ValueError(
            f"{text[:40]!r} contains a NUL character (\\u0000), which the database cannot store"
        )
    return text


# The integer ranges of Django's field types as PostgreSQL stores them (SQLite stores 64 bits in
# any of them): checked on every database, so that a file imports on both or on neither.
_INTEGER_RANGES = BaseDatabaseOperations.integer_field_ranges
_BIG = _INTEGER_RANGES["BigIntegerField"]


def _in_range(value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ValueError(f"{value} is outside the range {low} to {high} of this field")
    return value


def _decode_integer(spec: FieldSpec) -> Decoder:
    validators = spec.model_field.validators
    low, high = _INTEGER_RANGES.get(spec.model_field.get_internal_type(), _BIG)

    def decode(value: Any) -> int:
        _expect(value, int, "an integer")
        _in_range(value, low, high)
        for validate in validators:
            try:
                validate(value)
            except ValidationError as exc:
                raise ValueError("; ".join(exc.messages)) from None
        return value

    return decode


def _decode_decimal(spec: FieldSpec) -> Decoder:
    validate = DecimalValidator(spec.max_digits, spec.decimal_places)
    places = spec.decimal_places or 0
    whole_limit = (spec.max_digits or 0) - places

    def decode(value: Any) -> decimal.Decimal:
        _expect(value, (str, int), "a decimal written as a string")
        if type(value) is str and not _DECIMAL.fullmatch(value):
            finite = value.lower().lstrip("+-") not in ("nan", "snan", "inf", "infinity")
            raise ValueError(f"{value!r} is not a {'decimal' if finite else 'finite'} number")
        number = decimal.Decimal(value)
        if not number.is_finite():
            raise ValueError(f"{value!r} is not a finite number")
        # Django's validator is slow for a value on every row: it only runs (for its message)
        # when this quicker count of the digits finds one too many.
        _sign, digits, exponent = number.as_tuple()
        decimals = max(-exponent, 0)  # type: ignore[operator]  # finite: an int
        whole = max(len(digits) + exponent, 0)  # type: ignore[operator]
        if decimals > places or whole > whole_limit:
            try:
                validate(number)
            except ValidationError as exc:
                raise ValueError(f"{value!r}: " + "; ".join(exc.messages)) from None
        return number

    return decode


def _decode_string(spec: FieldSpec) -> Decoder:
    max_length = spec.max_length
    choices = frozenset(spec.choices)

    def decode(value: Any) -> str:
        _expect(value, str, "a string")
        storable_text(value)
        if max_length is not None and len(value) > max_length:
            raise ValueError(f"is {len(value)} characters long, at most {max_length} allowed")
        if choices and value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(sorted(choices))}")
        return value

    return decode


def _decode_master_id(value: Any) -> int:
    _expect(value, int, "the id of a master-data row")
    return _in_range(value, *_BIG)


def decoder(spec: FieldSpec) -> Decoder:
    """A function turning a JSON value into the Python value for the model field."""
    if spec.kind == "master_fk":
        return _decode_master_id
    if spec.kind == "user_fk":
        return _decode_string(spec)
    match spec.type:
        case "uuid":
            return _decode_uuid
        case "date":
            return _decode_date
        case "datetime":
            return _decode_datetime
        case "boolean":
            return _decode_boolean
        case "json":
            return _decode_json
        case "integer":
            return _decode_integer(spec)
        case "decimal":
            return _decode_decimal(spec)
        case "string" | "file":
            return _decode_string(spec)
    raise AssertionError(f"no decoder for {spec.type}")


# -- the fast paths ---------------------------------------------------------------------------
# A value in the canonical form every export writes is checked here and handed to the database as
# text in the form the database stores (PostgreSQL parses the canonical text itself; SQLite gets
# the text Django would have written): building the Python object and having the driver or
# Django print it again cost more than the rest of the row (a time-zone-aware datetime most of
# all). Any other form goes through `decoder`, so both paths accept and refuse the same values
# and store the same ones. [0-9], not \d: \d also matches other scripts' digits.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CANONICAL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CANONICAL_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?Z"
)
_PLAIN_DECIMAL = re.compile(r"-?([0-9]+)(?:\.([0-9]+))?")


def _text_checked(
    pattern: re.Pattern[str],
    parse: Callable[[str], Any] | None,
    full: Decoder,
    stored: Callable[[str], str] | None = None,
) -> Decoder:
    """`parse`, when the pattern is not the whole check, refuses what it lets through (a real
    date: no month 13, no February 30)."""

    def decode(value: Any) -> Any:
        if type(value) is str and pattern.fullmatch(value):
            try:
                if parse is not None:
                    parse(value)
            except ValueError:
                pass
            else:
                return value if stored is None else stored(value)
        return full(value)

    return decode


def _sqlite_uuid(text: str) -> str:
    return text.replace("-", "")  # Django keeps UUIDs in SQLite as 32 hex digits


def _sqlite_datetime(text: str) -> str:
    # What Django writes for an aware datetime in SQLite: str() of it in UTC, without time zone,
    # and without the microseconds when they are zero.
    fraction = text[19:-1]
    return text[:10] + " " + text[11:19] + ("" if fraction in ("", ".000000") else fraction)


def _text_decimal(spec: FieldSpec) -> Decoder:
    full = _decode_decimal(spec)
    places = spec.decimal_places or 0
    whole_limit = (spec.max_digits or 0) - places

    def decode(value: Any) -> Any:
        if type(value) is str and (match := _PLAIN_DECIMAL.fullmatch(value)):
            whole, fraction = match.group(1), match.group(2) or ""
            # The same digit count as `_decode_decimal` makes from the Decimal's tuple.
            digits = len((whole + fraction).lstrip("0")) or 1
            if len(fraction) <= places and max(digits - len(fraction), 0) <= whole_limit:
                return value
        return full(value)

    return decode


def text_decoder(spec: FieldSpec, vendor: str) -> Decoder | None:
    """For the fast path on `vendor` ('postgresql' or 'sqlite'), a decoder that returns canonical
    values as text in the form the database stores, or None when the type has none (`decoder`
    applies). Master and user references are looked up instead."""
    if spec.kind in ("master_fk", "user_fk"):
        return None
    sqlite = vendor == "sqlite"
    match spec.type:
        case "uuid":
            return _text_checked(
                _CANONICAL_UUID, None, _decode_uuid, _sqlite_uuid if sqlite else None
            )
        case "date":
            return _text_checked(_CANONICAL_DATE, dt.date.fromisoformat, _decode_date)
        case "datetime":
            return _text_checked(
                _CANONICAL_DATETIME,
                dt.datetime.fromisoformat,
                _decode_datetime,
                _sqlite_datetime if sqlite else None,
            )
        case "decimal":
            # Both store the decimal the text says (SQLite as a number, like Django's own text).
            return _text_decimal(spec)
    return None
