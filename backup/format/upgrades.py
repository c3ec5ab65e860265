"""Reading backups written by older versions: a chain of upgrade steps, one per version.

A step turns the metadata and every row of version N into version N + 1, as the rows stream by.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backup.errors import UnsupportedVersion
from backup.format.document import FORMAT_VERSION

Row = dict[str, Any]


@dataclass(frozen=True)
class UpgradeStep:
    from_version: int
    metadata: Callable[[dict[str, Any]], dict[str, Any]] = lambda meta: meta
    # (section, table, row) -> (table, row); section is "master_data" or "tenant_data".
    row: Callable[[str, str, Row], tuple[str, Row]] = lambda _section, table, row: (table, row)
    description: str = field(default="")


# from_version -> the step that brings a document of that version to the next one.
UPGRADES: dict[int, UpgradeStep] = {
    1: UpgradeStep(
        from_version=1,
        # Version 2 says whether the secrets are in the file; a version 1 file never has them
        # (its credentials say only whether a secret was set).
        metadata=lambda meta: {**meta, "secrets": False},
        description="metadata.secrets: false",
    ),
}


def upgrade_chain(version: Any) -> list[UpgradeStep]:
    """The steps that bring a document of `version` to the current format version."""
    if not isinstance(version, int) or isinstance(version, bool):
        raise UnsupportedVersion(f"metadata.format_version must be an integer, got {version!r}.")
    if version > FORMAT_VERSION:
        raise UnsupportedVersion(
            f"This backup has format version {version}, newer than the {FORMAT_VERSION} this "
            "application reads: upgrade the application to import it."
        )
    steps = []
    for v in range(version, FORMAT_VERSION):
        if v not in UPGRADES:
            raise UnsupportedVersion(
                f"Format version {version} is no longer supported (oldest readable: "
                f"{min(UPGRADES, default=FORMAT_VERSION)})."
            )
        steps.append(UPGRADES[v])
    return steps
