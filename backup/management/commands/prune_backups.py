from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backup.errors import BackupError
from backup.statistics import find_tenant
from backup.stored.retention import Pruned, prune_all, prune_tenant, repair_storage


class Command(BaseCommand):
    help = (
        "Delete the stored backups each tenant's retention rules no longer keep (rows, then "
        "files; audited), then make the storage and the rows agree: files no backup names are "
        "removed, backups whose file has gone are marked failed. Each is reported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="prune only this tenant (slug or id)")
        parser.add_argument(
            "--no-repair", action="store_true", help="skip the comparison of storage and rows"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["tenant"]:
                pruned = [prune_tenant(find_tenant(options["tenant"]))]
            else:
                pruned = prune_all()
            for result in pruned:
                self.report(result)
            deleted = sum(len(r.deleted) for r in pruned)
            self.stdout.write(f"{deleted} backup(s) pruned.")
            if options["no_repair"]:
                return
            repaired = repair_storage()
        except BackupError as exc:
            raise CommandError(exc.message, returncode=exc.exit_code) from None
        for name in repaired.files_removed:
            self.stdout.write(f"Removed {name}: no backup names this file.")
        for backup_id in repaired.rows_failed:
            self.stdout.write(f"Marked backup {backup_id} failed: its file is not in storage.")
        self.stdout.write(
            f"Storage checked: {len(repaired.files_removed)} file(s) without a backup removed, "
            f"{len(repaired.rows_failed)} backup(s) without a file marked failed."
        )

    def report(self, result: Pruned) -> None:
        if result.deleted:
            self.stdout.write(
                f"{result.tenant.slug}: pruned {len(result.deleted)} backup(s): "
                + ", ".join(result.deleted)
            )
        for name in result.files_left:
            self.stdout.write(f"{result.tenant.slug}: file {name} not deleted yet (storage error).")
