"""Benchmark of compare_backup: memory that does not grow with the tenant, and its time beside
the merge preview of the same file (which reads, stages and matches the rows as a comparison
does), measured in the same run.

    .venv/bin/python bench/compare.py              # PostgreSQL, 100,000 and 1,000,000 readings
    .venv/bin/python bench/compare.py --sizes 1000,4000 --database sqlite --repeat 1

For each size it seeds a tenant (as bench/run.py does), exports it (the first backup), changes
about 10% of its rows and deletes about 5% (as bench/run.py's merge does), exports it again (the
second backup), then, each in its own process, `--repeat` times (medians): the merge preview of
the first backup, its comparison with the tenant, and the comparison of the two backups.
Targets: peak RSS at the largest size / at the smallest <= 1.3 for both comparisons; the
comparison with the tenant within 1.5x the preview's time (it adds, per table, one anti-join
and a few sample rows). The comparison of two files reads and stages both: no target, reported.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import ROOT, Bench, new_report, save_report, sizes_for, targets_table

RSS_TARGET = 1.3
TIME_TARGET = 1.5
OPERATIONS = ("preview", "compare_tenant", "compare_files")


def run_size(bench: Bench, readings: int) -> dict[str, Any]:
    print(f"== {bench.database}, {readings:,} readings", flush=True)
    name = f"tb_bench_compare_{readings}"
    url = bench.fresh(name)
    bench.manage(url, "seed_demo", *sizes_for(readings))
    bench.analyze(url)
    first, second = bench.work / "first.json", bench.work / "second.json"
    bench.op(url, "export", str(first), label="export")
    mutated = bench.op(url, "mutate", label="(change)")
    bench.op(url, "export", str(second), label="export again")
    results = {
        "preview": bench.op(url, "preview_plain", str(first), label="preview", repeat=True),
        "compare_tenant": bench.op(
            url, "compare_tenant", str(first), label="compare tenant", repeat=True
        ),
        "compare_files": bench.op(
            url, "compare_files", str(first), str(second), label="compare files", repeat=True
        ),
    }
    bench.drop(name)
    figures: dict[str, Any] = {
        "readings": readings,
        "changed": mutated["changed"],
        "deleted": mutated["deleted"],
    }
    for op, result in results.items():
        figures[op] = {
            "rows": result.get("rows", 0),
            "seconds": result["seconds"],
            "runs": result.get("runs", [result["seconds"]]),
            "rss_mb": result["rss_mb"],
            "counts": result.get("counts", {}),
        }
    return figures


def checks(sizes: list[dict[str, Any]]) -> list[tuple[str, float, str, bool]]:
    small, large = sizes[0], sizes[-1]
    found = []
    for op in ("compare_tenant", "compare_files"):
        ratio = large[op]["rss_mb"] / small[op]["rss_mb"]
        found.append(
            (
                f"{op}, peak RSS at {large['readings']:,} / at {small['readings']:,} readings",
                ratio,
                f"<= {RSS_TARGET}",
                ratio <= RSS_TARGET,
            )
        )
    for size in sizes:
        ratio = size["compare_tenant"]["seconds"] / size["preview"]["seconds"]
        found.append(
            (
                f"compare_tenant / preview (time), {size['readings']:,} readings",
                ratio,
                f"<= {TIME_TARGET}",
                ratio <= TIME_TARGET,
            )
        )
    return found


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# compare_backup, {report['database']}, {report['started']}",
        "",
        f"Command: `{report['command']}`. Machine: {report['machine']}, Python "
        f"{report['python']}. Each operation in its own process, median of {report['repeat']} "
        "runs. The first backup is compared after about 10% of the tenant's rows changed and 5% "
        "were deleted.",
        "",
        "| readings | operation | rows | s | rows/s | peak RSS MB | runs |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for size in report["figures"]:
        for op in OPERATIONS:
            f = size[op]
            lines.append(
                f"| {size['readings']:,} | {op} | {f['rows']:,} | {f['seconds']:.2f} | "
                f"{f['rows'] / f['seconds']:,.0f} | {f['rss_mb']:.0f} | "
                f"{', '.join(f'{s:.2f}' for s in f['runs'])} |"
            )
    lines += targets_table(checks(report["figures"]))
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--sizes", default="100000,1000000", help="readings, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    report = new_report("bench/compare.py", args.database, args.repeat)
    with tempfile.TemporaryDirectory(prefix="tb-bench-compare-") as tmp:
        bench = Bench(args.database, Path(tmp), report["repeat"])
        report["figures"] = [run_size(bench, readings) for readings in sizes]
    stem = f"compare-{args.database}-{'-'.join(str(s) for s in sizes)}"
    save_report(args.results, stem, report, markdown(report))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
