"""The options that encrypt a backup (`export_tenant`) and decrypt one (`import_tenant`): age
public keys, identity files as `age-keygen` writes them, and a passphrase read from a file (never
from the command line, where other users of the machine can see it)."""

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from backup.errors import InvalidKey
from backup.format.encryption import Decryption, Encryption, identities_in


def add_encryption_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--recipient",
        action="append",
        default=[],
        metavar="AGE_PUBLIC_KEY",
        help="encrypt (age) to this public key, age1...; repeat for several",
    )
    parser.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help="encrypt (age) with the passphrase in FILE (its first line)",
    )


def add_decryption_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--identity",
        action="append",
        default=[],
        metavar="FILE",
        help="decrypt with the age identity (secret key) file FILE, as age-keygen writes it; "
        "repeat for several",
    )
    parser.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help="decrypt with the passphrase in FILE (its first line)",
    )


def encryption_from(options: dict[str, Any]) -> Encryption | None:
    recipients = tuple(options["recipient"])
    passphrase = _passphrase(options["passphrase_file"])
    if not recipients and not passphrase:
        return None
    if recipients and passphrase:
        raise CommandError("Encrypt to --recipient keys or with --passphrase-file, not both.")
    return _checked(lambda: Encryption(recipients=recipients, passphrase=passphrase))


def decryption_from(options: dict[str, Any]) -> Decryption | None:
    identities: list[str] = []
    for name in options["identity"]:
        found = identities_in(_read(name, "identity file"))
        if not found:
            raise CommandError(f"The identity file {name} holds no key.")
        identities.extend(found)
    passphrase = _passphrase(options["passphrase_file"])
    if not identities and not passphrase:
        return None
    return _checked(lambda: Decryption(identities=tuple(identities), passphrase=passphrase))


def _checked(make: Any) -> Any:
    try:
        return make()
    except InvalidKey as exc:
        raise CommandError(exc.message, returncode=exc.exit_code) from None


def _passphrase(name: str | None) -> str:
    if not name:
        return ""
    lines = _read(name, "passphrase file").splitlines()
    if not lines or not lines[0]:
        raise CommandError(
            f"The passphrase file {name} is empty: its first line is the passphrase."
        )
    return lines[0]


def _read(name: str, what: str) -> str:
    try:
        return Path(name).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise CommandError(f"Cannot read the {what} {name}: {reason}.") from None
