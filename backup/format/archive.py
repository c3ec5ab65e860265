"""A backup with its attachment files: a ZIP archive holding the backup document first
(`backup.json`), then each file as `files/<its name in storage>`.

Written and read as streams (stream-zip, stream-unzip): the document is read, checked and
planned before the first file arrives, so an import passes over the archive once, holding no
more than a chunk of any file. A streamed reader sees only the entries' own headers; the
archive's directory at its end is checked against them once the entries were read, so that an
entry stored as a link is refused too.
"""

import datetime as dt
import io
import stat
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from stream_unzip import UnzipError, stream_unzip
from stream_zip import NO_COMPRESSION_64, ZIP_64, stream_zip

from backup.errors import InvalidFile

DOCUMENT_NAME = "backup.json"
FILES_DIR = "files/"
ZIP_SIGNATURE = b"PK"
# Entries carry a fixed time, so that the same backup gives the same bytes.
_ENTRY_TIME = dt.datetime(2000, 1, 1)
_ENTRY_MODE = stat.S_IFREG | 0o600
# The archive's directory is read from what the stream kept of its end: at most this much.
_DIRECTORY_LIMIT = 16 << 20
# What is kept while an entry's data is read: more than the unzipper reads ahead of its data.
_WINDOW = 1 << 20
_CHUNK = 1 << 16


@dataclass(frozen=True)
class ArchivedFile:
    """A file of the archive as the document's `files` section lists it."""

    name: str  # its name in storage
    size: int
    sha256: str
    crc32: int = 0  # only while writing: a stored entry's header needs it before its bytes

    def listed(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256}


FileChunks = tuple[ArchivedFile, Iterable[bytes]]


def archive_chunks(
    document: Iterable[bytes], files: Callable[[], Iterable[FileChunks]]
) -> Iterator[bytes]:
    """The archive as a stream of chunks: the document deflated, then the files stored as
    they are (attachments are mostly compressed already). `files` is called once the document
    was written, which is when its list of files is known."""

    def members() -> Iterator[tuple[str, dt.datetime, int, Any, Iterable[bytes]]]:
        yield DOCUMENT_NAME, _ENTRY_TIME, _ENTRY_MODE, ZIP_64, document
        for entry, chunks in files():
            method = NO_COMPRESSION_64(entry.size, entry.crc32)
            yield FILES_DIR + entry.name, _ENTRY_TIME, _ENTRY_MODE, method, chunks

    yield from stream_zip(
        members(),
        chunk_size=_CHUNK,
        get_compressobj=lambda: zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS),
        extended_timestamps=False,
    )


def is_archive(head: bytes) -> bool:
    return head[:2] == ZIP_SIGNATURE


def safe_name(entry: str) -> str:
    """The name in storage of the archive entry `files/<name>`; anything that could leave the
    storage's own names (`..`, an absolute path, a drive, a backslash) is refused."""
    if not entry.startswith(FILES_DIR):
        raise InvalidFile(
            f"The archive has an entry '{entry}' outside '{FILES_DIR}': an archive of a backup "
            f"holds only {DOCUMENT_NAME} and the files under '{FILES_DIR}'."
        )
    name = entry.removeprefix(FILES_DIR)
    parts = name.split("/")
    if (
        any(part in ("", ".", "..") for part in parts)  # absolute, a directory, '//', climbing
        or "\\" in name
        or "\x00" in name
        or ":" in parts[0]
    ):
        raise InvalidFile(
            f"The archive's entry '{entry}' is not a plain relative file name (it climbs out "
            "with '..', is absolute, names a directory or uses a backslash or a drive): refused."
        )
    return name


class _Kept:
    """The archive's bytes as chunks, keeping the last of them: while an entry's data is read,
    a window of the last few; between entries and after the last one, all, so that once the
    entries were read what is kept holds the archive's directory."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.tail: deque[bytes] = deque()
        self.kept = 0
        self.in_entry = False

    def chunks(self) -> Iterator[bytes]:
        while chunk := self.raw.read(_CHUNK):
            self.tail.append(chunk)
            self.kept += len(chunk)
            limit = _WINDOW if self.in_entry else _DIRECTORY_LIMIT
            while self.kept - len(self.tail[0]) >= limit:
                self.kept -= len(self.tail.popleft())
            yield chunk


class _EntryStream(io.RawIOBase):
    """An entry's bytes as a readable stream (for the document's JSON reader)."""

    def __init__(self, chunks: Iterator[bytes], archive: "ArchiveReader") -> None:
        self._chunks = chunks
        self._pending = b""
        self.archive = archive

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self.archive.next_chunk(self._chunks)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def drain(self) -> None:
        while self.archive.next_chunk(self._chunks) is not None:
            pass


class ArchiveReader:
    """Reads a backup archive in the order it was written: `document()`, then `files()`,
    then `check_directory()`. Damage anywhere is an `InvalidFile` naming the entry."""

    def __init__(self, raw: BinaryIO) -> None:
        self._kept = _Kept(raw)
        # No ZIP encryption: a backup is encrypted with age, around the whole archive.
        self._entries = stream_unzip(self._kept.chunks(), allowed_encryption_mechanisms=())
        self._where = "the start of the archive"
        self._names: list[str] = []
        self._document: _EntryStream | None = None

    def _failed(self, exc: Exception) -> InvalidFile:
        detail = type(exc).__name__
        return InvalidFile(
            f"The archive is damaged or not a ZIP file this application reads ({detail}), in "
            f"{self._where}."
        )

    def next_chunk(self, chunks: Iterator[bytes]) -> bytes | None:
        self._kept.in_entry = True
        try:
            return next(chunks)
        except StopIteration:
            self._kept.in_entry = False
            return None
        except (UnzipError, zlib.error, ValueError) as exc:
            raise self._failed(exc) from None

    def _next_entry(self) -> tuple[str, Iterator[bytes]] | None:
        try:
            raw_name, _size, chunks = next(self._entries)
        except StopIteration:
            return None
        except (UnzipError, zlib.error, ValueError) as exc:
            raise self._failed(exc) from None
        try:
            name = raw_name.decode()
        except UnicodeDecodeError:
            raise InvalidFile(
                f"The archive has an entry whose name is not UTF-8, after {self._where}."
            ) from None
        if name in self._names:
            raise InvalidFile(f"The archive has the entry '{name}' twice.")
        self._names.append(name)
        self._where = f"entry '{name}'"
        return name, iter(chunks)

    def document(self) -> BinaryIO:
        """The backup document, the archive's first entry, as a stream."""
        entry = self._next_entry()
        if entry is None or entry[0] != DOCUMENT_NAME:
            raise InvalidFile(
                f"The archive's first entry must be the backup document {DOCUMENT_NAME}"
                + (f", not '{entry[0]}'." if entry else ": the archive is empty.")
            )
        self._document = _EntryStream(entry[1], self)
        return io.BufferedReader(self._document)  # type: ignore[arg-type]

    def files(self) -> Iterator[tuple[str, Iterator[bytes]]]:
        """Each file after the document: (its name in storage, its chunks). The chunks of one
        must be read, or left, before the next is asked for."""
        if self._document is not None:
            self._document.drain()
        while (entry := self._next_entry()) is not None:
            name, chunks = entry
            yield safe_name(name), self._checked(chunks)

    def _checked(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        while (chunk := self.next_chunk(chunks)) is not None:
            yield chunk

    def check_directory(self) -> None:
        """The archive's directory (read once every entry was) lists the entries read, in
        their order, each a plain file."""
        self._where = "the archive's directory"
        try:
            directory = zipfile.ZipFile(io.BytesIO(b"".join(self._kept.tail)))
            infos = directory.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise InvalidFile(
                f"The archive's directory could not be read ({exc}): the archive is damaged, "
                "or its directory is larger than a backup's needs."
            ) from None
        for info in infos:
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind == stat.S_IFLNK:
                raise InvalidFile(
                    f"The archive's entry '{info.filename}' is a link: an archive of a backup "
                    "holds only files."
                )
            if info.is_dir():
                raise InvalidFile(f"The archive's entry '{info.filename}' is a directory.")
        if [info.filename for info in infos] != self._names:
            raise InvalidFile(
                "The archive's directory does not list the entries the archive holds: the "
                "archive was altered."
            )


def archive_of(stream: Any) -> ArchiveReader | None:
    """The archive a document stream (`ArchiveReader.document`) was read from, if any."""
    raw = getattr(stream, "raw", None)
    return raw.archive if isinstance(raw, _EntryStream) else None
