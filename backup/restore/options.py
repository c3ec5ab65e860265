"""What an import is asked to do: its mode, its options, and what a mode does to each table."""

from dataclasses import dataclass
from enum import StrEnum

from backup.registry import TableSpec


class Mode(StrEnum):
    MERGE = "merge"
    REPLACE = "replace"
    NEW_TENANT = "new_tenant"


@dataclass(frozen=True)
class ImportOptions:
    mode: Mode = Mode.MERGE
    create_missing_master_data: bool = False
    new_tenant_slug: str = ""
    new_tenant_name: str = ""
    # A new-tenant restore started from a tenant's own page may only restore that tenant's backups.
    source_tenant_id: str = ""
    # The most bytes the document may have, decompressed (uploads: a small gzip file can hold
    # gigabytes), and an archive's files together; None: no limit.
    max_bytes: int | None = None
    # An archive's files are written to storage; without, they are only checked (a restore
    # drill, which rolls its rows back).
    restore_files: bool = True


def replaced(mode: Mode, spec: TableSpec) -> bool:
    """Whether the import deletes the table's rows and loads the file's: a replace does, for every
    table but the append-only ones, which it merges."""
    return mode == Mode.REPLACE and not spec.append_only


def merged(mode: Mode, spec: TableSpec) -> bool:
    """Whether the file's rows are matched to the tenant's rows: in a merge, and for the
    append-only tables in a replace. A new tenant has no rows to match."""
    return mode == Mode.MERGE or (mode == Mode.REPLACE and spec.append_only)


def straight(mode: Mode, spec: TableSpec) -> bool:
    """Whether a direct load writes the table straight: every table of a new tenant, and the
    tables a replace deletes and loads (the append-only ones it merges are staged)."""
    return mode == Mode.NEW_TENANT or replaced(mode, spec)
