"""One benchmark operation, run in its own process so that its peak RSS is its own.

Usage (by bench/run.py): python bench/op.py OPERATION [ARGS...] with DATABASE_URL set.
Prints one JSON object: seconds, rows, peak RSS in MB and whatever the operation adds.
Only the operation itself is timed, not Django's start-up.
"""

import hashlib
import json
import os
import re
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402

from backup.compare import compare_backups, compare_with_tenant  # noqa: E402
from backup.errors import ValidationFailed  # noqa: E402
from backup.export.service import ExportOptions, export_tenant, exported_tables  # noqa: E402
from backup.format.encryption import Decryption, Encryption, identities_in  # noqa: E402
from backup.format.streams import open_output  # noqa: E402
from backup.registry import registry  # noqa: E402
from backup.restore import (  # noqa: E402
    ImportOptions,
    Mode,
    import_backup,
    preview_import,
)
from tenants.models import AuditLog, Tenant  # noqa: E402

TENANT = "demo"


def tenant() -> Tenant:
    return Tenant.objects.get(slug=TENANT)


def tables() -> list[Any]:
    return exported_tables(ExportOptions())


def write_counts() -> int:
    """Rows inserted, updated or deleted in the tenant tables so far (PostgreSQL's statistics;
    audit logs excluded: every operation adds its own entry)."""
    names = [s.db_table for s in registry().tenant_tables if not s.append_only]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(
            "SELECT COALESCE(SUM(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables "
            "WHERE relname = ANY(%s)",
            [names],
        )
        return int(cursor.fetchone()[0])


def op_export(path: str, recipient: str = "") -> dict[str, Any]:
    """The export into `path`, compressed as its name says; encrypted to `recipient` (an age
    public key) when one is given."""
    encryption = Encryption(recipients=(recipient,)) if recipient else None
    with open_output(path, encryption=encryption) as out:
        result = export_tenant(tenant(), out)
    return {"rows": result.total_rows, "file_mb": os.path.getsize(path) / 1e6}


def _import(
    path: str, options: ImportOptions, *, apply: bool, identity_file: str = ""
) -> dict[str, Any]:
    target = None if options.mode == Mode.NEW_TENANT else tenant()
    writes_before = write_counts() if connection.vendor == "postgresql" else None
    run = import_backup if apply else preview_import
    decryption = None
    if identity_file:
        decryption = Decryption(identities=identities_in(Path(identity_file).read_text()))
    report = run(path, tenant=target, options=options, decryption=decryption)
    totals = report.totals()
    extra: dict[str, Any] = {"rows": totals.in_file, "counts": totals.as_dict()}
    if writes_before is not None:
        time.sleep(0.6)  # let the statistics of the finished transaction arrive
        extra["rows_written"] = write_counts() - writes_before
    return extra


def op_preview(path: str, identity_file: str = "") -> dict[str, Any]:
    """The preview of a merge of `path`; decrypted with the age identities in `identity_file`
    when one is given."""
    return _import(path, ImportOptions(mode=Mode.MERGE), apply=False, identity_file=identity_file)


def op_merge(path: str) -> dict[str, Any]:
    return _import(path, ImportOptions(mode=Mode.MERGE), apply=True)


def op_replace(path: str) -> dict[str, Any]:
    return _import(path, ImportOptions(mode=Mode.REPLACE), apply=True)


def op_new_tenant(path: str) -> dict[str, Any]:
    return _import(
        path, ImportOptions(mode=Mode.NEW_TENANT, new_tenant_slug="demo-copy"), apply=True
    )


def _command(path: str, *flags: str) -> dict[str, Any]:
    """`import_tenant FILE --tenant demo --mode replace --yes` as operators run it (its report
    printed, not shown here), with `flags`."""
    rows = sum(Tenant.objects.get(slug=TENANT).stored_backups.values_list("total_rows", flat=True))
    with open(os.devnull, "w") as devnull:
        call_command(
            "import_tenant",
            path,
            "--tenant",
            TENANT,
            "--mode",
            "replace",
            "--yes",
            *flags,
            stdout=devnull,
            stderr=devnull,
        )
    made = sum(Tenant.objects.get(slug=TENANT).stored_backups.values_list("total_rows", flat=True))
    return {"rows": _import_rows(path), "undo_backup_rows": made - rows}


def _import_rows(path: str) -> int:
    """The rows of section tenant_data (one per line, as the export writes them)."""
    rows = 0
    in_tenant_data = False
    with open(path, "rb") as source:
        for line in source:
            if line.startswith(b'"tenant_data":'):
                in_tenant_data = True
            elif line.startswith(b'"statistics":'):
                in_tenant_data = False
            rows += in_tenant_data and line.startswith(b'{"id":')
    return rows


def op_replace_command(path: str) -> dict[str, Any]:
    return _command(path, "--no-undo")


def op_replace_command_undo(path: str) -> dict[str, Any]:
    """The same, with the backup of the current data that it stores first by default."""
    return _command(path)


def op_late_failure(path: str, broken_path: str) -> dict[str, Any]:
    """A replace of the export whose very last row (the last row of the last tenant table) has a
    wrong id. On PostgreSQL the import finds it after deleting the tenant's rows and loading all
    the others (on SQLite, before it touches the tenant tables: rows are staged first). Timed:
    the import until it has failed and rolled back. Every table but the audit log (where the
    failure is recorded) must then hold exactly what it held before."""
    rows = _break_last_row(path, broken_path)
    before = fingerprints()
    started = time.perf_counter()
    try:
        import_backup(broken_path, tenant=tenant(), options=ImportOptions(mode=Mode.REPLACE))
    except ValidationFailed as failed:
        error = str(failed.problems[0])
    else:
        raise SystemExit("late_failure: the import of a broken file did not fail")
    seconds = time.perf_counter() - started
    after = fingerprints()
    changed = sorted(name for name in before if before[name] != after[name])
    return {"rows": rows, "seconds": seconds, "error": error, "tables_changed": changed}


def _break_last_row(path: str, broken_path: str) -> int:
    """Copies the export (one row per line, as the export writes it), giving the last row of
    section tenant_data the id 'not-a-uuid'; returns the number of rows of that section."""
    rows = 0
    in_tenant_data = False
    previous = b""
    with open(path, "rb") as source, open(broken_path, "wb") as out:
        for line in source:
            if line.startswith(b'"tenant_data":'):
                in_tenant_data = True
            elif in_tenant_data and line == b"]\n" and previous.startswith(b'{"id":'):
                previous, broken = re.subn(rb'^\{"id":"[^"]*"', b'{"id":"not-a-uuid"', previous)
                assert broken == 1, previous
                in_tenant_data = False
            rows += in_tenant_data and line.startswith(b'{"id":')
            out.write(previous)
            previous = line
        out.write(previous)
    return rows


def fingerprints() -> dict[str, str]:
    """A digest of every row of every dumped model's table but the audit log."""
    found = {}
    with transaction.atomic(), connection.cursor() as cursor:
        for model in dumped_models():
            if model is AuditLog:
                continue
            table = connection.ops.quote_name(model._meta.db_table)
            pk = connection.ops.quote_name(model._meta.pk.column)
            digest = hashlib.sha256()
            query = f"SELECT * FROM {table} ORDER BY {pk}"
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY ({query}) TO STDOUT") as copy:
                    for data in copy:
                        digest.update(data)
            else:
                cursor.execute(query)
                while block := cursor.fetchmany(2000):
                    digest.update(repr(block).encode())
            found[model._meta.db_table] = digest.hexdigest()
    return found


def op_copy_to(directory: str) -> dict[str, Any]:
    """psycopg `COPY (SELECT * ... WHERE tenant_id = ...) TO STDOUT` of the exported tables,
    each written to a file (the input of `copy_from`)."""
    rows = size = 0
    tid = tenant().pk
    Path(directory).mkdir(parents=True, exist_ok=True)
    with transaction.atomic(), connection.cursor() as cursor:
        for spec in tables():
            statement = f'COPY (SELECT * FROM "{spec.db_table}" WHERE tenant_id = %s) TO STDOUT'
            with open(Path(directory) / spec.db_table, "wb") as out:
                with cursor.cursor.copy(statement, [tid]) as copy:
                    for data in copy:
                        out.write(data)
                rows += cursor.cursor.rowcount
                size += out.tell()
    return {"rows": rows, "file_mb": size / 1e6}


def op_copy_from(directory: str, target_url: str) -> dict[str, Any]:
    """`COPY ... FROM STDIN` of the files written by `copy_to` into the empty tables (with all
    their constraints and indexes) of another database, in one transaction."""
    import environ

    settings = environ.Env.db_url_config(target_url)
    connections.databases["target"] = {**connections.databases["default"], **settings}
    target = connections["target"]
    with transaction.atomic(using="target"), target.cursor() as cursor:
        return {"rows": copy_in(cursor, directory)}


def copy_in(cursor: Any, directory: str) -> int:
    """`COPY ... FROM STDIN` of each table's `copy_to` file; returns the rows copied."""
    rows = 0
    for spec in tables():
        with open(Path(directory) / spec.db_table, "rb") as source:
            with cursor.cursor.copy(f'COPY "{spec.db_table}" FROM STDIN') as copy:
                while block := source.read(1 << 20):
                    copy.write(block)
            rows += cursor.cursor.rowcount
    return rows


def op_copy_replace(directory: str) -> dict[str, Any]:
    """The database's own delete and load: `DELETE` of the tenant's rows of the tables that
    `copy_to` wrote, referring tables first, then `COPY ... FROM STDIN` of those files into the
    same tables (their foreign keys checked at the commit, as Django declares them), in one
    transaction. The rows come back as they were, so the database is left as it was found."""
    with transaction.atomic(), connection.cursor() as cursor:
        delete_tenant_rows(cursor, tenant().pk)
        return {"rows": copy_in(cursor, directory)}


def delete_tenant_rows(cursor: Any, tid: Any) -> None:
    """`DELETE` of the tenant's rows of the tables that `copy_to` writes, referring tables
    first."""
    for spec in reversed(tables()):
        cursor.execute(f'DELETE FROM "{spec.db_table}" WHERE tenant_id = %s', [tid])


DUMPED = ["auth.user", "masterdata", "tenants"]


def dumped_models() -> list[Any]:
    """The models dumpdata writes (and loaddata reads back): users and two apps' models."""
    from django.apps import apps
    from django.contrib.auth import get_user_model

    models = [get_user_model()]
    for label in DUMPED[1:]:
        models.extend(apps.get_app_config(label).get_models())
    return models


def dumped_rows() -> int:
    return sum(model._default_manager.count() for model in dumped_models())


def op_dumpdata(path: str) -> dict[str, Any]:
    """Django's dumpdata of the tenant tables and what they need (users, master data)."""
    call_command("dumpdata", *DUMPED, output=path, verbosity=0)
    return {"rows": dumped_rows(), "file_mb": os.path.getsize(path) / 1e6}


def op_loaddata(path: str) -> dict[str, Any]:
    call_command("loaddata", path, verbosity=0)
    return {"rows": dumped_rows()}


def op_preview_plain(path: str) -> dict[str, Any]:
    """The preview of a merge of `path`, without counting what it wrote (a comparison's
    baseline: the same reading, staging and matching)."""
    report = preview_import(path, tenant=tenant(), options=ImportOptions(mode=Mode.MERGE))
    return {"rows": report.totals().in_file}


def _compared(comparison: Any) -> dict[str, Any]:
    totals = comparison.totals()
    rows = totals.same + totals.differ + totals.only_new
    return {"rows": rows, "counts": totals.counts(), "identical": comparison.identical}


def op_compare_tenant(path: str) -> dict[str, Any]:
    """The backup compared with the tenant's current data."""
    return _compared(compare_with_tenant(path, tenant()))


def op_compare_files(old: str, new: str) -> dict[str, Any]:
    """Two backups compared."""
    return _compared(compare_backups(old, new))


def op_mutate() -> dict[str, Any]:
    """Change about 10% of the tenant's rows and delete about 5% (from tables nothing refers
    to), so that merging the earlier export updates 10% and creates 5%."""
    specs = [s for s in tables() if not s.append_only]
    referenced = {f.target for s in specs for f in s.fields_of_kind("tenant_fk")}
    tid = tenant().pk
    # A row's bucket in 0..999, spread evenly whatever the ids look like (the seed's are
    # sequential).
    bucket = (
        "abs(hashtext(id::text)) %% 1000"
        if connection.vendor == "postgresql"
        else "(rowid * 2654435761) %% 1000"
    )
    changed = deleted = total = 0
    with transaction.atomic(), connection.cursor() as cursor:
        counts = {s.name: s.model.objects.filter(tenant_id=tid).count() for s in specs}
        total = sum(counts.values())
        leaves = [s for s in specs if s.name not in referenced]
        share = min(0.05 * total / sum(counts[s.name] for s in leaves), 1.0)
        threshold = int(share * 1000)
        for spec in leaves:
            cursor.execute(
                f'DELETE FROM "{spec.db_table}" WHERE tenant_id = %s AND {bucket} < %s',
                [_db_id(tid), threshold],
            )
            deleted += cursor.rowcount
        for spec in specs:
            change = _change(spec)
            if change:
                cursor.execute(
                    f'UPDATE "{spec.db_table}" SET {change} WHERE tenant_id = %s '
                    f"AND {bucket} >= 900",
                    [_db_id(tid)],
                )
                changed += cursor.rowcount
    return {"rows": total, "changed": changed, "deleted": deleted}


def _db_id(value: Any) -> Any:
    return Tenant._meta.pk.get_db_prep_value(value, connection)


def _change(spec: Any) -> str:
    """SQL assignment changing one plain value of a row (not a key, reference or flag)."""
    skip = set(spec.natural_key) | {spec.soft_delete}
    for f in spec.fields:
        if f.kind != "value" or f.name in skip or f.choices:
            continue
        column = f'"{f.column}"'
        if f.type == "decimal":
            return f"{column} = {column} + 1"
        if f.type == "integer":
            return f"{column} = {column} + 1"
        if f.type == "string" and f.max_length is None:
            return f"{column} = {column} || ' (edited)'"
        if f.type == "boolean":
            return f"{column} = NOT {column}"
    return ""


def op_add_file(megabytes: str) -> dict[str, Any]:
    """An attachment of the tenant whose file has `megabytes` MB of random bytes (setup)."""
    import secrets

    from django.core.files.storage import default_storage

    from tenants.models import Attachment

    size = int(float(megabytes) * 1e6)
    name = f"attachments/bench/scan-{megabytes}mb.bin"
    path = Path(default_storage.path(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for start in range(0, size, 1 << 20):
            chunk = secrets.token_bytes(min(1 << 20, size - start))
            digest.update(chunk)
            out.write(chunk)
    Attachment.objects.filter(tenant=tenant(), file=name).delete()
    Attachment.objects.create(
        tenant=tenant(),
        file=name,
        filename=path.name,
        size_bytes=size,
        sha256=digest.hexdigest(),
    )
    return {"rows": 1}


def op_export_files(path: str) -> dict[str, Any]:
    """The export into `path`: an archive with the tenant's files."""
    with open_output(path) as out:
        result = export_tenant(tenant(), out, options=ExportOptions(include_files=True))
    return {"rows": result.total_rows, "file_mb": os.path.getsize(path) / 1e6}


def op_new_tenant_as(path: str, slug: str) -> dict[str, Any]:
    """The restore of `path` as a new tenant named `slug`."""
    return _import(path, ImportOptions(mode=Mode.NEW_TENANT, new_tenant_slug=slug), apply=True)


def op_copy_file(source: str, target: str) -> dict[str, Any]:
    """The floor of moving a file's bytes: one copy of them (`shutil.copyfile`)."""
    import shutil

    shutil.copyfile(source, target)
    return {"rows": 0}


def op_drop_tenant(slug: str) -> dict[str, Any]:
    """Remove a restored tenant and its files, so that the next restore starts the same."""
    from django.core.files.storage import default_storage

    from tenants.models import Attachment

    copy = Tenant.objects.filter(slug=slug).first()
    if copy is not None:
        for name in Attachment.objects.filter(tenant=copy).values_list("file", flat=True):
            default_storage.delete(name)
        with transaction.atomic():
            for spec in reversed(registry().tenant_tables):
                spec.model.objects.filter(tenant=copy).delete()
            copy.delete()
    return {"rows": 0}


OPERATIONS = {
    "add_file": op_add_file,
    "export_files": op_export_files,
    "copy_file": op_copy_file,
    "new_tenant_as": op_new_tenant_as,
    "drop_tenant": op_drop_tenant,
    "export": op_export,
    "preview": op_preview,
    "merge": op_merge,
    "replace": op_replace,
    "replace_command": op_replace_command,
    "replace_command_undo": op_replace_command_undo,
    "new_tenant": op_new_tenant,
    "copy_to": op_copy_to,
    "copy_from": op_copy_from,
    "copy_replace": op_copy_replace,
    "dumpdata": op_dumpdata,
    "loaddata": op_loaddata,
    "mutate": op_mutate,
    "preview_plain": op_preview_plain,
    "compare_tenant": op_compare_tenant,
    "compare_files": op_compare_files,
    "late_failure": op_late_failure,
}


def main() -> None:
    name, *args = sys.argv[1:]
    started = time.perf_counter()
    result = OPERATIONS[name](*args)
    result.setdefault("seconds", time.perf_counter() - started)
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    connection.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
