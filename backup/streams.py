"""Opening the byte streams a backup is written to or read from, gzip included."""

import gzip
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"


@contextmanager
def open_output(
    target: str | Path | BinaryIO | None, *, compress: bool | None = None
) -> Iterator[BinaryIO]:
    """A binary stream to write to: a path ('-' or None for stdout) or a file object.

    Compressed when asked, or when the path ends in `.gz`. The gzip header carries no timestamp
    so that the same data gives the same bytes.
    """
    if compress is None:
        compress = isinstance(target, str | Path) and str(target).endswith(".gz")
    close: BinaryIO | None = None
    if target is None or target == "-":
        raw: BinaryIO = sys.stdout.buffer
    elif isinstance(target, str | Path):
        raw = close = open(target, "wb")  # noqa: SIM115 - closed below
    else:
        raw = target
    try:
        if compress:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped:
                yield zipped  # type: ignore[misc]
        else:
            yield raw
        raw.flush()
    finally:
        if close is not None:
            close.close()


@contextmanager
def open_input(source: str | Path | BinaryIO) -> Iterator[BinaryIO]:
    """A binary stream to read a backup from; gzip is recognised by its magic bytes."""
    close: BinaryIO | None = None
    if source == "-":
        raw: BinaryIO = sys.stdin.buffer
    elif isinstance(source, str | Path):
        raw = close = open(source, "rb")  # noqa: SIM115 - closed below
    else:
        raw = source
    try:
        buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
        if buffered.peek(2)[:2] == GZIP_MAGIC:
            yield gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[misc]
        else:
            yield buffered
    finally:
        if close is not None:
            close.close()
