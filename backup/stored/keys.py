"""The deployment's age keys for stored backups: with `BACKUP_AGE_RECIPIENTS` set, every stored
backup asked for from then on is encrypted to those public keys at rest (and to its tenant's own
in `BACKUP_AGE_TENANT_RECIPIENTS`); the workers open them again (restores, drills) with the
secret keys in `BACKUP_AGE_IDENTITY_FILE`, which the machines that only make backups need not
hold.

Whether a stored backup is encrypted is decided when it is asked for and recorded in its storage
name (`.age` at the end), so that a backup and its file always agree.

The same keys serve the page's and the API's downloads (encrypted to them on request) and
uploads (an encrypted upload typed in without a passphrase is opened with them).
"""

from pathlib import Path
from typing import Any

from django.conf import settings

from backup.errors import InvalidKey, StorageFailed
from backup.format.encryption import Decryption, Encryption, identities_in
from backup.models import StoredBackup
from tenants.models import Tenant


def recipients() -> tuple[str, ...]:
    """The deployment's public keys."""
    return _keys(settings.BACKUP_AGE_RECIPIENTS)


def tenant_recipients(slug: str) -> tuple[str, ...]:
    """The tenant's own public keys (`BACKUP_AGE_TENANT_RECIPIENTS`), beside the deployment's."""
    return _keys(settings.BACKUP_AGE_TENANT_RECIPIENTS.get(slug, ()))


def _keys(listed: Any) -> tuple[str, ...]:
    if isinstance(listed, str):
        listed = [listed]
    return tuple(key.strip() for key in listed if isinstance(key, str) and key.strip())


def encrypting_at_rest() -> bool:
    return bool(recipients())


def encryption_for(backup: StoredBackup) -> Encryption | None:
    """How the worker encrypts the backup's file: None for a backup asked for unencrypted."""
    if not backup.encrypted:
        return None
    if not encrypting_at_rest():
        raise StorageFailed(
            "This backup was asked for while stored backups were encrypted "
            "(BACKUP_AGE_RECIPIENTS), and no recipient is set now: set BACKUP_AGE_RECIPIENTS "
            "again, or make a new backup."
        )
    try:
        return Encryption(recipients=recipients() + tenant_recipients(backup.tenant.slug))
    except InvalidKey as exc:
        raise StorageFailed(
            f"BACKUP_AGE_RECIPIENTS or BACKUP_AGE_TENANT_RECIPIENTS: {exc.message}"
        ) from None


def decryption_for(backup: StoredBackup) -> Decryption | None:
    """How a worker opens the backup's file: None for an unencrypted one."""
    if not backup.encrypted:
        return None
    identities = deployment_identities()
    if not identities:
        raise StorageFailed(
            f"Backup {backup.pk} is encrypted at rest and BACKUP_AGE_IDENTITY_FILE is not set: "
            "the workers need the secret key it was encrypted to."
        )
    return Decryption(identities=identities)


def deployment_identities() -> tuple[str, ...]:
    """The deployment's secret keys (`BACKUP_AGE_IDENTITY_FILE`); none when it is not set."""
    name = settings.BACKUP_AGE_IDENTITY_FILE
    if not name:
        return ()
    try:
        identities = identities_in(Path(name).read_text())
    except OSError as exc:
        raise StorageFailed(
            f"The identity file (BACKUP_AGE_IDENTITY_FILE) cannot be read: {exc.strerror}."
        ) from None
    try:
        Decryption(identities=identities)
    except InvalidKey as exc:
        raise StorageFailed(f"BACKUP_AGE_IDENTITY_FILE: {exc.message}") from None
    return identities


# How a download from the page or the API may be encrypted.
NOT_ENCRYPTED, TO_KEYS, WITH_PASSPHRASE = "none", "keys", "passphrase"


def download_encryption(tenant: Tenant, how: str, passphrase: str = "") -> Encryption | None:
    """The encryption of a download asked for on the page or through the API: none, to the
    deployment's keys (`BACKUP_AGE_RECIPIENTS`, and the tenant's own), or with a passphrase."""
    if how == TO_KEYS:
        if not encrypting_at_rest():
            raise InvalidKey(
                "This deployment has no age keys (BACKUP_AGE_RECIPIENTS): encrypt the download "
                "with a passphrase instead."
            )
        return Encryption(recipients=recipients() + tenant_recipients(tenant.slug))
    if how == WITH_PASSPHRASE:
        if not passphrase:
            raise InvalidKey("Type the passphrase to encrypt the download with.")
        return Encryption(passphrase=passphrase)
    return None
