"""Benchmark of export and import against Django's dumpdata/loaddata and PostgreSQL's COPY.

    .venv/bin/python bench/run.py                      # PostgreSQL, 100,000 then 1,000,000 readings
    .venv/bin/python bench/run.py --readings 100000    # PostgreSQL, quick
    .venv/bin/python bench/run.py --database sqlite    # SQLite, 100,000 readings

Every size gets fresh databases and a seeded tenant (`seed_demo`, proportionate tables, plus a
second tenant a tenth of its size); every operation runs in its own process (bench/op.py) so its
peak RSS is its own. Figures go to stdout and to bench/results/ as JSON and Markdown.
"""

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG = "postgres://postgres@127.0.0.1:5432/"
LOADDATA_LIMIT_READINGS = 100_000  # loaddata is measured at this size (see --help)


# The size that the targets are set for, per database.
TARGET_READINGS = {"postgresql": 1_000_000, "sqlite": 100_000}


def sizes_for(readings: int) -> list[str]:
    return [
        f"--readings={readings}",
        f"--vehicles={readings // 50}",
        f"--components={readings // 10}",
        f"--logs={readings // 5}",
        f"--work-orders={readings // 20}",
    ]


class Bench:
    def __init__(self, database: str, work: Path, repeat: int) -> None:
        self.database = database
        self.work = work
        self.repeat = repeat
        self.env = {
            **os.environ,
            "PYTHONPYCACHEPREFIX": str(work / "pycache"),
            # As in production, whatever the local .env says (with DEBUG on, Django records every
            # query it runs).
            "DEBUG": "false",
            "SECRET_KEY": "bench-only-not-a-secret",
            "BACKUP_STORAGE_DIR": str(work / "backups"),
            "BACKUP_SPOOL_DIR": str(work / "spool"),
        }

    # -- databases ---------------------------------------------------------------------------
    def url(self, name: str) -> str:
        if self.database == "postgresql":
            return PG + name
        return f"sqlite:///{self.work / name}.sqlite3"

    def fresh(self, name: str) -> str:
        if self.database == "postgresql":
            subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", name])
            subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
        else:
            (self.work / f"{name}.sqlite3").unlink(missing_ok=True)
        url = self.url(name)
        self.manage(url, "migrate", "-v0")
        return url

    def drop(self, name: str) -> None:
        if self.database == "postgresql":
            subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", name])
        else:
            (self.work / f"{name}.sqlite3").unlink(missing_ok=True)

    def manage(self, url: str, *args: str) -> None:
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env={**self.env, "DATABASE_URL": url},
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def analyze(self, url: str) -> None:
        # As autovacuum does after a bulk load (its insert threshold): statistics for the planner,
        # and hint bits and the visibility map set; then a checkpoint writes the load's pages out,
        # as one would long before anyone exports. Otherwise the first operation measured pays
        # for the load's page writes (0.5 s of a 4 s export) while the later ones and the
        # baselines do not.
        if self.database == "postgresql":
            subprocess.run(["psql", url, "-qc", "VACUUM ANALYZE"], check=True)
            subprocess.run(["psql", url, "-qc", "CHECKPOINT"], check=True)

    # -- operations --------------------------------------------------------------------------
    def op(
        self,
        url: str,
        name: str,
        *args: str,
        label: str = "",
        repeat: bool = False,
        before: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Run one operation in its own process (`before` first, untimed). `repeat`: for an
        operation that leaves the database as it found it, `self.repeat` runs, whose median
        time is the figure (this machine's speed varies by a third from one run of a second or
        so to the next), with every run's seconds kept and the highest peak RSS."""
        results = []
        for _ in range(self.repeat if repeat else 1):
            if before is not None:
                before()
            done = subprocess.run(
                [sys.executable, str(ROOT / "bench" / "op.py"), name, *args],
                env={**self.env, "DATABASE_URL": url},
                capture_output=True,
                text=True,
            )
            if done.returncode:
                raise SystemExit(f"operation {name} failed:\n{done.stderr[-3000:]}")
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        runs = sorted(r["seconds"] for r in results)
        result = next(r for r in results if r["seconds"] == runs[len(runs) // 2])
        result["rss_mb"] = max(r["rss_mb"] for r in results)
        if "rows_written" in result:  # none, in every run
            result["rows_written"] = max(r["rows_written"] for r in results)
        if len(runs) > 1:
            result["runs"] = [r["seconds"] for r in results]
        spread = f" ({runs[0]:.1f}-{runs[-1]:.1f})" if len(runs) > 1 else ""
        print(
            f"    {label or name:<14} {result.get('rows', 0):>10,} rows {result['seconds']:8.1f} s "
            f"{result['rss_mb']:7.0f} MB{spread}",
            flush=True,
        )
        return result

    def run_size(self, readings: int, loaddata_file: Path | None) -> dict[str, Any]:
        print(f"== {self.database}, {readings:,} readings", flush=True)
        name = f"tb_bench_{readings}"
        url = self.fresh(name)
        self.manage(url, "seed_demo", *sizes_for(readings))
        self.analyze(url)
        export = self.work / f"export-{readings}.json"
        dump = self.work / f"dumpdata-{readings}.json"
        ops: dict[str, dict[str, Any]] = {}
        # Untimed: the first export after the seed took 4.1 s and every later one 3.2 s (COPY TO
        # showed no such difference), so one export warms up before the measured one.
        self.op(url, "export", str(export), label="(warm-up)")
        ops["export"] = self.op(url, "export", str(export), repeat=True)
        ops["dumpdata"] = self.op(url, "dumpdata", str(dump), repeat=True)
        if self.database == "postgresql":
            ops["copy_to"] = self.op(url, "copy_to", str(self.work / "copy"), repeat=True)
        ops["preview"] = self.op(url, "preview", str(export), repeat=True)
        ops["merge_unchanged"] = self.op(url, "merge", str(export), repeat=True)
        mutated = self.op(url, "mutate")
        self.analyze(url)
        ops["merge_changed"] = self.op(url, "merge", str(export))
        ops["merge_changed"]["mutation"] = mutated
        # Each import from a vacuumed state, so that its figure does not depend on what ran
        # before it (the baselines load into fresh tables): the merge leaves a tenth of the rows
        # dead, a replace all of the tenant's old rows. A 1M replace right after another took
        # 36.7 s against 33.8-34.9 s.
        ops["replace"] = self.op(
            url, "replace", str(export), repeat=True, before=lambda: self.analyze(url)
        )
        # The command operators run, as they run it: without the undo backup (the service's
        # replace above, plus what the command adds), and with it (one export more).
        for name in ("replace_command", "replace_command_undo"):
            ops[name] = self.op(
                url, name, str(export), repeat=True, before=lambda: self.analyze(url)
            )
        if self.database == "postgresql":
            # The same delete and load done by the database alone, from the vacuumed state too.
            ops["copy_replace"] = self.op(
                url,
                "copy_replace",
                str(self.work / "copy"),
                repeat=True,
                before=lambda: self.analyze(url),
            )
        self.analyze(url)
        ops["new_tenant"] = self.op(url, "new_tenant", str(export))
        self.analyze(url)
        broken = self.work / f"late-failure-{readings}.json"
        ops["late_failure"] = self.op(url, "late_failure", str(export), str(broken))
        broken.unlink()
        if self.database == "postgresql":
            target = self.fresh(f"{name}_copy")
            self.copy_prerequisites(url, target)
            ops["copy_from"] = self.op(target, "copy_from", str(self.work / "copy"), target)
            self.drop(f"{name}_copy")
        self.drop(name)
        source = dump if readings <= LOADDATA_LIMIT_READINGS else loaddata_file
        if source is None:
            print(
                f"    loaddata: skipped, it runs on the file of a run of at most "
                f"{LOADDATA_LIMIT_READINGS:,} readings (run without --readings)"
            )
        else:
            target = self.fresh(f"{name}_load")
            ops["loaddata"] = self.op(target, "loaddata", str(source))
            ops["loaddata"]["at_readings"] = min(readings, LOADDATA_LIMIT_READINGS)
            self.drop(f"{name}_load")
        return {"readings": readings, "operations": ops}

    def copy_prerequisites(self, source: str, target: str) -> None:
        """The users, tenants and master data that the tenant rows refer to (not timed)."""
        tables = ["auth_user", "tenants_tenant"] + [
            f"masterdata_{name}"
            for name in (
                "oem",
                "machinefamily",
                "equipmentmodel",
                "componentcatalog",
                "machineposition",
                "workactivity",
            )
        ]
        for table in tables:
            dump = subprocess.run(
                ["psql", source, "-qc", f"COPY {table} TO STDOUT"],
                check=True,
                capture_output=True,
            )
            subprocess.run(
                ["psql", target, "-qc", f"COPY {table} FROM STDIN"],
                input=dump.stdout,
                check=True,
            )


# -- report ----------------------------------------------------------------------------------
ORDER = [
    "export",
    "preview",
    "merge_unchanged",
    "merge_changed",
    "replace",
    "replace_command",
    "replace_command_undo",
    "new_tenant",
    "late_failure",
    "copy_to",
    "copy_from",
    "copy_replace",
    "dumpdata",
    "loaddata",
]


# The engine's own operations, whose peak RSS has a target.
ENGINE_OPS = ["export", "preview", "merge_unchanged", "merge_changed", "replace", "new_tenant"]


def new_report(script: str, database: str, repeat: int) -> dict[str, Any]:
    """The head of a benchmark's report: what ran, where and when."""
    import platform

    return {
        "database": database,
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([script, *sys.argv[1:]]),
        "python": platform.python_version(),
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}",
        "repeat": max(repeat, 1),
    }


def targets_table(checks: list[tuple[str, float, str, bool]]) -> list[str]:
    """The markdown lines of a report's targets: (name, measured, wanted, met) each."""
    lines = ["", "| target | measured | wanted | met |", "|---|---:|---|---|"]
    for name, value, wanted, met in checks:
        lines.append(f"| {name} | {value:.2f} | {wanted} | {'yes' if met else 'NO'} |")
    return lines


def save_report(results: Path, stem: str, report: dict[str, Any], text: str) -> None:
    """Print the report's markdown and write it and the report (JSON) into `results`."""
    print()
    print(text)
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (results / f"{stem}.md").write_text(text)
    print(f"Written to {results / stem}.json and .md")


def rate(result: dict[str, Any]) -> float:
    return result["rows"] / result["seconds"] if result["seconds"] else 0.0


# The checks that are not speeds: met at any size, or the run fails.
FAILED_REPLACE = "tables changed by the failed replace"
UNCHANGED_WRITES = "merge_unchanged rows written"
GUARANTEES = (FAILED_REPLACE, UNCHANGED_WRITES)


def checks(size: dict[str, Any], database: str) -> list[tuple[str, float, str, bool | None]]:
    """(target, measured, wanted, met) for one size; met is None for a figure without target."""
    ops = size["operations"]
    found: list[tuple[str, float, str, bool | None]] = []

    def ratio(name: str, a: str, b: str, wanted: float | None) -> None:
        """rows/s of `a` over `b`, against `wanted` (None: a figure shown without a target)."""
        if a in ops and b in ops:
            value = rate(ops[a]) / rate(ops[b])
            if wanted is None:
                found.append((name, value, "(no target)", None))
            else:
                found.append((name, value, f">= {wanted}x", value >= wanted))

    if "late_failure" in ops:
        changed = len(ops["late_failure"]["tables_changed"])
        found.append((FAILED_REPLACE, changed, "= 0", changed == 0))
    ratio("import_tenant --yes --no-undo / replace (rows/s)", "replace_command", "replace", None)
    ratio("import_tenant --yes / replace (rows/s)", "replace_command_undo", "replace", None)
    if database == "postgresql":
        ratio("export / COPY TO (rows/s)", "export", "copy_to", 0.5)
        ratio("export / dumpdata (rows/s)", "export", "dumpdata", 15)
        ratio("replace / COPY FROM (rows/s)", "replace", "copy_from", 0.6)
        ratio("replace / loaddata (rows/s)", "replace", "loaddata", 40)
        # No target: the database's own delete and load, against the replace and loaddata.
        ratio("replace / COPY replace (rows/s)", "replace", "copy_replace", None)
        ratio("COPY replace / loaddata (rows/s)", "copy_replace", "loaddata", None)
        tenant = ops["new_tenant"]["seconds"] / ops["replace"]["seconds"]
        found.append(("new tenant / replace (time)", tenant, "<= 1.3x", tenant <= 1.3))
        for name, wanted in (
            ("merge_unchanged", 50_000),
            ("merge_changed", 20_000),
            ("preview", 50_000),
        ):
            found.append(
                (f"{name} rows/s", rate(ops[name]), f">= {wanted:,}", rate(ops[name]) >= wanted)
            )
        written = ops["merge_unchanged"].get("rows_written", 0)
        found.append((UNCHANGED_WRITES, written, "= 0", written == 0))
        peak = max(op["rss_mb"] for name, op in ops.items() if name in ENGINE_OPS)
        found.append(("peak RSS of export/import (MB)", peak, "<= 200", peak <= 200))
    else:
        ratio("export / dumpdata (rows/s)", "export", "dumpdata", 10)
        ratio("replace / loaddata (rows/s)", "replace", "loaddata", 20)
    return found


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Benchmark, {report['database']}, {report['started']}",
        "",
        f"Machine: {report['machine']}. Python {report['python']}, ijson backend "
        f"`{report['ijson_backend']}`. Command: `{report['command']}`.",
        "",
        (
            f"Operations with their runs listed ran {report['repeat']} times: their seconds "
            "are the median."
            if report.get("repeat", 1) > 1
            else "Every operation ran once."
        ),
        "",
    ]
    for size in report["sizes"]:
        ops = size["operations"]
        lines += [
            f"## {size['readings']:,} readings",
            "",
            "| operation | rows | seconds | rows/s | file MB | peak RSS MB | runs (s) |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for name in ORDER:
            if name not in ops:
                continue
            op = ops[name]
            note = ""
            if name == "loaddata" and op.get("at_readings") != size["readings"]:
                note = f" (file of the {op['at_readings']:,}-reading run)"
            file_mb = f"{op['file_mb']:.0f}" if "file_mb" in op else ""
            runs = ", ".join(f"{seconds:.1f}" for seconds in op.get("runs", []))
            lines.append(
                f"| {name}{note} | {op['rows']:,} | {op['seconds']:.1f} | {rate(op):,.0f} | "
                f"{file_mb} | {op['rss_mb']:.0f} | {runs} |"
            )
        if "late_failure" in ops:
            changed = ", ".join(ops["late_failure"]["tables_changed"]) or "none"
            lines += [
                "",
                f"The failed replace (`late_failure`) stopped at: {ops['late_failure']['error']} "
                f"(tables changed: {changed}).",
            ]
        lines.append("")
        if size["readings"] != TARGET_READINGS[report["database"]]:
            lines += [
                f"The targets are set for {TARGET_READINGS[report['database']]:,} readings; at "
                "this size they are shown for comparison only.",
                "",
            ]
        lines += ["| target | measured | wanted | met |", "|---|---:|---|---|"]
        for name, value, wanted, met in size["checks"]:
            shown = "" if met is None else "yes" if met else "NO"
            lines.append(f"| {name} | {value:,.2f} | {wanted} | {shown} |")
        lines.append("")
    if report.get("memory"):
        lines += [
            "## Peak RSS, largest size over smallest",
            "",
            "| operation | small MB | large MB | ratio |",
            "|---|---:|---:|---:|",
        ]
        for name, (small, large) in report["memory"].items():
            lines.append(f"| {name} | {small:.0f} | {large:.0f} | {large / small:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument(
        "--readings",
        type=int,
        default=None,
        help="one size only (default: 100,000 and then 1,000,000 readings on PostgreSQL, "
        "100,000 on SQLite). loaddata runs at most at 100,000 readings: at 1,000,000 it took "
        "40 minutes and 3.4 GB, so larger sizes load the file of the 100,000 run",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="where the JSON and Markdown files go (default: bench/results)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each operation that leaves the database as it was (export, dumpdata, "
        "COPY TO, preview, merge of an unchanged backup, replace, COPY replace), of which the "
        "median is kept (default: 3)",
    )
    args = parser.parse_args()
    repeat = max(args.repeat, 1)
    sizes = (
        [args.readings]
        if args.readings
        else ([100_000, 1_000_000] if args.database == "postgresql" else [100_000])
    )
    import platform

    import ijson

    report: dict[str, Any] = {
        "database": args.database,
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["bench/run.py", *sys.argv[1:]]),
        "python": platform.python_version(),
        "ijson_backend": ijson.backend,
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}",
        "repeat": repeat,
        "sizes": [],
    }
    print(f"ijson backend: {ijson.backend}", flush=True)
    with tempfile.TemporaryDirectory(prefix="tb-bench-") as tmp:
        bench = Bench(args.database, Path(tmp), repeat)
        loaddata_file: Path | None = None
        for readings in sizes:
            size = bench.run_size(readings, loaddata_file)
            size["checks"] = checks(size, args.database)
            report["sizes"].append(size)
            if readings <= LOADDATA_LIMIT_READINGS:
                loaddata_file = Path(tmp) / f"dumpdata-{readings}.json"
    if len(report["sizes"]) > 1:
        small, large = report["sizes"][0]["operations"], report["sizes"][-1]["operations"]
        report["memory"] = {
            name: (small[name]["rss_mb"], large[name]["rss_mb"])
            for name in ENGINE_OPS
            if name in small and name in large
        }
    text = markdown(report)
    print()
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    stem = f"{args.database}-{'-'.join(str(s) for s in sizes)}"
    (args.results / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.results / f"{stem}.md").write_text(text)
    print(f"Written to {args.results / stem}.json and .md")
    broken = [
        f"{name} at {size['readings']:,} readings: {value:,.0f}"
        for size in report["sizes"]
        for name, value, _wanted, met in size["checks"]
        if name in GUARANTEES and not met
    ]
    if broken:
        # A speed short of its target is a figure; a guarantee broken is a failure, at any size.
        sys.exit("Guarantees broken: " + "; ".join(broken))


if __name__ == "__main__":
    main()
