"""Opening the byte streams a backup is written to or read from: gzip and zstd, and age
encryption (`encryption`) outside them."""

import gzip
import hashlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from backup.format.archive import ArchiveReader, is_archive
from backup.format.encryption import Decryption, Encryption, decrypted, encrypting

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# On backup JSON zstd's level 1 is smaller than gzip -6 and several times faster; its default
# (3) is no smaller than level 1 there (bench/stored.py, bench/results/).
ZSTD_LEVEL = 1


Compression = str  # "gzip" or "zstd"


def compression_for(path: str | Path) -> Compression | None:
    """The compression a file name asks for: `.gz` gzip, `.zst` zstd, anything else none."""
    name = str(path)
    return "gzip" if name.endswith(".gz") else "zstd" if name.endswith(".zst") else None


@contextmanager
def compressed(
    raw: BinaryIO, compression: Compression | None, *, level: int | None = None
) -> Iterator[BinaryIO]:
    """`raw` behind the compressor asked for; closing it finishes the compressed stream but
    leaves `raw` open. `level`: zstd's (default `ZSTD_LEVEL`). zstd compresses in a thread of
    its own (the library's worker, which releases the GIL), beside the export, not in its way."""
    if compression is None:
        yield raw
    elif compression == "gzip":
        # No timestamp in the header, so that the same data gives the same bytes.
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped:
            yield zipped  # type: ignore[misc]
    elif compression == "zstd":
        compressor = zstandard.ZstdCompressor(
            level=level or ZSTD_LEVEL, threads=1, write_checksum=True
        )
        with compressor.stream_writer(raw, closefd=False) as zipped:
            yield zipped  # type: ignore[misc]
    else:
        raise ValueError(f"unknown compression {compression!r}")


@contextmanager
def open_output(
    target: str | Path | BinaryIO | None,
    *,
    compress: bool | Compression | None = None,
    encryption: Encryption | None = None,
) -> Iterator[BinaryIO]:
    """A binary stream to write to: a path ('-' or None for stdout) or a file object.

    Compressed as asked (`True` is gzip), or as the path's name says (`.gz`, `.zst`; `.age`
    after them is skipped), then encrypted when `encryption` says to whom. A path gets the file
    only once it is complete: it is written under a temporary name beside it, so that an export
    that fails leaves no truncated backup, nor destroys the file that was there.
    """
    if compress is None and isinstance(target, str | Path):
        compression = compression_for(str(target).removesuffix(".age"))
    elif compress is None:
        compression = None
    else:
        compression = "gzip" if compress is True else compress or None
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
        with sealed(raw, encryption) as encrypted, compressed(encrypted, compression) as out:
            yield out
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
def sealed(raw: BinaryIO, encryption: Encryption | None) -> Iterator[BinaryIO]:
    """`raw` behind age encryption when `encryption` says to whom, else `raw` itself."""
    if encryption is None:
        yield raw
    else:
        with encrypting(raw, encryption) as writer:
            yield writer


@contextmanager
def open_input(
    source: str | Path | BinaryIO, *, decryption: Decryption | None = None
) -> Iterator[BinaryIO]:
    """A binary stream to read a backup from; age encryption, then gzip and zstd, or an archive
    with files (whose document is the stream, `archive.archive_of`), are recognised by their
    content, whatever the file is called. An encrypted file needs `decryption`, and
    `decryption` needs an encrypted file."""
    close: BinaryIO | None = None
    if source == "-":
        raw: BinaryIO = sys.stdin.buffer
    elif isinstance(source, str | Path):
        raw = close = open(source, "rb")  # noqa: SIM115 - closed below
    else:
        raw = source
    try:
        buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
        with decrypted(buffered, decryption) as plain:
            yield from _decompressed(plain)
    finally:
        if close is not None:
            close.close()


def _decompressed(buffered: io.BufferedReader) -> Iterator[BinaryIO]:
    """The one stream `buffered` holds, decompressed as its magic bytes say."""
    head = buffered.peek(4)[:4]
    if head[:2] == GZIP_MAGIC:
        yield gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[misc]
    elif is_archive(head):
        yield ArchiveReader(buffered).document()
    elif head == ZSTD_MAGIC:
        # read_across_frames: a file of several frames (zstd files concatenated) reads whole.
        yield zstandard.ZstdDecompressor().stream_reader(  # type: ignore[misc]
            buffered, read_across_frames=True, closefd=False
        )
    else:
        yield buffered


class HashingReader(io.RawIOBase):
    """Passes bytes through while computing their SHA-256 (of the file as stored)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> str:
        while self.readinto(bytearray(1 << 20)):
            pass
        return self.digest.hexdigest()
