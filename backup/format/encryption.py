"""age encryption of backup files (pyrage): to public keys (X25519 recipients, `age1...`) or with
a passphrase, and decryption with the matching identities (`AGE-SECRET-KEY-1...`) or passphrase.

A file is encrypted outside its compression (the document is compressed, then encrypted) and
recognised as encrypted by its content, whatever it is called. To recipients it streams both
ways: pyrage reads from one end of a pipe while the export writes into the other (or writes into
a pipe the import reads), each in a thread of its own, so memory stays flat whatever the size.
pyrage encrypts with a passphrase only as a whole, in memory: such files are held whole, up to
`BACKUP_PASSPHRASE_MAX_BYTES`, and a larger backup asks for recipients instead.

age authenticates what it decrypts, chunk by chunk: a wrong key, a file cut short or a byte
changed is an error (`DecryptionFailed`), never data.
"""

import contextlib
import io
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyrage
from django.conf import settings

from backup.errors import (
    DecryptionFailed,
    EncryptedFile,
    ExportFailed,
    InvalidKey,
    NotEncrypted,
    Refused,
    WrongKey,
)

AGE_MAGIC = b"age-encryption.org/v1\n"
ARMOR_MAGIC = b"-----BEGIN AGE ENCRYPTED FILE-----"
PIPE_CHUNK = 1 << 16


def is_encrypted(head: bytes) -> bool:
    """Whether a file starting with `head` (at least 34 bytes of it, when it has them) is an
    age file, binary or armored (PEM-like text)."""
    return head.startswith(AGE_MAGIC) or head.lstrip().startswith(ARMOR_MAGIC)


@dataclass(frozen=True)
class Encryption:
    """How to encrypt a backup: to these recipients, or with this passphrase."""

    recipients: tuple[str, ...] = ()
    passphrase: str = ""

    def __post_init__(self) -> None:
        if bool(self.recipients) == bool(self.passphrase):
            raise InvalidKey("Encrypt to recipients (age public keys) or with a passphrase: one.")
        _recipients(self.recipients)  # refused here, before anything is written

    def describe(self) -> dict[str, Any]:
        """What the audit trail records: never the passphrase."""
        if self.passphrase:
            return {"encrypted": "passphrase"}
        return {"encrypted": "recipients", "recipients": list(self.recipients)}


@dataclass(frozen=True)
class Decryption:
    """How to decrypt a backup: with one of these identities, or with this passphrase."""

    identities: tuple[str, ...] = ()
    passphrase: str = ""

    def __post_init__(self) -> None:
        if not self.identities and not self.passphrase:
            raise InvalidKey("Give an age identity (secret key) or a passphrase to decrypt with.")
        _identities(self.identities)


def _recipients(keys: tuple[str, ...]) -> list[Any]:
    return _parsed(
        pyrage.x25519.Recipient,
        pyrage.RecipientError,
        keys,
        lambda n, key: f"Recipient {n} ({_shown(key)}) is not an age public key (age1...).",
    )


def _identities(keys: tuple[str, ...]) -> list[Any]:
    # Never the key itself in a message: it is a secret.
    return _parsed(
        pyrage.x25519.Identity,
        pyrage.IdentityError,
        keys,
        lambda n, _key: f"Identity {n} is not an age secret key (AGE-SECRET-KEY-1...).",
    )


def _parsed(
    kind: Any, error: type[Exception], keys: tuple[str, ...], refusal: Callable[[int, str], str]
) -> list[Any]:
    parsed = []
    for number, key in enumerate(keys, 1):
        try:
            parsed.append(kind.from_str(key.strip()))
        except error:
            raise InvalidKey(refusal(number, key)) from None
    return parsed


def _shown(key: str) -> str:
    key = key.strip()
    return repr(key if len(key) <= 24 else key[:20] + "...")


def identities_in(text: str) -> tuple[str, ...]:
    """The identities of an identity file as `age-keygen` writes it: one key per line, `#`
    comments and blank lines ignored."""
    lines = (line.strip() for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def max_passphrase_bytes() -> int:
    return int(settings.BACKUP_PASSPHRASE_MAX_BYTES)


# -- writing ------------------------------------------------------------------------------------


@contextmanager
def encrypting(raw: BinaryIO, encryption: Encryption) -> Iterator[BinaryIO]:
    """A writer whose bytes reach `raw` encrypted; the file is complete when the block ends
    without an error. `raw` stays open."""
    if encryption.passphrase:
        with _encrypting_whole(raw, encryption.passphrase) as writer:
            yield writer
        return
    recipients = _recipients(encryption.recipients)
    read_end, write_end = os.pipe()
    failed: list[BaseException] = []

    def encrypt() -> None:
        with open(read_end, "rb", buffering=PIPE_CHUNK) as source:
            try:
                pyrage.encrypt_io(source, raw, recipients)
            except BaseException as exc:  # handed to the writing thread below
                failed.append(exc)

    thread = threading.Thread(target=encrypt, name="age-encrypt", daemon=True)
    thread.start()
    writer = open(write_end, "wb", buffering=PIPE_CHUNK)  # noqa: SIM115 - closed below
    try:
        yield writer
        writer.close()  # the end of the plaintext: pyrage writes the last chunk
    except BrokenPipeError:
        # The encrypting thread stopped (it closed its end): its error is the one to report.
        _close_quietly(writer)
        thread.join()
        raise _encryption_failed(failed) from None
    except BaseException:
        # Left without the end of the plaintext: whatever pyrage wrote is incomplete, and the
        # caller discards it.
        _close_quietly(writer)
        thread.join()
        raise
    thread.join()
    if failed:
        raise _encryption_failed(failed)


def encrypted_chunks(chunks: Iterator[bytes], encryption: Encryption) -> Iterator[bytes]:
    """The stream of `chunks` encrypted, as a stream of chunks (a streamed HTTP response): each
    chunk's ciphertext is handed on as soon as age has written it."""
    sink = _Collected()
    with encrypting(sink, encryption) as writer:  # type: ignore[arg-type]
        for chunk in chunks:
            writer.write(chunk)
            if ready := sink.take():
                yield ready
    if ready := sink.take():
        yield ready


class _Collected(io.RawIOBase):
    """What the encrypting thread writes, until the reading side takes it."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        with self.lock:
            self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        with self.lock:
            taken, self.parts = b"".join(self.parts), []
        return taken


def _close_quietly(stream: BinaryIO) -> None:
    with contextlib.suppress(OSError):  # a pipe whose other end has gone
        stream.close()


def _encryption_failed(failed: list[BaseException]) -> BaseException:
    if failed and isinstance(failed[0], OSError):
        return failed[0]  # the destination's own error (a full disk, a closed connection)
    return ExportFailed(f"The backup could not be encrypted: {failed[0] if failed else '?'}")


class _Bounded(io.RawIOBase):
    """Collects what is written, up to `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.buffer = io.BytesIO()
        self.limit = limit

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.buffer.tell() + len(data) > self.limit:
            raise ExportFailed(
                f"This backup is larger than BACKUP_PASSPHRASE_MAX_BYTES ({self.limit:,} bytes "
                "compressed), the most encrypted with a passphrase (which is done in memory): "
                "encrypt it to recipients (age public keys) instead."
            )
        return self.buffer.write(data)


@contextmanager
def _encrypting_whole(raw: BinaryIO, passphrase: str) -> Iterator[BinaryIO]:
    collected = _Bounded(max_passphrase_bytes())
    yield collected  # type: ignore[misc]
    raw.write(pyrage.passphrase.encrypt(collected.buffer.getvalue(), passphrase))


# -- reading ------------------------------------------------------------------------------------


@contextmanager
def decrypted(
    buffered: io.BufferedReader, decryption: Decryption | None
) -> Iterator[io.BufferedReader]:
    """The plaintext of `buffered` when it is an age file, `buffered` itself when it is not;
    refused when the file and `decryption` disagree on whether it is encrypted."""
    encrypted = is_encrypted(buffered.peek(64)[:64])
    if not encrypted:
        if decryption is not None:
            raise NotEncrypted(
                "The file is not encrypted, though a key or passphrase to decrypt it was given: "
                "is it the backup you meant?"
            )
        yield buffered
        return
    if decryption is None:
        raise EncryptedFile(
            "The file is encrypted (age): give the identity (secret key) it was encrypted to, or "
            "its passphrase, to import it."
        )
    if decryption.passphrase:
        yield io.BufferedReader(_decrypted_whole(buffered, decryption.passphrase))  # type: ignore[arg-type]
        return
    with _decrypting(buffered, _identities(decryption.identities)) as plaintext:
        yield plaintext


def _decrypted_whole(source: BinaryIO, passphrase: str) -> io.BytesIO:
    limit = max_passphrase_bytes()
    ciphertext = source.read(limit + 1)
    if len(ciphertext) > limit:
        raise Refused(
            f"This encrypted file is larger than BACKUP_PASSPHRASE_MAX_BYTES ({limit:,} bytes), "
            "the most decrypted with a passphrase (which is done in memory)."
        )
    try:
        return io.BytesIO(pyrage.passphrase.decrypt(ciphertext, passphrase))
    except pyrage.DecryptError as exc:
        raise _failure(str(exc), "passphrase") from None


@contextmanager
def _decrypting(source: BinaryIO, identities: list[Any]) -> Iterator[io.BufferedReader]:
    read_end, write_end = os.pipe()
    failed: list[BaseException] = []

    def decrypt() -> None:
        sink = open(write_end, "wb", buffering=PIPE_CHUNK)  # noqa: SIM115 - closed below
        try:
            pyrage.decrypt_io(source, sink, identities)
        except BrokenPipeError:
            pass  # the reader stopped reading: nothing to report
        except BaseException as exc:
            failed.append(exc)
        finally:
            _close_quietly(sink)

    thread = threading.Thread(target=decrypt, name="age-decrypt", daemon=True)
    thread.start()
    reader = _Checked(open(read_end, "rb", buffering=0), thread, failed)  # noqa: SIM115
    try:
        yield io.BufferedReader(reader, PIPE_CHUNK)
    finally:
        reader.close()  # a thread still writing gets a broken pipe and stops
        thread.join()


class _Checked(io.RawIOBase):
    """The pipe's plaintext; at its end, the decrypting thread's error if it had one, so that a
    file cut short or changed is an error and not a shorter backup."""

    def __init__(self, pipe: Any, thread: threading.Thread, failed: list[BaseException]) -> None:
        self.pipe = pipe
        self.thread = thread
        self.failed = failed

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self.pipe.readinto(buffer)
        if not count:
            self.thread.join()
            if self.failed:
                raise _failure(str(self.failed[0]), "identity")
        return count

    def close(self) -> None:
        self.pipe.close()
        super().close()


def _failure(detail: str, key: str) -> DecryptionFailed:
    if detail == "No matching keys found":
        if key == "passphrase":
            return WrongKey(
                "The file was encrypted to age public keys, not with a passphrase: give the "
                "identity (secret key) it was encrypted to."
            )
        return WrongKey(
            "The file cannot be decrypted with the identities given: it was encrypted to "
            "another key (or with a passphrase)."
        )
    if detail == "Decryption failed" and key == "passphrase":
        return WrongKey(
            "The file cannot be decrypted with this passphrase: the passphrase is wrong."
        )
    return DecryptionFailed(
        "The encrypted file is damaged: it was cut short or changed after it was written "
        f"(age: {detail})."
    )
