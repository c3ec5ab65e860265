"""What the import commands print: a preview or an import's report as a table of counts, the
problems of a refused file, and the exit code of a failed restore job."""

from collections.abc import Iterable
from typing import Any

from django.core.management.base import OutputWrapper

from backup.errors import BackupError, Problem

COLUMNS = ("in_file", "create", "update", "unchanged", "delete")


def write_report(stdout: OutputWrapper, report: dict[str, Any], title: str) -> None:
    """`report`: `ImportReport.as_dict()`, as a restore job keeps its preview and report."""
    stdout.write(
        f"{title} ({report['mode']}) of backup of '{report['source_tenant']['slug']}' into "
        f"'{report['tenant']['slug']}':"
    )
    tables = report["tables"]
    width = max((len(name) for name in tables), default=5)
    stdout.write(f"  {'table':<{width}}" + "".join(f"{c:>11}" for c in COLUMNS))
    for name, counts in [*tables.items(), ("total", report["totals"])]:
        stdout.write(f"  {name:<{width}}" + "".join(f"{counts[c]:>11,}" for c in COLUMNS))
    created = {n: m["create"] for n, m in report.get("master_data", {}).items() if m["create"]}
    if created:
        stdout.write(f"  master data created: {created}")
    write_samples(stdout, report.get("samples") or {})
    if files := report.get("files"):
        stdout.write(
            f"  files: {files['listed']:,} in the archive ({files['bytes']:,} bytes checked), "
            f"{files['restored']:,} written ({files['renamed']:,} under new names), "
            f"{files['kept']:,} already in storage"
        )
    for notice in report.get("notices", []):
        stdout.write(f"  note: {notice}")


def write_samples(stdout: OutputWrapper, samples: dict[str, Any]) -> None:
    """The preview's first rows of each kind per table (`ImportReport.samples`)."""
    if not samples:
        return
    stdout.write("  first rows of each kind:")
    for table, sample in samples.items():
        for label in sample["create"]:
            stdout.write(f"    {table}: create {label}")
        for update in sample["update"]:
            changes = "; ".join(
                f"{name}: {old!r} -> {new!r}" for name, (old, new) in update["changes"].items()
            )
            stdout.write(f"    {table}: update {update['row']}: {changes}")
        for label in sample["delete"]:
            stdout.write(f"    {table}: delete {label}")


def write_problems(stderr: OutputWrapper, problems: Iterable[Problem], more: int) -> None:
    for problem in problems:
        stderr.write(f"  {problem}")
    if more:
        stderr.write(f"  ... and {more} more")


def exit_code(code: str) -> int:
    """The exit code of the error a job failed with (`error_details["code"]`), as the command
    that raised it in this process would have exited."""
    classes: list[type[BackupError]] = [BackupError]
    while classes:
        cls = classes.pop()
        if cls.code == code:
            return cls.exit_code
        classes.extend(cls.__subclasses__())
    return 1
