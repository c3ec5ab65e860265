"""Export: a tenant turned into a backup document and streamed (`service`); its rows come from
the portable path or, written as JSON by the database itself, from `backup.db`."""

from backup.export.service import (
    ExportOptions,
    download_name,
    expected_rows,
    export_tenant,
    iter_export,
)

__all__ = ["ExportOptions", "download_name", "expected_rows", "export_tenant", "iter_export"]
