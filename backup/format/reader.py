"""Streaming reader of the backup document (ijson), section by section and row by row.

The sections must come in the order the writer puts them in, so that the whole file never has to
be held: `metadata`, `schema`, `master_data`, `tenant_data`, `files` (only in an archive's
document), `statistics`. Anything that is not
a readable document of that shape raises `InvalidFile` saying where reading stopped.
"""

import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import ijson
import zstandard
from django.conf import settings

from backup.errors import InvalidFile
from backup.format.document import OPTIONAL_SECTIONS, SECTIONS
from backup.format.number_guard import NumberGuard, NumberTooLong
from backup.format.values import JSON_LEVELS


class _TooLong(Exception):
    pass


class _TooLarge(Exception):
    pass


class _Metered:
    """The stream the parser reads, counting its bytes, so that a row (or a section that is not
    a table) is refused once it takes more than `limit` of them, before its value fills memory:
    the parser's time grows with the square of a string's length, so one huge string in a small
    gzip file took an import minutes and gigabytes of memory. The whole file is refused past
    `total` bytes (decompressed), and every chunk passes the number guard before the parser sees
    it. The count runs up to a buffer ahead of the parser. Slots: the reader sets `mark` for
    every row."""

    __slots__ = ("count", "guard", "limit", "mark", "raw", "total")

    def __init__(self, raw: BinaryIO, limit: int, total: int | None) -> None:
        self.raw = raw
        self.limit = limit
        self.total = total
        self.guard = NumberGuard()
        self.count = 0  # bytes read
        self.mark = 0  # the count when the current row or section began

    def begin(self) -> None:
        """A row or section begins here."""
        self.mark = self.count

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        if self.count - self.mark > self.limit:
            raise _TooLong
        if self.total is not None and self.count > self.total:
            raise _TooLarge
        self.guard.check(data)
        return data


class BackupReader:
    def __init__(self, stream: BinaryIO, *, max_bytes: int | None = None) -> None:
        """`max_bytes`: the most bytes the document may have, decompressed (None: no limit)."""
        row_limit = int(getattr(settings, "BACKUP_MAX_ROW_BYTES", 16 << 20))
        self._meter = _Metered(stream, row_limit, max_bytes)
        # Numbers with a fraction or an exponent come as `Decimal`, integers of any size as
        # `int` (with `use_float` the parser refuses integers beyond 64 bits). basic_parse: the
        # reader keeps its own place, so the parser need not build a prefix string for every
        # event, which was a good part of the parsing time.
        self._events = ijson.basic_parse(self._meter)
        self.where = "the start of the file"
        self._section_index = -1
        self._started = False

    # -- low level ---------------------------------------------------------------------------
    def _next(self) -> tuple[str, Any]:
        try:
            event, value = next(self._events)
        except Exception as exc:
            raise self._error(exc) from None
        return event, value

    def _error(self, exc: BaseException) -> InvalidFile:
        """The `InvalidFile` that an exception of the parser or the decompressor stands for."""
        if isinstance(exc, StopIteration):
            return InvalidFile(f"The file ends too early, in {self.where} (truncated?).")
        if isinstance(exc, ijson.JSONError):
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "parse error"
            if "premature EOF" in detail:
                return InvalidFile(f"The file ends too early, in {self.where} (truncated?).")
            return InvalidFile(f"The file is not valid JSON ({detail}), in {self.where}.")
        if isinstance(exc, NumberTooLong):
            length = f"more than {exc.digits}" if exc.more else f"{exc.digits}"
            return InvalidFile(
                f"The file has a number of {length} digits, more than the "
                f"{self._meter.guard.limit} an import reads, at byte {exc.offset:,} of the "
                f"document (decompressed), after {self.where}."
            )
        if isinstance(exc, _TooLong):
            return InvalidFile(
                f"The file has more than {self._meter.limit:,} bytes in one row or value "
                f"(BACKUP_MAX_ROW_BYTES), in {self.where}."
            )
        if isinstance(exc, _TooLarge):
            return InvalidFile(
                f"The file is larger than the {self._meter.total:,} bytes (decompressed) "
                f"accepted here (BACKUP_UPLOAD_MAX_DECOMPRESSED_BYTES); reading stopped in "
                f"{self.where}."
            )
        if isinstance(exc, UnicodeDecodeError):
            return InvalidFile(
                f"The file has text that is not valid UTF-8 (a byte {exc.object[exc.start]:#04x} "
                f"where it cannot be, or an escaped lone surrogate), in {self.where}."
            )
        if isinstance(exc, OSError | EOFError | zlib.error | zstandard.ZstdError):
            kind = "zstd" if isinstance(exc, zstandard.ZstdError) else "gzip"
            return InvalidFile(
                f"The file could not be decompressed ({exc}), in {self.where}: "
                f"corrupt or truncated {kind} data."
            )
        raise exc

    def _value(self, event: str, value: Any, depth: int = 1) -> Any:
        """The value that starts with this event; `depth`: the levels of objects and lists it
        would start (the section's or the row's own counting as the first)."""
        if event != "start_map" and event != "start_array":
            return value
        # At most the levels an export writes (a row's or a section's own the first), which also
        # keeps this recursion far from Python's limit.
        if depth > JSON_LEVELS:
            raise InvalidFile(
                f"The file has a value nested more than {JSON_LEVELS - 1} levels deep, "
                f"in {self.where}: more than an export writes."
            )
        if event == "start_map":
            obj: dict[str, Any] = {}
            while True:
                event, key = self._next()
                if event == "end_map":
                    return obj
                if key in obj:
                    raise self._twice(f"'{key}'")
                obj[key] = self._value(*self._next(), depth + 1)
        items = []
        while True:
            event, value = self._next()
            if event == "end_array":
                return items
            items.append(self._value(event, value, depth + 1))

    def _twice(self, key: str) -> InvalidFile:
        return InvalidFile(
            f"The file has the key {key} twice in one object, in {self.where}: which of its "
            "values is meant is ambiguous."
        )

    def _expect(self, wanted: str, what: str) -> None:
        event, _value = self._next()
        if event != wanted:
            raise InvalidFile(f"Expected {what} in {self.where}, found {event.replace('_', ' ')}.")

    # -- sections ----------------------------------------------------------------------------
    def _section(self, name: str, *, optional: tuple[str, ...] = ()) -> str:
        """Enter the section `name`, or one of the `optional` ones that may come before it;
        returns the one entered."""
        if not self._started:
            self.where = "the start of the file"
            try:
                event, _value = self._next()
            except InvalidFile as exc:
                if "ends too early" in exc.message:
                    raise InvalidFile(
                        "The file is empty: there is no JSON document in it."
                    ) from None
                raise
            if event != "start_map":
                raise InvalidFile("The file is not a backup document: it is not a JSON object.")
            self._started = True
        event, key = self._next()
        if event == "end_map":
            raise InvalidFile(f"The section '{name}' is missing.")
        if key not in SECTIONS:
            raise InvalidFile(f"Unknown section '{key}': expected '{name}'.")
        if key != name and key not in optional:
            wanted = " or ".join(f"'{n}'" for n in (*optional, name))
            order = ", ".join(
                n + (" (optional)" if n in OPTIONAL_SECTIONS else "") for n in SECTIONS
            )
            raise InvalidFile(
                f"Section '{key}' where {wanted} was expected: the sections must come in the "
                f"order {order}."
            )
        self.where = f"section '{key}'"
        self._meter.begin()
        return key

    def object_section(self, name: str) -> dict[str, Any]:
        self._section(name)
        return self._object_value(name)

    def closing_sections(self) -> tuple[list[Any] | None, dict[str, Any]]:
        """The `files` section when there is one (a list, each item counted against the row
        limit on its own), then `statistics`."""
        files = None
        if self._section("statistics", optional=("files",)) == "files":
            self._expect("start_array", "a list of files in section 'files'")
            files = []
            while True:
                self._meter.begin()
                event, value = self._next()
                if event == "end_array":
                    break
                self.where = f"section 'files', item {len(files) + 1}"
                files.append(self._value(event, value))
            self._section("statistics")
        return files, self._object_value("statistics")

    def _object_value(self, name: str) -> dict[str, Any]:
        event, value = self._next()
        if event != "start_map":
            raise InvalidFile(f"Section '{name}' must be a JSON object.")
        return self._value(event, value)

    def table_section(self, name: str) -> Iterator[tuple[str, Iterator[tuple[int, Any]]]]:
        """Yields (table, rows); each row as (position counting from 1, value). The rows of a
        table must be consumed before the next table is asked for."""
        self._section(name)
        self._expect("start_map", f"an object of tables in section '{name}'")
        while True:
            event, table = self._next()
            if event == "end_map":
                self.where = f"the end of section '{name}'"
                return
            self.where = f"{name}.{table}"
            self._meter.begin()
            self._expect("start_array", f"a list of rows for table '{table}'")
            rows = self._rows(name, table)
            yield table, rows
            for _ in rows:  # whatever the consumer left unread
                pass

    def _rows(self, section: str, table: str) -> Iterator[tuple[int, Any]]:
        # The hot loop of every import: a flat row is built right here from the parser's
        # events, without a method call per event; only nested values recurse.
        position = 0
        where = f"{section}.{table} row "
        next_event = self._events.__next__
        value_of = self._value
        meter = self._meter
        try:
            while True:
                event, value = next_event()
                if event == "end_array":
                    return
                position += 1
                meter.mark = meter.count  # begin(), without a call for every row
                if event != "start_map":
                    self.where = where + str(position)
                    yield position, value_of(event, value)
                    continue
                row: dict[str, Any] = {}
                while True:
                    event, key = next_event()
                    if event == "end_map":
                        break
                    if key in row:
                        self.where = where + str(position)
                        raise self._twice(f"'{key}'")
                    event, value = next_event()
                    if event == "start_map" or event == "start_array":
                        self.where = f"{where}{position}, field '{key}'"
                        value = value_of(event, value, 2)
                    row[key] = value
                yield position, row
        except InvalidFile:
            raise
        except Exception as exc:
            self.where = where + str(position)
            raise self._error(exc) from None

    def finish(self) -> None:
        event, key = self._next()
        if event != "end_map":
            raise InvalidFile(f"Unexpected content after the last section: '{key}'.")
        self.where = "what follows the document"
        self._meter.begin()
        try:
            extra = next(self._events)
        except StopIteration:
            return
        except ijson.JSONError:
            raise InvalidFile("Unexpected content after the end of the document.") from None
        except (_TooLong, _TooLarge, NumberTooLong) as exc:
            raise self._error(exc) from None
        raise InvalidFile(f"Unexpected content after the end of the document: {extra[0]}.")
