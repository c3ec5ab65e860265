import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backup.errors import BackupError, JobActive, Problem, Refused
from backup.models import Restore, Trigger
from backup.restore import ImportOptions, Mode
from backup.statistics import find_tenant
from backup.stored.backups import get_backup
from backup.stored.restores import cancel_restore, confirm_restore, get_restore, request_restore
from tenants.models import Tenant

from ._import_arguments import add_restore_arguments
from ._import_reports import exit_code, write_problems, write_report
from ._progress import wait_for
from ._prompts import refuse_without_terminal, typed_answer

Status = Restore.Status


class Command(BaseCommand):
    help = (
        "Restore a stored backup into its tenant (merge, or replace) or as a new tenant. A worker "
        "previews it first (what would change, per table), the preview is printed and "
        "confirmed (a replace by typing the tenant's name; --yes skips it), then the worker "
        "imports it. Before a merge or a replace, a backup of the tenant's current data is stored "
        "so that the restore can be undone; that costs one export, which --no-undo saves. A "
        "worker must be running (`manage.py db_worker`) unless BACKUP_TASK_BACKEND=immediate."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="slug or id of the tenant whose backup it is")
        parser.add_argument("backup_id", help="the backup's id (backup_list shows them)")
        target = parser.add_mutually_exclusive_group()
        target.add_argument(
            "--mode", choices=[Mode.MERGE, Mode.REPLACE], help="into the tenant; default merge"
        )
        target.add_argument("--new-tenant", metavar="SLUG", help="restore into a new tenant")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        add_restore_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._handle(options)
        except BackupError as exc:
            raise CommandError(exc.message, returncode=exc.exit_code) from None

    def _handle(self, options: dict[str, Any]) -> None:
        tenant = find_tenant(options["tenant"])
        backup = get_backup(tenant, options["backup_id"])
        if options["new_tenant"]:
            import_options = ImportOptions(
                mode=Mode.NEW_TENANT,
                new_tenant_slug=options["new_tenant"],
                new_tenant_name=options["name"],
                create_missing_master_data=options["create_missing_master_data"],
            )
        else:
            import_options = ImportOptions(
                mode=Mode(options["mode"] or Mode.MERGE),
                create_missing_master_data=options["create_missing_master_data"],
            )
        restore = request_restore(
            tenant,
            user=None,
            trigger=Trigger.COMMAND,
            options=import_options,
            backup=backup,
            undo=not options["no_undo"],
        )
        self.stdout.write(
            f"Restore {restore.id} of backup {backup.id} of '{tenant.slug}' (made "
            f"{backup.created_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC) requested."
        )
        restore = self._wait(tenant, restore, Status.PREVIEWING, "preview")
        self._refuse_failed(restore)
        write_report(self.stdout, restore.preview, "Preview")
        self._confirm(tenant, restore, yes=options["yes"])
        restore = self._wait(tenant, restore, Status.IMPORTING, "import")
        self._refuse_failed(restore)
        write_report(self.stdout, restore.report, "Restored")
        if restore.undo_backup_id:
            self.stdout.write(
                f"Undo: backup {restore.undo_backup_id} holds the data from before this restore "
                f"(`manage.py backup_restore {tenant.slug} {restore.undo_backup_id} --mode "
                "replace`)."
            )
        self.stdout.write(
            self.style.SUCCESS(f"Restore into '{restore.report['tenant']['slug']}' done.")
        )

    def _wait(self, tenant: Tenant, restore: Restore, status: str, label: str) -> Restore:
        try:
            return wait_for(
                lambda: get_restore(tenant, restore.id),
                going=lambda r: r.status == status,
                stderr=self.stderr,
                label=label,
            )
        except KeyboardInterrupt:
            raise CommandError(
                f"Stopped waiting: the {label} of restore {restore.id} goes on in the worker.",
                returncode=130,
            ) from None

    def _refuse_failed(self, restore: Restore) -> None:
        if restore.status in (Status.AWAITING_CONFIRMATION, Status.SUCCEEDED):
            return
        details = restore.error_details or {}
        write_problems(
            self.stderr,
            [Problem(**problem) for problem in details.get("problems", [])],
            details.get("more", 0),
        )
        raise CommandError(
            f"Restore {restore.id} {restore.status}: {restore.error}",
            returncode=exit_code(details.get("code", "")),
        )

    def _confirm(self, tenant: Tenant, restore: Restore, *, yes: bool) -> None:
        """Confirm the restore, or cancel it so that it does not wait for a confirmation."""
        try:
            confirmation = tenant.name if yes else self._ask(tenant, restore)
            confirm_restore(restore, user=None, confirmation=confirmation)
        except BaseException:
            try:
                cancel_restore(restore, user=None)
            except JobActive:  # it was no longer awaiting its confirmation
                pass
            else:
                self.stderr.write(f"Restore {restore.id} cancelled: nothing was written.")
            raise

    def _ask(self, tenant: Tenant, restore: Restore) -> str:
        refuse_without_terminal("restore")
        target = restore.preview["tenant"]["slug"]
        if restore.mode == Mode.REPLACE:
            return typed_answer(
                self.stdout,
                f"This will DELETE the current data of '{target}' and load the backup. Type the "
                f"tenant's name ({tenant.name}) to continue: ",
            )
        what = (
            f"restore the backup as new tenant '{target}'"
            if restore.mode == Mode.NEW_TENANT
            else f"merge the backup into '{target}'"
        )
        if (
            typed_answer(self.stdout, f"This will {what}. Type 'yes' to continue: ").lower()
            != "yes"
        ):
            raise Refused("Not confirmed: nothing was written.")
        return ""
