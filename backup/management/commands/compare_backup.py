import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from backup.compare import Comparison, compare_backups, compare_with_tenant
from backup.errors import BackupError, Refused, ValidationFailed
from backup.statistics import find_tenant

from ._import_reports import write_problems
from ._key_arguments import add_decryption_arguments, decryption_from
from ._progress import ProgressBar

COLUMNS = ("same", "differ", "only_old", "only_new")


class Command(BaseCommand):
    help = (
        "Compare a backup with a tenant's current data (FILE --tenant SLUG), or two backups of "
        "one tenant (FILE FILE): per table, the rows only on one side and the rows that differ, "
        "with the fields that differ (old -> new) for the first rows of each table. Rows are "
        "matched as a merge import matches them: by id, then by natural key. Exits 0 when "
        "identical, 1 when not, 3 for a file that is not a readable backup, 4 for one whose rows "
        "an import would refuse (listed)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "files",
            nargs="+",
            metavar="FILE",
            help="the backup; with a second, the newer of two backups of one tenant; '-' is stdin",
        )
        parser.add_argument("--tenant", help="slug or id of the tenant to compare the backup with")
        parser.add_argument(
            "--rows",
            type=int,
            metavar="N",
            help="rows shown of each kind per table (default 10; the counts are always exact)",
        )
        parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
        add_decryption_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        files = options["files"]
        if len(files) > 2 or (len(files) == 2) == bool(options["tenant"]):
            raise CommandError("Give a FILE and --tenant SLUG, or two FILEs.", returncode=2)
        if options["rows"] is not None and options["rows"] < 0:
            raise CommandError("--rows is a number of rows, 0 or more.", returncode=2)
        try:
            comparison = self._compare(files, options)
        except ValidationFailed as exc:
            write_problems(self.stderr, exc.problems, exc.more)
            raise CommandError(exc.message, returncode=exc.exit_code) from None
        except BackupError as exc:
            raise CommandError(exc.message, returncode=exc.exit_code) from None
        if options["json"]:
            self.stdout.write(json.dumps(comparison.as_dict(), indent=2))
        else:
            write_comparison(self.stdout, comparison)
        if not comparison.identical:
            raise CommandError(f"{comparison.old} and {comparison.new} differ.", returncode=1)

    def _compare(self, files: list[str], options: dict[str, Any]) -> Comparison:
        if files.count("-") > 1:
            raise Refused("Only one of the two files can be read from stdin.")
        sources = [sys.stdin.buffer if name == "-" else name for name in files]
        decryption = decryption_from(options)
        with ProgressBar(self.stderr, label="compare") as bar:
            if options["tenant"]:
                return compare_with_tenant(
                    sources[0],
                    find_tenant(options["tenant"]),
                    decryption=decryption,
                    limit=options["rows"],
                    progress=bar.rows,
                )
            return compare_backups(
                sources[0],
                sources[1],
                decryption=decryption,
                limit=options["rows"],
                progress=bar.rows,
            )


def write_comparison(stdout: OutputWrapper, comparison: Comparison) -> None:
    old, new = comparison.old, comparison.new
    stdout.write(f"Comparison of {new} with {old} (old: {old}; new: {new}):")
    names = {"same": "same", "differ": "differ", "only_old": "only old", "only_new": "only new"}
    shown = {n: t for n, t in comparison.tables.items() if any(t.counts().values())}
    width = max((len(name) for name in shown), default=5)
    stdout.write(f"  {'table':<{width}}" + "".join(f"{names[c]:>11}" for c in COLUMNS))
    for name, table in [*shown.items(), ("total", comparison.totals())]:
        stdout.write(f"  {name:<{width}}" + "".join(f"{getattr(table, c):>11,}" for c in COLUMNS))
    for name, table in shown.items():
        if table.written_since:
            stdout.write(
                f"  {name}: {table.written_since:,} entries written since the backup was made "
                "(the trail grows; not a difference)"
            )
        for row in table.sample_differ:
            changes = "; ".join(
                f"{field}: {before!r} -> {after!r}"
                for field, (before, after) in row["changes"].items()
            )
            stdout.write(f"  {name}: differs {row['row']}: {changes}")
        for label in table.sample_only_old:
            stdout.write(f"  {name}: only old {label}")
        for label in table.sample_only_new:
            stdout.write(f"  {name}: only new {label}")
    if comparison.not_compared:
        stdout.write(f"  not compared (not in both): {', '.join(comparison.not_compared)}")
    totals = comparison.totals()
    if comparison.identical:
        stdout.write(f"Identical: {totals.same:,} rows.")
    else:
        stdout.write(
            f"Different: {totals.differ:,} rows differ, {totals.only_old:,} only old, "
            f"{totals.only_new:,} only new ({totals.same:,} the same)."
        )
