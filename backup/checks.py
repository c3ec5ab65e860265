"""System checks of the backup settings, so that a mistake shows when the server or a worker
starts, not at the first backup of the night."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from backup.errors import InvalidKey
from backup.format.encryption import Decryption, Encryption, identities_in
from backup.stored import keys


@register()
def age_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """BACKUP_AGE_RECIPIENTS must be age public keys, and BACKUP_AGE_IDENTITY_FILE, when set, a
    readable file of age secret keys; encrypting without it only warns: the machines that only
    make backups need no secret key."""
    found: list[CheckMessage] = []
    recipients = keys.recipients()
    if recipients:
        try:
            Encryption(recipients=recipients)
        except InvalidKey as exc:
            found.append(Error(f"BACKUP_AGE_RECIPIENTS: {exc.message}", id="backup.E001"))
    found += _tenant_recipients(bool(recipients))
    name = settings.BACKUP_AGE_IDENTITY_FILE
    if name:
        try:
            Decryption(identities=identities_in(Path(name).read_text()))
        except OSError as exc:
            found.append(
                Error(f"BACKUP_AGE_IDENTITY_FILE {name}: {exc.strerror}.", id="backup.E002")
            )
        except InvalidKey as exc:
            found.append(Error(f"BACKUP_AGE_IDENTITY_FILE {name}: {exc.message}", id="backup.E002"))
    elif recipients:
        found.append(
            Warning(
                "Stored backups are encrypted (BACKUP_AGE_RECIPIENTS) and this machine has no "
                "BACKUP_AGE_IDENTITY_FILE: its workers cannot restore or drill them.",
                id="backup.W003",
            )
        )
    return found


def _tenant_recipients(deployment: bool) -> list[CheckMessage]:
    by_tenant = settings.BACKUP_AGE_TENANT_RECIPIENTS
    shape = "a JSON object of tenant slugs, each with a list of age public keys"
    if not isinstance(by_tenant, dict) or not all(
        isinstance(listed, list) and all(isinstance(k, str) for k in listed)
        for listed in by_tenant.values()
    ):
        return [Error(f"BACKUP_AGE_TENANT_RECIPIENTS must be {shape}.", id="backup.E004")]
    found: list[CheckMessage] = []
    for slug, listed in sorted(by_tenant.items()):
        if not listed:
            continue
        try:
            Encryption(recipients=tuple(listed))
        except InvalidKey as exc:
            found.append(
                Error(f"BACKUP_AGE_TENANT_RECIPIENTS[{slug!r}]: {exc.message}", id="backup.E004")
            )
    if by_tenant and not deployment:
        found.append(
            Warning(
                "BACKUP_AGE_TENANT_RECIPIENTS is set but BACKUP_AGE_RECIPIENTS is not: stored "
                "backups are encrypted only while the deployment has keys of its own (its "
                "workers must be able to drill and restore them).",
                id="backup.W005",
            )
        )
    return found
