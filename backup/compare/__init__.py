"""Compare: a backup against a tenant's current data, or two backups, table by table.

The backup is read as a merge preview reads it (`passes`): staged, its rows matched to the other
side's by id, then by natural key, and classified; `differences` then counts, per table, the rows
only on each side and those that differ, with the first few of each. `service` holds the entry
points; nothing is written (a restore drill compares inside its own rolled-back transaction).
"""

from backup.compare.report import Comparison, TableComparison
from backup.compare.service import compare_backups, compare_restored, compare_with_tenant

__all__ = [
    "Comparison",
    "TableComparison",
    "compare_backups",
    "compare_restored",
    "compare_with_tenant",
]
