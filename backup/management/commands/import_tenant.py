import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backup.errors import BackupError, Refused, StorageFailed, ValidationFailed
from backup.models import StoredBackup
from backup.restore import ImportOptions, ImportReport, Mode, import_backup, preview_import
from backup.statistics import find_tenant
from backup.stored.backups import delete_backup, make_undo_backup
from tenants.models import Tenant

from ._import_arguments import add_restore_arguments
from ._import_reports import write_problems, write_report
from ._key_arguments import add_decryption_arguments, decryption_from
from ._progress import ProgressBar

UNDO_NOTICE = (
    "before the import, a backup of the tenant's current data is stored, so that the import can "
    "be undone by restoring it; it costs one export (--no-undo skips it)."
)


class Command(BaseCommand):
    help = (
        "Import a backup into the tenant it came from (merge or replace), or restore it as a new "
        "tenant. Shows the preview first and asks before writing. Before a merge or replace, a "
        "backup of the tenant's current data is stored (its id is printed) so that the import "
        "can be undone with backup_restore; that costs one export, which --no-undo saves."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file",
            help="backup file (JSON, gzip or zstd, each maybe encrypted with age); '-' is stdin",
        )
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--tenant", help="slug or id of the tenant the backup came from")
        target.add_argument("--new-tenant", metavar="SLUG", help="restore into a new tenant")
        parser.add_argument(
            "--mode", choices=[Mode.MERGE, Mode.REPLACE], default=Mode.MERGE, help="default merge"
        )
        parser.add_argument("--preview", action="store_true", help="show what would change, only")
        parser.add_argument(
            "--yes",
            action="store_true",
            help="import without the preview and without asking (the import checks the file all "
            "the same, and writes nothing when anything is wrong)",
        )
        add_restore_arguments(parser)
        add_decryption_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._handle(options)
        except ValidationFailed as exc:
            write_problems(self.stderr, exc.problems, exc.more)
            raise CommandError(
                exc.message + " Nothing was written.", returncode=exc.exit_code
            ) from None
        except BackupError as exc:
            raise CommandError(exc.message, returncode=exc.exit_code) from None

    def _handle(self, options: dict[str, Any]) -> None:
        if options["new_tenant"]:
            tenant = None
            import_options = ImportOptions(
                mode=Mode.NEW_TENANT,
                new_tenant_slug=options["new_tenant"],
                new_tenant_name=options["name"],
                create_missing_master_data=options["create_missing_master_data"],
            )
        else:
            tenant = find_tenant(options["tenant"])
            import_options = ImportOptions(
                mode=Mode(options["mode"]),
                create_missing_master_data=options["create_missing_master_data"],
            )
        undo = tenant is not None and not options["no_undo"]
        decryption = decryption_from(options)
        expected_rows = None
        with _seekable(options["file"]) as path:
            # --yes goes straight to the import, which checks everything the preview would.
            if options["preview"] or not options["yes"]:
                with ProgressBar(self.stderr, label="preview") as bar:
                    report = preview_import(
                        path,
                        tenant=tenant,
                        options=import_options,
                        progress=bar.rows,
                        decryption=decryption,
                    )
                if undo:
                    report.notices.append(UNDO_NOTICE)
                self._print(report, "Preview")
                if options["preview"]:
                    return
                self._confirm(report)
                expected_rows = report.totals().in_file
            undo_backup = self._store_undo(tenant) if undo and tenant is not None else None
            try:
                with ProgressBar(self.stderr, label="import", total=expected_rows) as bar:
                    report = import_backup(
                        path,
                        tenant=tenant,
                        options=import_options,
                        progress=bar.rows,
                        decryption=decryption,
                    )
            except BackupError:
                if undo_backup is not None:
                    self._discard_undo(undo_backup)
                raise
        self._print(report, "Imported")
        self.stdout.write(self.style.SUCCESS(f"Import into '{report.tenant['slug']}' done."))

    def _store_undo(self, tenant: Tenant) -> StoredBackup:
        """A stored backup of the tenant's current data, which undoes the import when restored."""
        if self.stderr.isatty():  # a note, not an error: not in the error's colour
            self.stderr.write(
                "Storing a backup of the current data first (--no-undo skips it)...",
                style_func=lambda s: s,
            )
        try:
            undo = make_undo_backup(tenant, user=None)
        except (BackupError, OSError) as exc:
            self.stderr.write(
                "The backup of the current data failed, so nothing was imported (--no-undo "
                "imports without it)."
            )
            if isinstance(exc, OSError):  # the spool directory full or not writable
                raise StorageFailed(f"Cannot write the backup of the current data: {exc}") from exc
            raise
        self.stdout.write(
            f"Stored backup {undo.id} of the current data of '{tenant.slug}' "
            f"({undo.total_rows:,} rows): `manage.py backup_restore {tenant.slug} {undo.id} "
            "--mode replace` undoes this import."
        )
        return undo

    def _discard_undo(self, undo: StoredBackup) -> None:
        """The import wrote nothing, so there is nothing to undo: its backup goes again."""
        try:
            delete_backup(undo, user=None)
        except BackupError as exc:
            self.stderr.write(f"Backup {undo.id} of the current data is kept: {exc.message}")
        else:
            self.stderr.write(
                f"Backup {undo.id} of the current data deleted again: the import wrote nothing."
            )

    def _confirm(self, report: ImportReport) -> None:
        if not sys.stdin.isatty():
            raise Refused("Not confirmed: run with --yes to import without a terminal.")
        what = {
            Mode.REPLACE: f"DELETE the current data of '{report.tenant['slug']}' and load the "
            "backup",
            Mode.MERGE: f"merge the backup into '{report.tenant['slug']}'",
            Mode.NEW_TENANT: f"restore the backup as new tenant '{report.tenant['slug']}'",
        }[report.mode]
        answer = input(f"This will {what}. Type 'yes' to continue: ")
        if answer.strip().lower() != "yes":
            raise Refused("Not confirmed: nothing was written.")

    def _print(self, report: ImportReport, title: str) -> None:
        write_report(self.stdout, report.as_dict(), title)


class _seekable:
    """The backup as a path that can be read twice (preview, then import) or rewound (an import
    that tries again after its fast attempt): stdin is spooled."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> Path:
        if self.name != "-":
            return Path(self.name)
        self.tmp = tempfile.TemporaryDirectory()
        path = Path(self.tmp.name) / "backup"
        with path.open("wb") as spool:
            shutil.copyfileobj(sys.stdin.buffer, spool)
        return path

    def __exit__(self, *exc: object) -> None:
        if self.tmp is not None:
            self.tmp.cleanup()
