"""Opening the byte streams a backup is written to or read from, gzip included."""

import gzip
import io
import os
import sys
import tempfile
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
    so that the same data gives the same bytes. A path gets the file only once it is complete:
    it is written under a temporary name beside it, so that an export that fails leaves no
    truncated backup, nor destroys the file that was there.
    """
    if compress is None:
        compress = isinstance(target, str | Path) and str(target).endswith(".gz")
    path: Path | None = None
    if target is None or target == "-":
        raw: BinaryIO = sys.stdout.buffer
    elif isinstance(target, str | Path):
        path = Path(target)
        raw = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below
            "wb", dir=path.parent, prefix=f".{path.name}.", suffix=".partial", delete=False
        )
    else:
        raw = target
    try:
        if compress:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped:
                yield zipped  # type: ignore[misc]
        else:
            yield raw
        raw.flush()
    except BaseException:
        if path is not None:
            raw.close()
            os.unlink(raw.name)
        raise
    if path is not None:
        raw.close()
        os.replace(raw.name, path)


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
