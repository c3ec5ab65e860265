import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backup.errors import BackupError, Refused
from backup.statistics import find_tenant
from backup.stored.backups import delete_backup, get_backup

from ._prompts import refuse_without_terminal, typed_answer


class Command(BaseCommand):
    help = (
        "Delete a stored backup (its file and its entry). Asks for confirmation on a terminal "
        "(--yes skips it; without a terminal and without --yes it refuses). A backup still "
        "queued or running cannot be deleted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="tenant slug or id")
        parser.add_argument("backup_id", help="the backup's id (backup_list shows them)")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = find_tenant(options["tenant"])
            backup = get_backup(tenant, options["backup_id"])
            if not options["yes"]:
                refuse_without_terminal("delete a backup")
                made = f"{backup.created_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
                answer = typed_answer(
                    self.stdout,
                    f"This will delete backup {backup.id} of '{tenant.slug}' made {made} "
                    f"({backup.status}). Type 'yes' to continue: ",
                )
                if answer.lower() != "yes":
                    raise Refused("Not confirmed: nothing was deleted.")
            backup_id = backup.id  # the deleted row has none
            delete_backup(backup, user=None)
        except BackupError as exc:
            raise CommandError(exc.message, returncode=exc.exit_code) from None
        self.stdout.write(f"Backup {backup_id} of tenant '{tenant.slug}' deleted.")
