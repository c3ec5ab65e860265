import datetime as dt
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backup.errors import BackupError
from backup.models import StoredBackup
from backup.statistics import find_tenant
from backup.stored.backups import backups_of

COLUMNS = ("id", "created (UTC)", "trigger", "status", "size", "rows", "who")


class Command(BaseCommand):
    help = (
        "List one tenant's stored backups, newest first: id, when (UTC), what made it, status "
        "(with progress while running), size as stored, rows, who asked, and the error of a "
        "failed one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="tenant slug or id")
        parser.add_argument("--json", action="store_true", help="print a JSON list instead")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = find_tenant(options["tenant"])
        except BackupError as exc:
            raise CommandError(exc.message, returncode=exc.exit_code) from None
        backups = list(backups_of(tenant))
        if options["json"]:
            self.stdout.write(json.dumps([as_json(b) for b in backups], indent=2))
            return
        if not backups:
            self.stdout.write(f"Tenant '{tenant.slug}' has no stored backups.")
            return
        rows = [as_row(b) for b in backups]
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
        self.stdout.write("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)))
        for backup, row in zip(backups, rows, strict=True):
            line = "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True))
            self.stdout.write(f"{line}  {backup.error}".rstrip())


def as_row(backup: StoredBackup) -> list[str]:
    status = backup.status
    if backup.active and backup.progress_percent is not None:
        status += f" {backup.progress_percent}%"
    return [
        str(backup.id),
        f"{backup.created_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}",
        backup.trigger,
        status,
        human_size(backup.size) if backup.size is not None else "-",
        f"{backup.total_rows:,}" if backup.status == StoredBackup.Status.SUCCEEDED else "-",
        backup.created_by.email if backup.created_by else "-",
    ]


def as_json(backup: StoredBackup) -> dict[str, Any]:
    return {
        "id": str(backup.id),
        "created_at": backup.created_at.astimezone(dt.UTC).isoformat(),
        "trigger": backup.trigger,
        "status": backup.status,
        "size": backup.size,
        "sha256": backup.sha256 or None,
        "rows": backup.total_rows,
        "rows_per_table": backup.rows,
        "progress": {
            "done": backup.progress_done,
            "total": backup.progress_total,
            "percent": backup.progress_percent,
            "table": backup.progress_table,
        },
        "expires_at": backup.expires_at.astimezone(dt.UTC).isoformat()
        if backup.expires_at
        else None,
        "created_by": backup.created_by.email if backup.created_by else None,
        "error": backup.error,
    }


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
