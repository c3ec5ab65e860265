"""Where an import's time goes: seconds per phase of one import, for profiling (not a benchmark).

Usage, with DATABASE_URL set and the tenant `demo` there (as `bench/run.py` seeds it):

    .venv/bin/python bench/phases.py replace|new_tenant|merge|preview FILE

Prints the whole import's seconds, then reading (reading, checking and loading the file's rows,
into staging tables or, in a direct load, into the tenant tables), planning (the checks and
matching in SQL), writing, a direct load's deletion and checks (with the deferred foreign keys,
checked there), the commit (where PostgreSQL checks the deferred foreign keys of every row
written, unless a direct load checked them), and the time of the DELETE and INSERT statements on
the tenant tables within those phases. A direct load's writer thread runs its statements on the
raw connection, outside Django's timing: on SQLite its deletions and inserts fall within reading,
and its deletion phase only counts the rows to delete.
"""

import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.db import DEFAULT_DB_ALIAS, connection, connections  # noqa: E402

from backup.restore import (  # noqa: E402
    ImportOptions,
    Mode,
    direct_load,
    import_backup,
    job,
    planner,
    preview_import,
)
from tenants.models import Tenant  # noqa: E402

SECONDS: Counter[str] = Counter()


def timed(owner: Any, name: str, phase: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            SECONDS[phase] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def statements(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
    """Django's execute wrapper: times the DELETE and INSERT statements on the tenant tables."""
    start = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        kind = sql.split(None, 1)[0].upper()
        if kind in ("DELETE", "INSERT") and "_stage_" not in sql.split("(")[0]:
            SECONDS[kind] += time.perf_counter() - start


def main() -> None:
    operation, path = sys.argv[1], sys.argv[2]
    timed(job.ImportPass, "_read", "reading")
    timed(direct_load.DirectLoad, "start", "deleting")
    timed(direct_load.DirectLoad, "check", "checking")
    timed(planner.Planner, "plan", "planning")
    timed(job, "write_plan", "writing")  # the name the pass calls
    timed(type(connections[DEFAULT_DB_ALIAS]), "_commit", "commit")
    demo = Tenant.objects.get(slug="demo")
    start = time.perf_counter()
    with connection.execute_wrapper(statements):
        if operation == "preview":
            preview_import(path, tenant=demo, options=ImportOptions(mode=Mode.MERGE))
        elif operation == "new_tenant":
            slug = f"demo-phases-{int(time.time())}"
            import_backup(path, options=ImportOptions(mode=Mode.NEW_TENANT, new_tenant_slug=slug))
        else:
            import_backup(path, tenant=demo, options=ImportOptions(mode=Mode(operation)))
    print(f"{operation}: {time.perf_counter() - start:.1f} s")
    rows = [
        ("deleting (direct)", SECONDS["deleting"]),
        ("reading", SECONDS["reading"]),
        ("checking (direct)", SECONDS["checking"]),
        ("planning", SECONDS["planning"]),
        ("writing", SECONDS["writing"]),
        ("commit", SECONDS["commit"]),
        # Within the phases above (writing, or a direct load's deletion).
        ("DELETE statements", SECONDS["DELETE"]),
        ("INSERT statements", SECONDS["INSERT"]),
    ]
    for name, seconds in rows:
        print(f"  {name:20s} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
