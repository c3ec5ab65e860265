import datetime as dt
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backup.errors import BackupError
from backup.models import Drill, StoredBackup
from backup.statistics import find_tenant
from backup.stored.backups import backups_of

COLUMNS = ("id", "created (UTC)", "trigger", "status", "verified", "size", "rows", "expires", "who")


class Command(BaseCommand):
    help = (
        "List one tenant's stored backups, newest first: id, when (UTC), what made it, status "
        "(with progress while running), its restore drill, size as stored, rows, when the "
        "retention rules delete it (or 'kept'), who asked, and the error of a failed one."
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
        verification(backup),
        human_size(backup.size) if backup.size is not None else "-",
        f"{backup.total_rows:,}" if backup.status == StoredBackup.Status.SUCCEEDED else "-",
        "kept" if backup.keep else f"{backup.expires_at:%Y-%m-%d}" if backup.expires_at else "-",
        backup.created_by.email if backup.created_by else "-",
    ]


def verification(backup: StoredBackup) -> str:
    drill = backup.last_drill
    if drill is None:
        return "-"
    if drill.status == Drill.Status.PASSED and drill.seconds is not None:
        return f"yes ({drill.seconds:.1f} s)"
    return {"failed": "FAILED", "queued": "queued", "running": "running"}.get(drill.status, "-")


def as_json(backup: StoredBackup) -> dict[str, Any]:
    return {
        "id": str(backup.id),
        "created_at": backup.created_at.astimezone(dt.UTC).isoformat(),
        "trigger": backup.trigger,
        "status": backup.status,
        "size": backup.size,
        "sha256": backup.sha256 or None,
        "encrypted": backup.encrypted,
        "rows": backup.total_rows,
        "rows_per_table": backup.rows,
        "progress": {
            "done": backup.progress_done,
            "total": backup.progress_total,
            "percent": backup.progress_percent,
            "table": backup.progress_table,
        },
        "scheduled_for": backup.scheduled_for.astimezone(dt.UTC).isoformat()
        if backup.scheduled_for
        else None,
        "keep": backup.keep,
        "verification": drill_json(backup.last_drill),
        "expires_at": backup.expires_at.astimezone(dt.UTC).isoformat()
        if backup.expires_at
        else None,
        "created_by": backup.created_by.email if backup.created_by else None,
        "error": backup.error,
    }


def drill_json(drill: Drill | None) -> dict[str, Any] | None:
    if drill is None:
        return None
    return {
        "status": drill.status,
        "seconds": drill.seconds,
        "finished_at": drill.finished_at.astimezone(dt.UTC).isoformat()
        if drill.finished_at
        else None,
        "problems": drill.problems,
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
