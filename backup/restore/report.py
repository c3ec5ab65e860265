"""What an import reports: counts per table, and the problems found, each precise enough to act
on (table, row with its natural key, field, message), kept up to a limit."""

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from backup.errors import Problem, ValidationFailed
from backup.restore.options import Mode


@dataclass
class TableCounts:
    in_file: int = 0
    create: int = 0
    update: int = 0
    unchanged: int = 0
    delete: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class ImportReport:
    mode: Mode
    tenant: dict[str, str]
    source_tenant: dict[str, str]
    tables: dict[str, TableCounts] = field(default_factory=dict)
    master_data: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    more_problems: int = 0
    sha256: str = ""
    applied: bool = False
    import_id: uuid.UUID | None = None  # named by the rows it stamped (`TableSpec.stamp`)
    # What a person should know before the import runs (a secret it will clear, say).
    notices: list[str] = field(default_factory=list)
    # An archive's files (`files.FileCounts`); None for a backup without files.
    files: dict[str, int] | None = None
    # A preview's first rows per table to create, update and delete (`samples.TableSample`).
    samples: dict[str, dict[str, Any]] = field(default_factory=dict)

    def totals(self) -> TableCounts:
        total = TableCounts()
        for counts in self.tables.values():
            for name, value in counts.as_dict().items():
                setattr(total, name, getattr(total, name) + value)
        return total

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": str(self.mode),
            "tenant": self.tenant,
            "source_tenant": self.source_tenant,
            "applied": self.applied,
            "sha256": self.sha256,
            "tables": {name: counts.as_dict() for name, counts in self.tables.items()},
            "totals": self.totals().as_dict(),
            "master_data": self.master_data,
            "problems": [p.as_dict() for p in self.problems],
            "more_problems": self.more_problems,
            "notices": self.notices,
            "files": self.files,
            "samples": self.samples,
        }


# Checking stops once the problems are this many times the listed ones: past that, the count
# tells nobody more, and a small crafted file (a gzip of a million bad rows) would otherwise
# cost the server time in proportion to what it decompresses to.
STOP_FACTOR = 10


class ProblemLog:
    """All problems found, kept up to a limit (the rest only counted, up to `STOP_FACTOR`
    times the limit, where `add` raises the `ValidationFailed` that ends the import)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.stop_at = max(limit, 1) * STOP_FACTOR
        self.items: list[Problem] = []
        self.total = 0

    def add(self, table: str, row: str, field: str, message: str) -> None:
        self.total += 1
        if len(self.items) < self.limit:
            self.items.append(Problem(table, row, field, message))
        if self.total >= self.stop_at:
            raise self.error(stopped=True)

    @property
    def remaining(self) -> int:
        return max(self.limit - len(self.items), 0)

    def __bool__(self) -> bool:
        return self.total > 0

    def clear(self) -> None:
        self.items.clear()
        self.total = 0

    def error(self, *, stopped: bool = False) -> ValidationFailed:
        return ValidationFailed(self.items, more=self.total - len(self.items), stopped=stopped)


def display(value: Any) -> Any:
    """A value read back from a staging table as a person expects it (SQLite keeps UUIDs as
    32 hex digits)."""
    if isinstance(value, str) and len(value) == 32:
        try:
            return str(uuid.UUID(hex=value))
        except ValueError:
            return value
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def row_label(position: Any, key: dict[str, Any] | None = None) -> str:
    label = f"row {position}"
    if key:
        label += " (" + ", ".join(f"{name}={display(value)!r}" for name, value in key.items()) + ")"
    return label
