from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backup.errors import BackupError
from backup.export import ExportOptions
from backup.models import StoredBackup, Trigger
from backup.statistics import find_tenant
from backup.stored.backups import get_backup, request_backup

from ._progress import wait_for


class Command(BaseCommand):
    help = (
        "Make a stored backup of one tenant in the background and print its id. A worker makes "
        "it: one must be running (`manage.py db_worker`, or the RQ worker when "
        "BACKUP_TASK_BACKEND=rq) unless BACKUP_TASK_BACKEND=immediate, which makes it in this "
        "process. It counts towards the tenant's BACKUP_DAILY_LIMIT. --wait waits until it has "
        "finished (a progress bar on stderr when that is a terminal) and exits non-zero if it "
        "failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="tenant slug or id")
        parser.add_argument("--include-audit-logs", action="store_true")
        parser.add_argument("--include-deleted", action="store_true")
        parser.add_argument(
            "--include-files", action="store_true", help="with the attachment files (a ZIP)"
        )
        parser.add_argument("--wait", action="store_true", help="wait until it has finished")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._handle(options)
        except BackupError as exc:
            raise CommandError(exc.message, returncode=exc.exit_code) from None

    def _handle(self, options: dict[str, Any]) -> None:
        tenant = find_tenant(options["tenant"])
        export_options = ExportOptions(
            include_audit_logs=options["include_audit_logs"],
            include_deleted=options["include_deleted"],
            include_files=options["include_files"],
        )
        backup = request_backup(tenant, user=None, trigger=Trigger.COMMAND, options=export_options)
        self.stdout.write(f"Backup {backup.id} of tenant '{tenant.slug}' requested.")
        if not options["wait"]:
            self.stdout.write(f"Follow it with `manage.py backup_list {tenant.slug}`.")
            return
        try:
            backup = wait_for(
                lambda: get_backup(tenant, backup.id),
                going=lambda b: b.active,
                stderr=self.stderr,
                label="backup",
            )
        except KeyboardInterrupt:
            raise CommandError(
                f"Stopped waiting: backup {backup.id} goes on in the worker "
                f"(`manage.py backup_list {tenant.slug}`).",
                returncode=130,
            ) from None
        if backup.status != StoredBackup.Status.SUCCEEDED:
            raise CommandError(f"Backup {backup.id} failed: {backup.error}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Backup {backup.id} done: {backup.total_rows:,} rows, {backup.size:,} bytes "
                f"(zstd), SHA-256 {backup.sha256}."
            )
        )
