"""The checks of a backup's `metadata` and `schema` sections, before any row is read."""

from typing import Any

from backup.errors import InvalidFile, UnsupportedVersion
from backup.format.document import FORMAT_NAME, SCHEMA_VERSION
from backup.format.upgrades import UpgradeStep, upgrade_chain
from backup.format.values import storable_text
from tenants.models import Tenant


def check_metadata(metadata: dict[str, Any]) -> list[UpgradeStep]:
    """The upgrade steps the file needs; `InvalidFile` when it is no backup of this format or
    does not say, in text a database can store, whose it is."""
    if metadata.get("format") != FORMAT_NAME:
        raise InvalidFile(
            f"This is not a tenant backup: metadata.format is {metadata.get('format')!r}, "
            f"expected {FORMAT_NAME!r}."
        )
    steps = upgrade_chain(metadata.get("format_version"))
    tenant = metadata.get("tenant")
    if not isinstance(tenant, dict) or not isinstance(tenant.get("id"), str):
        raise InvalidFile("metadata.tenant.id is missing: the backup does not say whose it is.")
    # These name a new tenant and go into the audit trail: text a database can store.
    for key in ("id", "name", "slug"):
        value = tenant.get(key, "")
        limit = 36 if key == "id" else Tenant._meta.get_field(key).max_length  # id: a UUID
        try:
            if not isinstance(value, str) or len(value) > limit:
                raise ValueError(f"expected a string of at most {limit} characters")
            storable_text(value)
        except ValueError as exc:
            raise InvalidFile(f"metadata.tenant.{key}: {exc}.") from None
    return steps


def carries_secrets(metadata: dict[str, Any]) -> bool:
    """Whether the file's rows carry the secrets themselves (an encrypted backup's)."""
    secrets = metadata.get("secrets", False)
    if not isinstance(secrets, bool):
        raise InvalidFile(f"metadata.secrets must be true or false, got {secrets!r}.")
    return secrets


def has_deleted_rows(metadata: dict[str, Any]) -> bool:
    """Whether the export included soft-deleted rows (files that do not say did)."""
    options = metadata.get("options")
    return bool(options.get("include_deleted", True)) if isinstance(options, dict) else True


def check_schema(schema: dict[str, Any]) -> None:
    """`InvalidFile` for a schema version this application cannot read."""
    version = schema.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidFile(f"schema.version must be an integer, got {version!r}.")
    if version > SCHEMA_VERSION:
        raise UnsupportedVersion(
            f"This backup has schema version {version}, newer than the {SCHEMA_VERSION} of this "
            "application: upgrade the application to import it."
        )
