"""What the number guard (`backup.number_guard`) costs the reader, against the reader without it.

Reads one synthetic backup document of N meter readings (the shape an export writes) through
`BackupReader`, with the guard and with its check switched off, alternating, and prints the
median rows/s of each and their ratio. No database is touched.

    .venv/bin/python bench/number_guard.py [--readings 500000] [--repeat 5]
"""

import argparse
import io
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from backup.format.number_guard import NumberGuard  # noqa: E402
from backup.format.reader import BackupReader  # noqa: E402
from tests.broken_backups import BASE  # noqa: E402


def document(readings: int) -> bytes:
    template = BASE["tenant_data"]["meter_reading"][0]
    head = orjson.dumps({k: v for k, v in BASE.items() if k not in ("tenant_data", "statistics")})
    rows = b",".join(
        orjson.dumps({**template, "id": str(uuid.UUID(int=i + 1)), "value": f"{i}.50"})
        for i in range(readings)
    )
    return (
        head[:-1]
        + b',"tenant_data":{"meter_reading":['
        + rows
        + b']},"statistics":{"meter_reading":'
        + str(readings).encode()
        + b"}}"
    )


def read_all(data: bytes) -> int:
    reader = BackupReader(io.BufferedReader(io.BytesIO(data)))
    reader.object_section("metadata")
    reader.object_section("schema")
    rows = 0
    for section in ("master_data", "tenant_data"):
        for _table, table_rows in reader.table_section(section):
            for _row in table_rows:
                rows += 1
    reader.object_section("statistics")
    reader.finish()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    data = document(args.readings)
    check = NumberGuard.check
    seconds: dict[str, list[float]] = {"with the guard": [], "without it": []}
    for _ in range(args.repeat):
        for name in seconds:
            NumberGuard.check = check if name == "with the guard" else (lambda self, data: None)
            start = time.perf_counter()
            rows = read_all(data)
            seconds[name].append(time.perf_counter() - start)
    NumberGuard.check = check
    print(f"{len(data) / 1e6:,.1f} MB, {rows:,} rows, median of {args.repeat} alternating runs")
    medians = {name: statistics.median(runs) for name, runs in seconds.items()}
    for name, median in medians.items():
        print(f"  {name:15} {median:6.2f} s  {rows / median:10,.0f} rows/s")
    ratio = medians["without it"] / medians["with the guard"]
    print(f"  the guard's rows/s against the reader's without it: {ratio:.3f}x")


if __name__ == "__main__":
    main()
