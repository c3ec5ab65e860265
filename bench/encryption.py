"""Benchmark of age encryption: a backup exported and previewed encrypted to a public key against
the same backup unencrypted, measured in the same run, at two sizes so that memory shows flat.

    .venv/bin/python bench/encryption.py                  # PostgreSQL, 30,000 and 300,000 readings
    .venv/bin/python bench/encryption.py --readings 10000,100000 --database sqlite

For each size it seeds a tenant (as bench/run.py does) and a key pair (`age-keygen`), then, each
operation in its own process, alternating and `--repeat` times (medians): `export_tenant` into
`.json.zst` and into `.json.zst.age` (to the key), and the preview of a merge of each file. The
encrypted file is opened with the real `age` command and must hold the same bytes as the plain
one, `exported_at` aside. Targets: encrypted / plain <= 1.1 in time, and in peak RSS, at every
size (the encryption streams through a pipe: nothing grows with the backup).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import ROOT, Bench, new_report, save_report, sizes_for, targets_table

TIME_TARGET = 1.1
RSS_TARGET = 1.1


def keypair(identity: Path) -> tuple[Path, str]:
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    public = subprocess.run(
        ["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True
    ).stdout.strip()
    return identity, public


def without_exported_at(document: bytes) -> bytes:
    head, _, rest = document.partition(b'"exported_at":')
    return head + rest.partition(b",")[2]


def same_backup(plain: Path, sealed: Path, identity: Path) -> bool:
    """Whether `age -d` of the encrypted file gives the plain file's document."""
    opened = subprocess.run(
        ["age", "-d", "-i", str(identity), str(sealed)], check=True, capture_output=True
    ).stdout
    unzip = zstandard.ZstdDecompressor()
    return without_exported_at(unzip.decompressobj().decompress(opened)) == without_exported_at(
        unzip.decompressobj().decompress(plain.read_bytes())
    )


def run_size(bench: Bench, readings: int) -> dict[str, Any]:
    print(f"== {bench.database}, {readings:,} readings", flush=True)
    name = f"tb_bench_encryption_{readings}"
    url = bench.fresh(name)
    bench.manage(url, "seed_demo", *sizes_for(readings))
    bench.analyze(url)
    identity, public = keypair(bench.work / f"identity-{readings}.txt")
    plain = bench.work / f"plain-{readings}.json.zst"
    sealed = bench.work / f"sealed-{readings}.json.zst.age"
    bench.op(url, "export", str(plain), label="(warm-up)")
    runs: dict[str, list[dict[str, Any]]] = {
        "export": [],
        "export_encrypted": [],
        "preview": [],
        "preview_encrypted": [],
    }
    for _ in range(bench.repeat):
        runs["export"].append(bench.op(url, "export", str(plain)))
        runs["export_encrypted"].append(
            bench.op(url, "export", str(sealed), public, label="export (age)")
        )
    for _ in range(bench.repeat):
        runs["preview"].append(bench.op(url, "preview", str(plain)))
        runs["preview_encrypted"].append(
            bench.op(url, "preview", str(sealed), str(identity), label="preview (age)")
        )
    same = same_backup(plain, sealed, identity)
    bench.drop(name)
    figures: dict[str, Any] = {
        "readings": readings,
        "rows": runs["export"][0]["rows"],
        "plain_mb": plain.stat().st_size / 1e6,
        "sealed_mb": sealed.stat().st_size / 1e6,
        "same_backup": same,
    }
    for op, results in runs.items():
        figures[op] = {
            "seconds": statistics.median(r["seconds"] for r in results),
            "runs": [r["seconds"] for r in results],
            "rss_mb": max(r["rss_mb"] for r in results),
        }
    return figures


def checks(sizes: list[dict[str, Any]]) -> list[tuple[str, float, str, bool]]:
    found = []
    for size in sizes:
        n = f"{size['readings']:,} readings"
        for op in ("export", "preview"):
            plain, sealed = size[op], size[f"{op}_encrypted"]
            ratio = sealed["seconds"] / plain["seconds"]
            found.append((f"{op} encrypted / plain, time, {n}", ratio, "<= 1.1", ratio <= 1.1))
            ratio = sealed["rss_mb"] / plain["rss_mb"]
            found.append(
                (f"{op} encrypted / plain, peak RSS, {n}", ratio, "<= 1.1", ratio <= RSS_TARGET)
            )
        found.append(
            (
                f"age -d gives the same backup, {n}",
                float(size["same_backup"]),
                "= 1",
                size["same_backup"],
            )
        )
    return found


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# age encryption, {report['database']}, {report['started']}",
        "",
        f"Command: `{report['command']}`. Machine: {report['machine']}, Python "
        f"{report['python']}. Each operation in its own process (Django's start-up not timed), "
        f"plain and encrypted alternating, median of {report['repeat']} runs.",
        "",
        "| readings | rows | operation | plain s | encrypted s | ratio | plain RSS MB "
        "| encrypted RSS MB | file MB plain / encrypted |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for size in report["sizes"]:
        for op in ("export", "preview"):
            plain, sealed = size[op], size[f"{op}_encrypted"]
            lines.append(
                f"| {size['readings']:,} | {size['rows']:,} | {op} | {plain['seconds']:.2f} | "
                f"{sealed['seconds']:.2f} | {sealed['seconds'] / plain['seconds']:.2f} | "
                f"{plain['rss_mb']:.0f} | {sealed['rss_mb']:.0f} | "
                f"{size['plain_mb']:.1f} / {size['sealed_mb']:.1f} |"
            )
    lines += targets_table(report["checks"])
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--readings", default="30000,300000", help="sizes, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    report: dict[str, Any] = {
        **new_report("bench/encryption.py", args.database, args.repeat),
        "sizes": [],
    }
    with tempfile.TemporaryDirectory(prefix="tb-bench-encryption-") as tmp:
        bench = Bench(args.database, Path(tmp), report["repeat"])
        for readings in (int(r) for r in args.readings.split(",")):
            report["sizes"].append(run_size(bench, readings))
    report["checks"] = checks(report["sizes"])
    save_report(args.results, f"encryption-{args.database}", report, markdown(report))
    if not all(size["same_backup"] for size in report["sizes"]):
        sys.exit("age -d of the encrypted backup did not give the plain backup")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
