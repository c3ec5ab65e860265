"""What a comparison answers: per table, how many rows each side has that the other lacks, how
many differ and are the same, with the first few rows of each kind."""

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class TableComparison:
    same: int = 0
    differ: int = 0
    only_old: int = 0  # rows of the first side (the tenant, or the first file) only
    only_new: int = 0  # rows of the backup compared (the second side) only
    # Rows of an append-only table (the audit trail) the tenant wrote after the backup was made:
    # the trail grows by design (the export itself, and every comparison, is audited).
    written_since: int = 0
    # The first rows of each kind: labels, and for those that differ {"row", "changes":
    # {field: [old, new]}}.
    sample_only_old: list[str] = field(default_factory=list)
    sample_only_new: list[str] = field(default_factory=list)
    sample_differ: list[dict[str, Any]] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not (self.differ or self.only_old or self.only_new)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def counts(self) -> dict[str, int]:
        return {
            name: getattr(self, name)
            for name in ("same", "differ", "only_old", "only_new", "written_since")
        }


@dataclass
class Comparison:
    old: str  # what the first side is, for a person: "tenant 'acme'" or a file's name
    new: str
    tenant: dict[str, str]  # the tenant the backups are of: id, name, slug
    tables: dict[str, TableComparison] = field(default_factory=dict)
    # Tables the backup compared does not carry (optional ones, such as the audit trail when it
    # was not exported): not compared.
    not_compared: list[str] = field(default_factory=list)
    sha256: str = ""  # of the backup compared (the second side), as stored

    @property
    def identical(self) -> bool:
        return all(t.identical for t in self.tables.values())

    def totals(self) -> TableComparison:
        total = TableComparison()
        for t in self.tables.values():
            total.same += t.same
            total.differ += t.differ
            total.only_old += t.only_old
            total.only_new += t.only_new
            total.written_since += t.written_since
        return total

    def as_dict(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "tenant": self.tenant,
            "identical": self.identical,
            "sha256": self.sha256,
            "tables": {name: t.as_dict() for name, t in self.tables.items()},
            "not_compared": self.not_compared,
        }
