"""Benchmark of backups with files: memory flat whatever the files' sizes, against one copy of
the files' bytes as the floor, measured in the same run.

    .venv/bin/python bench/files.py                           # PostgreSQL, files of 20 and 200 MB
    .venv/bin/python bench/files.py --database sqlite --sizes 2,20 --repeat 1

It seeds a small tenant (as bench/run.py does) and, for each size, gives it one more attachment
whose file holds that many MB of random bytes (nothing for compression to find). Then, each in
its own process, `--repeat` times (medians): the export into `.zip` with the tenant's files, and
the restore of that archive as a new tenant (the copy removed between runs); and `shutil.copyfile`
of the big file, the floor of anything that moves its bytes. Targets: peak RSS at the largest size
/ at the smallest <= 1.1, for the export and for the restore (no file is held in memory).
"""

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import ROOT, Bench, new_report, save_report, sizes_for, targets_table

RSS_TARGET = 1.1
READINGS = 2000
COPY = "bench-copy"


def run_size(bench: Bench, url: str, megabytes: str) -> dict[str, Any]:
    print(f"== {bench.database}, a file of {megabytes} MB", flush=True)
    bench.op(url, "add_file", megabytes, label="(add file)")
    archive = bench.work / f"backup-{megabytes}.zip"
    big = bench.work / "media" / "attachments" / "bench" / f"scan-{megabytes}mb.bin"

    def fresh_copy() -> None:
        bench.op(url, "drop_tenant", COPY, label="(drop copy)")

    runs: dict[str, list[dict[str, Any]]] = {"copy": [], "export": [], "restore": []}
    for _ in range(bench.repeat):
        runs["copy"].append(
            bench.op(url, "copy_file", str(big), str(bench.work / "copy.bin"), label="copy file")
        )
        runs["export"].append(bench.op(url, "export_files", str(archive), label="export .zip"))
        fresh_copy()
        runs["restore"].append(
            bench.op(url, "new_tenant_as", str(archive), COPY, label="restore .zip")
        )
    fresh_copy()
    figures: dict[str, Any] = {
        "megabytes": float(megabytes),
        "archive_mb": archive.stat().st_size / 1e6,
    }
    for op, results in runs.items():
        figures[op] = {
            "seconds": statistics.median(r["seconds"] for r in results),
            "runs": [r["seconds"] for r in results],
            "rss_mb": max(r["rss_mb"] for r in results),
        }
    return figures


def checks(sizes: list[dict[str, Any]]) -> list[tuple[str, float, str, bool]]:
    small, large = sizes[0], sizes[-1]
    found = []
    for op in ("export", "restore"):
        ratio = large[op]["rss_mb"] / small[op]["rss_mb"]
        found.append(
            (
                f"{op}, peak RSS with {large['megabytes']:g} MB / with {small['megabytes']:g} MB",
                ratio,
                f"<= {RSS_TARGET}",
                ratio <= RSS_TARGET,
            )
        )
    return found


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Backups with files, {report['database']}, {report['started']}",
        "",
        f"Command: `{report['command']}`. Machine: {report['machine']}, Python "
        f"{report['python']}. A tenant of {READINGS:,} readings and one file of each size; each "
        f"operation in its own process (Django's start-up not timed), median of "
        f"{report['repeat']} runs.",
        "",
        "| file MB | archive MB | operation | s | / copy of the file | peak RSS MB |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for size in report["sizes"]:
        floor = size["copy"]["seconds"]
        for op in ("copy", "export", "restore"):
            lines.append(
                f"| {size['megabytes']:g} | {size['archive_mb']:.1f} | {op} | "
                f"{size[op]['seconds']:.2f} | {size[op]['seconds'] / floor:.1f} | "
                f"{size[op]['rss_mb']:.0f} |"
            )
    lines += targets_table(report["checks"])
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--sizes", default="20,200", help="file sizes in MB, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    report: dict[str, Any] = {
        **new_report("bench/files.py", args.database, args.repeat),
        "sizes": [],
    }
    with tempfile.TemporaryDirectory(prefix="tb-bench-files-") as tmp:
        bench = Bench(args.database, Path(tmp), report["repeat"])
        bench.env["MEDIA_ROOT"] = str(Path(tmp) / "media")
        name = "tb_bench_files"
        url = bench.fresh(name)
        bench.manage(url, "seed_demo", *sizes_for(READINGS))
        bench.analyze(url)
        for megabytes in args.sizes.split(","):
            report["sizes"].append(run_size(bench, url, megabytes))
        bench.drop(name)
    report["checks"] = checks(report["sizes"])
    save_report(args.results, f"files-{args.database}", report, markdown(report))
    if not all(met for *_rest, met in report["checks"]):
        sys.exit("a target of the files benchmark was not met")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
