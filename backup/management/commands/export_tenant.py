import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backup.errors import BackupError
from backup.export import ExportOptions, export_tenant
from backup.format.streams import open_output
from backup.statistics import find_tenant

from ._key_arguments import add_encryption_arguments, encryption_from


class Command(BaseCommand):
    help = (
        "Export one tenant's data as a backup document (JSON, gzip with -o FILE.gz or --gzip), "
        "or with --include-files as a ZIP archive of the document and the tenant's files; "
        "encrypted with age when --recipient or --passphrase-file says so."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="tenant slug or id")
        parser.add_argument("-o", "--output", default="-", help="file to write; '-' is stdout")
        parser.add_argument("--gzip", action="store_true", help="compress (implied by .gz)")
        parser.add_argument("--include-audit-logs", action="store_true")
        parser.add_argument("--include-deleted", action="store_true")
        parser.add_argument(
            "--include-files",
            action="store_true",
            help="a ZIP archive (-o FILE.zip) with the attachment files the rows name",
        )
        add_encryption_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = find_tenant(options["tenant"])
        except BackupError as exc:
            raise CommandError(exc.message, returncode=exc.exit_code) from None
        output = options["output"]
        _check_output_name(output, options)
        encryption = encryption_from(options)
        # The summary must not end up inside a backup written to stdout.
        report = self.stderr if output == "-" else self.stdout
        interactive = sys.stderr.isatty()

        def progress(table: str, count: int) -> None:
            if interactive:
                self.stderr.write(f"  {table}: {count:,} rows")

        export_options = ExportOptions(
            include_audit_logs=options["include_audit_logs"],
            include_deleted=options["include_deleted"],
            include_files=options["include_files"],
        )
        try:
            with open_output(
                output, compress=options["gzip"] or None, encryption=encryption
            ) as out:
                result = export_tenant(
                    tenant, out, options=export_options, progress=progress, encryption=encryption
                )
        except BackupError as exc:
            raise CommandError(exc.message, returncode=exc.exit_code) from None
        except OSError as exc:  # no such directory, no permission, disk full...
            raise CommandError(f"Cannot write {output}: {exc.strerror or exc}.") from None
        where = "stdout" if output == "-" else output
        sealed = " (encrypted with age)" if encryption else ""
        files = f" and {len(result.files):,} files" if options["include_files"] else ""
        report.write(
            f"Exported {result.total_rows:,} rows of {len(result.statistics)} tables{files} of "
            f"tenant '{tenant.slug}' to {where}{sealed}."
        )


def _check_output_name(output: str, options: dict[str, Any]) -> None:
    name = output.removesuffix(".age")
    if options["include_files"] and (options["gzip"] or name.endswith((".gz", ".zst"))):
        raise CommandError("An archive with files compresses itself: write it to FILE.zip.")
    if name.endswith(".zip") and not options["include_files"]:
        raise CommandError(f"{output} names a ZIP archive: add --include-files.")
