"""Benchmark of the preview's sample: a preview with it against the same preview without it
(`BACKUP_PREVIEW_SAMPLE_ROWS=0`), measured in the same run.

    .venv/bin/python bench/preview_sample.py                      # PostgreSQL, 1,000,000 readings
    .venv/bin/python bench/preview_sample.py --readings 100000 --database sqlite

It seeds a tenant (as bench/run.py does), exports it, then previews a merge of that file into it,
each preview in its own process, with the sample and without, alternating, `--repeat` times
(medians). Target: with / without <= 1.1 in time (the sample reads a few rows per table).
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

TARGET = 1.1


def measure(bench: Bench, readings: int) -> dict[str, Any]:
    name = f"tb_bench_sample_{readings}"
    url = bench.fresh(name)
    bench.manage(url, "seed_demo", *sizes_for(readings))
    bench.analyze(url)
    backup = bench.work / "backup.json"
    bench.op(url, "export", str(backup), label="export")
    runs: dict[str, list[float]] = {"with": [], "without": []}
    rows = 0
    for _ in range(bench.repeat):
        for kind, sample_rows in (("with", "5"), ("without", "0")):
            bench.env["BACKUP_PREVIEW_SAMPLE_ROWS"] = sample_rows
            result = bench.op(url, "preview", str(backup), label=f"preview {kind}")
            runs[kind].append(result["seconds"])
            rows = result.get("rows", rows)
    bench.drop(name)
    with_sample, without = (statistics.median(runs[k]) for k in ("with", "without"))
    return {
        "readings": readings,
        "rows": rows,
        "runs": runs,
        "with": with_sample,
        "without": without,
    }


def markdown(report: dict[str, Any]) -> str:
    figures = report["figures"]
    ratio = figures["with"] / figures["without"]
    return "\n".join(
        [
            f"# The preview's sample, {report['database']}, {report['started']}",
            "",
            f"Command: `{report['command']}`. Machine: {report['machine']}, Python "
            f"{report['python']}. A merge preview of {figures['rows']:,} rows "
            f"({figures['readings']:,} readings), each in its own process, alternating, median "
            f"of {report['repeat']} runs.",
            "",
            "| preview | s | runs |",
            "|---|---:|---|",
            f"| with the sample (5 rows of each kind) | {figures['with']:.2f} | "
            f"{', '.join(f'{s:.2f}' for s in figures['runs']['with'])} |",
            f"| without (`BACKUP_PREVIEW_SAMPLE_ROWS=0`) | {figures['without']:.2f} | "
            f"{', '.join(f'{s:.2f}' for s in figures['runs']['without'])} |",
            *targets_table([("with / without (time)", ratio, f"<= {TARGET}", ratio <= TARGET)]),
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    report = new_report("bench/preview_sample.py", args.database, args.repeat)
    with tempfile.TemporaryDirectory(prefix="tb-bench-sample-") as tmp:
        bench = Bench(args.database, Path(tmp), report["repeat"])
        report["figures"] = measure(bench, args.readings)
    stem = f"preview-sample-{args.database}-{args.readings}"
    save_report(args.results, stem, report, markdown(report))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
