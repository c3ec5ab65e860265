import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backup.errors import BackupError, Refused, ValidationFailed
from backup.restore import ImportOptions, ImportReport, Mode, import_backup, preview_import
from backup.statistics import find_tenant

COLUMNS = ("in_file", "create", "update", "unchanged", "delete")


class Command(BaseCommand):
    help = (
        "Import a backup into the tenant it came from (merge or replace), or restore it as a new "
        "tenant. Shows the preview first and asks before writing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="backup file (.json or .json.gz); '-' is stdin")
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--tenant", help="slug or id of the tenant the backup came from")
        target.add_argument("--new-tenant", metavar="SLUG", help="restore into a new tenant")
        parser.add_argument("--name", default="", help="name of the new tenant")
        parser.add_argument(
            "--mode", choices=[Mode.MERGE, Mode.REPLACE], default=Mode.MERGE, help="default merge"
        )
        parser.add_argument("--preview", action="store_true", help="show what would change, only")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        parser.add_argument(
            "--create-missing-master-data",
            action="store_true",
            help="create master data the backup references but this database lacks",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._handle(options)
        except ValidationFailed as exc:
            for problem in exc.problems:
                self.stderr.write(f"  {problem}")
            if exc.more:
                self.stderr.write(f"  ... and {exc.more} more")
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
        with _seekable(options["file"]) as path:
            report = preview_import(path, tenant=tenant, options=import_options)
            self._print(report, "Preview")
            if options["preview"]:
                return
            if not options["yes"]:
                self._confirm(report)
            report = import_backup(path, tenant=tenant, options=import_options)
        self._print(report, "Imported")
        self.stdout.write(self.style.SUCCESS(f"Import into '{report.tenant['slug']}' done."))

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
        self.stdout.write(
            f"{title} ({report.mode}) of backup of '{report.source_tenant['slug']}' into "
            f"'{report.tenant['slug']}':"
        )
        width = max(len(name) for name in report.tables)
        header = f"  {'table':<{width}}" + "".join(f"{c:>11}" for c in COLUMNS)
        self.stdout.write(header)
        for name, counts in [*report.tables.items(), ("total", report.totals())]:
            values = counts.as_dict()
            self.stdout.write(f"  {name:<{width}}" + "".join(f"{values[c]:>11,}" for c in COLUMNS))
        created = {n: m["create"] for n, m in report.master_data.items() if m["create"]}
        if created:
            self.stdout.write(f"  master data created: {created}")
        for notice in report.notices:
            self.stdout.write(f"  note: {notice}")


class _seekable:
    """The backup as a path that can be read twice (preview, then import): stdin is spooled."""

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
