"""Restore: a backup document read back into a tenant (preview, merge, replace, new tenant).

`service` holds the entry points, which run the `attempts` in their one order, each pass over
the file a `job`; `options` and `report` say what an import is asked and what it answers;
`row_checks` turns each row of the file into checked values; `master_data` matches the shared
catalogue; `staging` and `planner` check and classify rows in temporary tables, and `writes`
carries the plan out; `direct_load` writes a replace or a new tenant straight into the tenant
tables.
"""

from backup.restore.options import ImportOptions, Mode
from backup.restore.report import ImportReport, TableCounts
from backup.restore.service import import_backup, preview_import

__all__ = [
    "ImportOptions",
    "ImportReport",
    "Mode",
    "TableCounts",
    "import_backup",
    "preview_import",
]
