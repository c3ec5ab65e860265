"""What the tenant tables' foreign keys cost a replace on PostgreSQL, and what foreign keys that
also carry the tenant would cost instead (a measurement for a schema decision, not a benchmark).

Usage, with DATABASE_URL set to a PostgreSQL database seeded as `bench/run.py` seeds it and the
files of `bench/op.py copy_to DIR` of its tenant `demo`:

    .venv/bin/python bench/fk_cost.py DIR [ROUNDS]

Each round runs the database's own replace (as `bench/op.py copy_replace`: DELETE of the tenant's
rows, referring tables first, then COPY of the files) in three variants, each in a transaction
that is rolled back, so that the database is left as it was found:

- `django`: the schema as the migrations make it. Every row of a tenant table is checked against
  `tenants_tenant` and against each row it refers to; and since those foreign keys name only an
  id, a direct load then checks that each reference stays within the tenant
  (`DirectLoad.check`'s queries, timed here too).
- `tenant-keyed`: each reference to a tenant table checked as (tenant_id, reference) against
  (tenant_id, id) of the table it refers to (a unique constraint added there), and the foreign
  key to `tenants_tenant` dropped where a non-null such reference implies it. A reference to
  another tenant's row then fails in the database itself, so a direct load's own queries are not
  needed; the schema change is made within the transaction and rolled back with it.
- `tenant-keyed, lean`: the same, and each index of a reference alone dropped where an index
  beginning with (tenant_id, that reference), a natural key's say, serves the foreign key's
  lookups instead (the meter readings' index of `vehicle_id`, for one).

Prints per variant and round the seconds of the deletion, the COPY, the foreign-key checks (made
immediate at the end) and, for `django`, the isolation queries.
"""

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from op import copy_in, delete_tenant_rows, tables, tenant  # noqa: E402  (bench/op.py)

from backup.db.sql import q  # noqa: E402
from backup.registry import TableSpec, registry  # noqa: E402
from backup.restore.direct_load import outside_tenant  # noqa: E402


def _tenant_keyed(cursor: Any, specs: list[TableSpec]) -> None:
    """Replace, within the open transaction, every foreign key to a tenant table by one on
    (tenant_id, column), and drop the one to the tenant where such a key implies it."""
    cursor.execute(
        "SELECT t.relname, k.conname, a.attname, r.relname FROM pg_constraint k "
        "JOIN pg_class t ON t.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid "
        "JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1] "
        "WHERE k.contype = 'f' AND cardinality(k.conkey) = 1 AND t.relname = ANY(%s)",
        [[s.db_table for s in specs]],
    )
    keys = {(table, column): (name, target) for table, name, column, target in cursor.fetchall()}
    referenced = set()
    for spec in specs:
        implied = False
        for f in spec.fields_of_kind("tenant_fk"):
            name, target = keys[spec.db_table, f.column]
            referenced.add(target)
            cursor.execute(f"ALTER TABLE {q(spec.db_table)} DROP CONSTRAINT {q(name)}")
            implied |= not f.null and f.target != spec.name
        if implied:
            name, _target = keys[spec.db_table, "tenant_id"]
            cursor.execute(f"ALTER TABLE {q(spec.db_table)} DROP CONSTRAINT {q(name)}")
    for target in sorted(referenced):
        cursor.execute(f"ALTER TABLE {q(target)} ADD UNIQUE (tenant_id, id)")
    for spec in specs:
        for f in spec.fields_of_kind("tenant_fk"):
            _name, target = keys[spec.db_table, f.column]
            cursor.execute(
                f"ALTER TABLE {q(spec.db_table)} ADD FOREIGN KEY (tenant_id, {q(f.column)}) "
                f"REFERENCES {q(target)} (tenant_id, id) DEFERRABLE INITIALLY DEFERRED"
            )


def _covered_indexes(cursor: Any, specs: list[TableSpec]) -> None:
    """Drop, within the open transaction, each index of one tenant-table reference alone that an
    index beginning with (tenant_id, that reference) covers for the tenant-keyed foreign key's
    own lookups (those of a deletion of the row referred to)."""
    columns = {(s.db_table, f.column) for s in specs for f in s.fields_of_kind("tenant_fk")}
    cursor.execute(
        "SELECT t.relname, i.relname, ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH "
        "ORDINALITY AS k(attnum, n) JOIN pg_attribute a ON a.attrelid = x.indrelid "
        "AND a.attnum = k.attnum ORDER BY k.n) FROM pg_index x "
        "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE t.relname = ANY(%s)",
        [[s.db_table for s in specs]],
    )
    indexes = cursor.fetchall()
    for table, index, keys in indexes:
        if len(keys) != 1 or (table, keys[0]) not in columns:
            continue
        if any(t == table and k[:2] == ["tenant_id", keys[0]] for t, _i, k in indexes):
            cursor.execute(f"DROP INDEX {q(index)}")


def _isolation_queries(cursor: Any, specs: list[TableSpec], tid: Any) -> None:
    """`DirectLoad.check`'s query for every reference to a tenant table."""
    reg = registry()
    for spec in specs:
        for f in spec.fields_of_kind("tenant_fk"):
            cursor.execute(outside_tenant(reg, spec, f), [tid, tid])
            if cursor.fetchone() is not None:
                raise SystemExit(f"{spec.name}.{f.name} refers to a row of another tenant")


class _RolledBack(Exception):
    pass


def replace_once(directory: str, variant: str, tid: Any) -> dict[str, float]:
    """The database's own replace in one variant, rolled back; seconds per part."""
    exported = tables()
    seconds: dict[str, float] = {}
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            if variant != "django":
                _tenant_keyed(cursor, exported)
            if variant == "tenant-keyed, lean":
                _covered_indexes(cursor, exported)
            start = time.perf_counter()
            delete_tenant_rows(cursor, tid)
            seconds["delete"] = time.perf_counter() - start
            start = time.perf_counter()
            copy_in(cursor, directory)
            seconds["copy"] = time.perf_counter() - start
            start = time.perf_counter()
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            seconds["foreign keys"] = time.perf_counter() - start
            if variant == "django":
                start = time.perf_counter()
                _isolation_queries(cursor, exported, tid)
                seconds["isolation queries"] = time.perf_counter() - start
            raise _RolledBack
    except _RolledBack:
        pass
    seconds["total"] = sum(seconds.values())
    return seconds


def main() -> None:
    directory, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2
    if connection.vendor != "postgresql":
        raise SystemExit("bench/fk_cost.py measures PostgreSQL only: set DATABASE_URL")
    tid = tenant().pk
    for round_ in range(1, rounds + 1):
        for variant in ("django", "tenant-keyed", "tenant-keyed, lean"):
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
            seconds = replace_once(directory, variant, tid)
            parts = ", ".join(f"{name} {value:.1f} s" for name, value in seconds.items())
            print(f"round {round_}, {variant:18s}: {parts}", flush=True)


if __name__ == "__main__":
    main()
