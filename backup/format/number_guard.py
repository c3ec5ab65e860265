"""The guard in front of the JSON parser that refuses a number too long to read.

ijson's C parser turns an integer into a Python `int` without checking the result: an integer of
more digits than Python converts (`sys.get_int_max_str_digits`, 4,300 by default) leaves a null
value in its event, and the process dies of a segmentation fault when the number crosses one of
the parser's reads. So the bytes are checked before the parser sees them: a run of more digits
than that, outside a JSON string, stops the import with `NumberTooLong`. The same run inside a
string (a long number in a note, say) is text and passes.

Whether a run lies inside a string is decided by the quotes before it that are not escaped: in
any text the parser accepts up to that point, that parity is exactly its own string state (JSON
has no other quoting, and a backslash outside a string is already a parse error there).

Cheap for the bytes of a normal backup: a run of `2k + 1` digits holds two digits `k` bytes
apart, so only every `k`-th byte is looked at first, and the quotes of a chunk are counted by
`bytes.count` (escapes are only looked for in a chunk that has a backslash).
"""

import re
import sys

_DIGITS = b"0123456789"
_DIGIT_CODES = frozenset(_DIGITS)
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_LEADING_DIGITS = re.compile(rb"[0-9]*")


class NumberTooLong(Exception):
    def __init__(self, digits: int, offset: int, *, more: bool) -> None:
        self.digits = digits
        self.offset = offset  # of the number's first digit, in the decompressed file
        self.more = more  # the run goes on past what has been read
        super().__init__(f"{digits} digits at byte {offset}")


def _unescaped_quotes(data: bytes, escaped_first: bool) -> tuple[int, bool]:
    """The quotes in `data` that are not escaped, and whether the byte after it is escaped."""
    if escaped_first:
        data = data[1:]
    if b"\\" not in data:
        return data.count(b'"'), False
    # Escapes pair from the left (`\\"` is a backslash, then a quote); a backslash left over
    # can only be the last byte, and then it escapes the first byte of the next chunk.
    plain = _ESCAPE.sub(b"", data)
    return plain.count(b'"'), plain.endswith(b"\\")


class NumberGuard:
    """Checks the chunks of one stream in order; `check` raises `NumberTooLong`."""

    __slots__ = ("escaped", "in_string", "limit", "offset", "run", "run_start", "stride")

    def __init__(self, limit: int | None = None) -> None:
        self.limit = sys.get_int_max_str_digits() if limit is None else limit
        self.stride = max(self.limit // 2, 1)
        self.offset = 0  # bytes checked so far
        self.in_string = False  # at the end of what was checked
        self.escaped = False  # the next byte is escaped
        self.run = 0  # digits at the end of what was checked, outside a string
        self.run_start = 0

    def check(self, data: bytes) -> None:
        if not self.limit or not data:  # 0: Python converts integers of any length
            self.offset += len(data)
            return
        if self.run:
            self._continue_run(data)
        start = self._long_run(data)
        if start is not None:
            self._refuse_unless_quoted(data, start)
        quotes, self.escaped = _unescaped_quotes(data, self.escaped)
        self.in_string ^= bool(quotes & 1)
        self._note_trailing_run(data)
        self.offset += len(data)

    def _continue_run(self, data: bytes) -> None:
        """The previous chunk ended in digits outside a string: do they go on here?"""
        lead = _LEADING_DIGITS.match(data).end()  # type: ignore[union-attr]
        if self.run + lead > self.limit:
            more = lead == len(data)
            raise NumberTooLong(self.run + lead, self.run_start, more=more)

    def _long_run(self, data: bytes) -> int | None:
        """Where the first run of more than `limit` digits in `data` starts, or None."""
        k = self.stride
        previous = -k
        for position in range(0, len(data), k):
            if data[position] not in _DIGIT_CODES:
                continue
            if position - previous == k and data[previous:position].isdigit():
                before = data[max(previous - self.limit, 0) : previous]
                start = previous - (len(before) - len(before.rstrip(_DIGITS)))
                end = _LEADING_DIGITS.match(data, position).end()  # type: ignore[union-attr]
                if end - start > self.limit:
                    return start
            previous = position
        return None

    def _refuse_unless_quoted(self, data: bytes, start: int) -> None:
        while True:
            quotes, _escaped = _unescaped_quotes(data[:start], self.escaped)
            end = _LEADING_DIGITS.match(data, start).end()  # type: ignore[union-attr]
            if not self.in_string ^ bool(quotes & 1):
                raise NumberTooLong(end - start, self.offset + start, more=end == len(data))
            following = self._long_run(data[end:])
            if following is None:
                return
            start = end + following

    def _note_trailing_run(self, data: bytes) -> None:
        if self.in_string:
            self.run = 0
            return
        tail = data[-(self.limit + 1) :]
        digits = len(tail) - len(tail.rstrip(_DIGITS))
        if digits == len(data):  # the whole chunk: the run goes on, or starts here
            if not self.run:
                self.run_start = self.offset
            self.run += digits
            return
        self.run = digits
        self.run_start = self.offset + len(data) - digits
