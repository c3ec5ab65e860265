"""The backup document's fixed parts: its name, versions and the `schema` section."""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from backup.registry import Registry, TableSpec

FORMAT_NAME = "tenant-backup"
# 2: metadata.secrets; an encrypted backup carries the secrets themselves (`upgrades.py`).
FORMAT_VERSION = 2
# Version of the data structure (the tables and their fields); moves with the models.
SCHEMA_VERSION = 1
# `files`: only in the document of an archive with the tenant's files (`archive.py`).
SECTIONS = ("metadata", "schema", "master_data", "tenant_data", "files", "statistics")
OPTIONAL_SECTIONS = frozenset({"files"})


def app_version() -> str:
    try:
        return version("tenant-backup")
    except PackageNotFoundError:
        return "0+unknown"


def _table_schema(spec: TableSpec) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for f in spec.fields:
        entry: dict[str, Any] = {"type": f.type, "null": f.null}
        if f.kind in ("tenant_fk", "master_fk"):
            entry["ref"] = f.target
        elif f.kind == "user_fk":
            entry["ref"] = "user.email"
        if f.enum:
            entry["enum"] = f.enum
        if f.name in getattr(spec.model, "secret_fields", ()):
            entry["secret"] = True  # only in an encrypted backup
        fields[f.name] = entry
    for secret in spec.secrets:
        fields[secret.present_field] = {"type": "boolean", "null": False, "secret": secret.field}
    return {"fields": fields, "key": list(spec.natural_key)}


def schema_section(registry: Registry, tenant_tables: list[TableSpec]) -> dict[str, Any]:
    return {
        "version": SCHEMA_VERSION,
        "enums": registry.enums(),
        "master_tables": {t.name: _table_schema(t) for t in registry.master_tables},
        "tables": {t.name: _table_schema(t) for t in tenant_tables},
    }
