"""Stored backups and restores run by real worker processes: django-tasks-db's `db_worker` and
an RQ worker against the machine's Redis, on a database of the test's own (a SQLite file, or a
fresh PostgreSQL database when the test run is on PostgreSQL); and workers killed mid-job.

The requests come from other processes (`manage.py shell`), as they do from the web server; the
test reads the rows, the storage directory and the spool directory to see what happened.
"""

import datetime as dt
import hashlib
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from backup.models import Restore, StoredBackup
from backup.registry import registry
from backup.stored import storage
from backup.stored.backups import backups_of
from backup.stored.leases import worker_id
from backup.stored.restores import restores_of

from . import factories as f
from .processes import (
    Database,
    db_worker,
    drop_database,
    environment,
    files_under,
    manage,
    new_database,
    redis_database,
    rq_worker,
    sha256_of,
    shell,
    wait_for,
)

BACKUPS = StoredBackup._meta.db_table
RESTORES = Restore._meta.db_table
TASKS = DBTaskResult._meta.db_table
HOST = socket.gethostname()
# The tables whose rows a restore must reproduce; the audit trail gets entries of its own.
COMPARED = [spec for spec in registry().tenant_tables if not spec.optional]


ADD_READINGS = """
from django.db import connection, transaction
from tenants.models import MeterReading, Tenant

tenant = Tenant.objects.get(slug=slug)
with transaction.atomic(), connection.cursor() as cursor:
    if connection.vendor == "postgresql":
        # The rows point at the tenant's own vehicles: checking each reference (a trigger per
        # row) would take longer than making them.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "INSERT INTO tenants_meterreading "
            "(id, tenant_id, vehicle_id, meter_type, read_at, value, source) "
            "SELECT gen_random_uuid(), v.tenant_id, v.id, 'odometer', "
            "timestamptz '2001-01-01 00:00:00+00' + g * interval '1 minute', g / 4.0, 'import' "
            "FROM tenants_vehicle v CROSS JOIN generate_series(1, %s) g WHERE v.tenant_id = %s",
            [per_vehicle, tenant.pk],
        )
    else:
        cursor.execute(
            "WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < %s) "
            "INSERT INTO tenants_meterreading "
            "(id, tenant_id, vehicle_id, meter_type, read_at, value, source) "
            "SELECT lower(hex(randomblob(4)) || hex(randomblob(2)) || '4' || "
            "substr(hex(randomblob(2)), 2) || 'a' || substr(hex(randomblob(2)), 2) || "
            "hex(randomblob(6))), v.tenant_id, v.id, 'odometer', "
            "datetime('2001-01-01', '+' || g || ' minutes'), g / 4.0, 'import' "
            "FROM tenants_vehicle v CROSS JOIN n WHERE v.tenant_id = %s",
            [per_vehicle, tenant.pk.hex],
        )
result = MeterReading.objects.filter(tenant=tenant).count()
"""
REQUEST_BACKUP = """
from backup.export import ExportOptions
from backup.stored.backups import request_backup
from tenants.models import Tenant

tenant = Tenant.objects.get(slug=slug)
options = ExportOptions(include_deleted=True)
result = str(request_backup(tenant, user=None, trigger="command", options=options).id)
"""
REQUEST_RESTORE = """
from backup.restore import ImportOptions, Mode
from backup.stored.backups import get_backup
from backup.stored.restores import request_restore
from tenants.models import Tenant

tenant = Tenant.objects.get(slug=slug)
options = ImportOptions(
    mode=Mode(mode), new_tenant_slug=f"{slug}-copy", new_tenant_name=f"{tenant.name} (copy)"
)
backup = get_backup(tenant, backup_id)
restore = request_restore(tenant, user=None, trigger="command", options=options, backup=backup)
result = str(restore.id)
"""
CONFIRM_RESTORE = """
from backup.stored.restores import confirm_restore, get_restore
from tenants.models import Tenant

tenant = Tenant.objects.get(slug=slug)
restore = get_restore(tenant, restore_id)
result = confirm_restore(restore, user=None, confirmation=tenant.name).status
"""
REQUEST_BACKUPS = """
from backup.stored.backups import request_backup
from tenants.models import Tenant

result = [
    str(request_backup(tenant, user=None, trigger="command").id)
    for tenant in Tenant.objects.order_by("slug")
    for _ in range(each)
]
"""
MOVE_ON = """
from tenants.models import MeterReading, Tenant, Vehicle

tenant = Tenant.objects.get(slug=slug)
first = MeterReading.objects.filter(tenant=tenant).order_by("id").values_list("id", flat=True)
MeterReading.objects.filter(pk__in=list(first[:1000])).delete()
result = Vehicle.objects.filter(tenant=tenant).update(fleet_number="moved on")
"""
LIST_RESTORES = """
from backup.stored.restores import restores_of
from tenants.models import Tenant

result = [[str(r.id), r.status] for r in restores_of(Tenant.objects.get(slug=slug))]
"""


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A migrated database with the demo tenants, copied for each test."""
    directory = tmp_path_factory.mktemp("seeded")
    db = new_database(directory)
    try:
        env = environment(db, directory)
        manage(env, "migrate", "--verbosity", "0")
        manage(env, "seed_demo")
        db.close()
        yield db
    finally:
        drop_database(db)


class App:
    """The app as the test's processes see it: its own database, storage and spool
    directories, and the environment that points them there."""

    def __init__(self, db: Database, directory: Path) -> None:
        self.db = db
        self.directory = directory
        self.storage = directory / "backups"
        self.spool = directory / "spool"
        self.logs = directory / "logs"
        self.env = environment(db, directory)
        self._workers = 0

    def worker(self, **env: Any):
        self._workers += 1
        return db_worker({**self.env, **env}, self.logs / f"worker-{self._workers}.log")

    def run(self, code: str, env: dict[str, Any] | None = None, **values: Any) -> Any:
        """Run `code` in `manage.py shell` with `values` as its variables; its `result`."""
        preamble = "".join(f"{name} = {value!r}\n" for name, value in values.items())
        return shell({**self.env, **(env or {})}, preamble + code)

    def backup(self, backup_id: str) -> dict[str, Any]:
        return self._row(BACKUPS, backup_id)

    def restore(self, restore_id: str) -> dict[str, Any]:
        return self._row(RESTORES, restore_id)

    def _row(self, table: str, job_id: str) -> dict[str, Any]:
        columns = {
            BACKUPS: "status, error, progress_done, progress_total, worker, size, sha256, "
            "storage_name, total_rows, started_at, finished_at",
            RESTORES: "status, error, error_details, progress_done, worker, undo_backup_id",
        }[table]
        rows = self.db.query(f"SELECT {columns} FROM {table} WHERE id = %s", (self.db.key(job_id),))
        assert rows, f"no row {job_id} in {table}"
        return dict(zip([c.strip() for c in columns.split(",")], rows[0], strict=True))

    def tenant_id(self, slug: str) -> Any:
        return self.db.value("SELECT id FROM tenants_tenant WHERE slug = %s", (slug,))

    def counts(self, slug: str) -> dict[str, int]:
        tenant = self.tenant_id(slug)
        return {
            spec.name: self.db.value(
                f"SELECT count(*) FROM {spec.db_table} WHERE tenant_id = %s", (tenant,)
            )
            for spec in COMPARED
        }

    def checksums(self, slug: str) -> dict[str, tuple[int, str]]:
        """Rows and a digest of every value of them, per table, and of the tenant's own row."""
        tenant = self.tenant_id(slug)
        result = {}
        for spec in COMPARED:
            rows = self.db.query(
                f"SELECT * FROM {spec.db_table} WHERE tenant_id = %s ORDER BY id", (tenant,)
            )
            result[spec.name] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
        own = self.db.query("SELECT * FROM tenants_tenant WHERE id = %s", (tenant,))
        result["tenant"] = (1, hashlib.sha256(repr(own).encode()).hexdigest())
        return result

    def json(self, value: Any) -> Any:
        """A JSON column's value (SQLite hands over its text)."""
        return value if self.db.postgresql or value is None else json.loads(value)

    def audit(self, action: str) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT details FROM tenants_auditlog WHERE action = %s", (action,))
        return [self.json(details) for (details,) in rows]

    def add_readings(self, slug: str, per_vehicle: int) -> int:
        """Bulk meter readings for every vehicle of the tenant, made by the database itself
        (fast enough for hundreds of thousands); how many the tenant has then."""
        return self.run(ADD_READINGS, slug=slug, per_vehicle=per_vehicle)

    def request_backup(self, slug: str, **env: Any) -> str:
        return self.run(REQUEST_BACKUP, env, slug=slug)

    def request_restore(self, slug: str, backup_id: str, mode: str, **env: Any) -> str:
        return self.run(REQUEST_RESTORE, env, slug=slug, backup_id=backup_id, mode=mode)

    def confirm_restore(self, slug: str, restore_id: str, **env: Any) -> str:
        return self.run(CONFIRM_RESTORE, env, slug=slug, restore_id=restore_id)

    def wait_backup(self, backup_id: str, status: str, worker: Any, timeout: float = 60) -> dict:
        return self._wait(self.backup, backup_id, status, worker, timeout)

    def wait_restore(self, restore_id: str, status: str, worker: Any, timeout: float = 60) -> dict:
        return self._wait(self.restore, restore_id, status, worker, timeout)

    @staticmethod
    def _wait(read, job_id: str, status: str, worker: Any, timeout: float) -> dict:
        def reached() -> dict | None:
            row = read(job_id)
            assert row["status"] != "failed" or status == "failed", row["error"]
            return row if row["status"] == status else None

        return wait_for(reached, timeout=timeout, what=f"{job_id} to be {status}", process=worker)


@pytest.fixture
def app(seeded, tmp_path):
    db = new_database(tmp_path / "db", template=seeded)
    try:
        yield App(db, tmp_path)
    finally:
        drop_database(db)


def assert_stored(app: App, row: dict[str, Any]) -> None:
    """The backup's file is in the storage directory, as big as recorded, with its SHA-256."""
    path = app.storage / row["storage_name"]
    assert path.is_file()
    assert path.stat().st_size == row["size"] > 0
    assert sha256_of(path) == row["sha256"]
    assert path.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame
    assert files_under(app.spool) == []


def test_db_worker_makes_a_backup_asked_for_by_another_process_and_restores_it(app):
    backup_id = app.request_backup("demo")
    assert app.backup(backup_id)["status"] == "queued"  # no worker yet: it waits
    with app.worker() as worker:
        seen = ["queued"]
        # Polled often enough to see the short "running" of the demo tenant's backup.
        while seen[-1] != "succeeded":
            row = app.backup(backup_id)
            assert row["status"] != "failed", row["error"]
            if row["status"] != seen[-1]:
                seen.append(row["status"])
            assert worker.running(), worker.tail()
            time.sleep(0.005)
        assert seen == ["queued", "running", "succeeded"]
        assert row["worker"] == f"{HOST}:{worker.pid}"
        assert row["started_at"] is not None and row["finished_at"] is not None
        assert row["total_rows"] == row["progress_done"] == sum(app.counts("demo").values())
        assert_stored(app, row)
        assert len(app.audit("backup.stored.finished")) == 1

        restore_id = app.request_restore("demo", backup_id, "new_tenant")
        app.wait_restore(restore_id, "awaiting_confirmation", worker)
        assert app.tenant_id("demo-copy") is None  # the preview wrote nothing
        app.confirm_restore("demo", restore_id)
        restore = app.wait_restore(restore_id, "succeeded", worker)
    assert restore["error"] == ""
    assert app.counts("demo-copy") == app.counts("demo")
    assert sum(app.counts("demo-copy").values()) == row["total_rows"]


def test_two_db_workers_sharing_a_database_make_each_backup_exactly_once(app):
    with app.worker() as first, app.worker() as second:
        ids = app.run(REQUEST_BACKUPS, each=4)
        rows = {i: app.wait_backup(i, "succeeded", first) for i in ids}
        assert first.running() and second.running()
    assert len(ids) == 8
    workers = {f"{HOST}:{first.pid}", f"{HOST}:{second.pid}"}
    assert {row["worker"] for row in rows.values()} <= workers
    finished = [entry["backup"] for entry in app.audit("backup.stored.finished")]
    assert sorted(finished) == sorted(ids)  # no backup made twice
    for row in rows.values():
        assert_stored(app, row)
    assert len(files_under(app.storage)) == len(ids)
    # Each task ran once, to its end, in one of the two workers.
    results = app.db.query(f"SELECT status, return_value FROM {TASKS}")
    assert len(results) == len(ids)
    assert {(status, app.json(value)) for status, value in results} == {("SUCCESSFUL", "succeeded")}


def test_rq_worker_makes_a_backup_and_restores_it(app):
    with redis_database() as redis_url:
        env = {"BACKUP_TASK_BACKEND": "rq", "REDIS_URL": redis_url}
        backup_id = app.request_backup("acme-quarries", **env)
        assert app.backup(backup_id)["status"] == "queued"
        # Stopped without waiting long: with redis-py 8.2, rq 3.0's worker may hang at shutdown
        # until its pubsub thread's poll times out (when nothing runs any more).
        worker = rq_worker({**app.env, **env}, app.logs / "rq.log").start()
        try:
            row = app.wait_backup(backup_id, "succeeded", worker)
            assert row["worker"].startswith(f"{HOST}:")
            assert_stored(app, row)
            restore_id = app.request_restore("acme-quarries", backup_id, "new_tenant", **env)
            app.wait_restore(restore_id, "awaiting_confirmation", worker)
            app.confirm_restore("acme-quarries", restore_id, **env)
            restore = app.wait_restore(restore_id, "succeeded", worker)
        finally:
            worker.stop(timeout=3)
    assert restore["error"] == ""
    assert app.counts("acme-quarries-copy") == app.counts("acme-quarries")


def test_a_backup_whose_worker_is_killed_fails_and_leaves_no_file(app):
    readings = app.add_readings("demo", per_vehicle=7_500)
    assert readings >= 300_000  # an export long enough to be caught mid-way
    worker = app.worker().start()
    try:
        backup_id = app.request_backup("demo")
        running = wait_for(
            lambda: (
                (row := app.backup(backup_id))["status"] == "running"
                and row["progress_done"] > 0
                and row
            ),
            timeout=60,
            what="the backup to report progress",
            every=0.01,
            process=worker,
        )
        worker.kill()  # SIGKILL: no handler, no cleanup
    finally:
        worker.stop()
    assert running["progress_done"] < running["progress_total"]
    assert running["worker"] == f"{HOST}:{worker.pid}"
    # Killed mid-way: a spool file, nothing in the storage.
    assert len(files_under(app.spool)) == 1
    assert files_under(app.storage) == []
    assert app.backup(backup_id)["status"] == "running"  # until someone looks

    # A new worker sweeps before its first job: the dead one is failed and its leftovers go.
    with app.worker() as second:
        other = app.request_backup("acme-quarries")
        app.wait_backup(other, "succeeded", second)
    dead = app.backup(backup_id)
    assert dead["status"] == "failed"
    assert f"its worker (process {worker.pid} on {HOST}) stopped" in dead["error"]
    assert "No file was kept" in dead["error"]
    assert dead["size"] is None and dead["sha256"] == ""
    assert files_under(app.spool) == []
    assert [p.name for p in files_under(app.storage)] == [f"{other}{storage.SUFFIX}"]
    [failed] = app.audit("backup.stored.failed")
    assert failed["backup"] == backup_id


def test_an_import_whose_worker_is_killed_writes_nothing(app):
    app.add_readings("demo", per_vehicle=2_500)
    worker = app.worker().start()
    try:
        backup_id = app.request_backup("demo")
        app.wait_backup(backup_id, "succeeded", worker)
        # The tenant moves on after its backup, so that a replace would change it.
        app.run(MOVE_ON, slug="demo")
        before = app.checksums("demo")
        other_before = app.checksums("acme-quarries")
        restore_id = app.request_restore("demo", backup_id, "replace")
        app.wait_restore(restore_id, "awaiting_confirmation", worker)
        app.confirm_restore("demo", restore_id)

        def importing() -> bool:
            row = app.restore(restore_id)
            if row["status"] != "importing" or row["undo_backup_id"] is None:
                return False
            if app.backup(str(row["undo_backup_id"]))["status"] != "succeeded":
                return False
            # Writing for a while, not a heartbeat's moment: inside the import's transaction.
            for _ in range(3):
                if not app.db.writing("tenants_meterreading"):
                    return False
                time.sleep(0.1)
            return True

        wait_for(importing, timeout=60, what="the import to write", every=0.02, process=worker)
        worker.kill()
    finally:
        worker.stop()
    restore = app.restore(restore_id)
    assert restore["status"] == "importing"

    # Listing the restores sweeps them.
    listed = app.run(LIST_RESTORES, slug="demo")
    assert listed == [[restore_id, "failed"]]
    restore = app.restore(restore_id)
    assert f"its worker (process {worker.pid} on {HOST}) stopped" in restore["error"]
    assert "Nothing was written to the tenant" in restore["error"]
    assert app.json(restore["error_details"])["code"] == "worker_died"
    assert app.checksums("demo") == before
    assert app.checksums("acme-quarries") == other_before
    # The undo backup made before the import is kept, whole.
    undo = app.backup(str(restore["undo_backup_id"]))
    assert undo["status"] == "succeeded"
    assert_stored(app, undo)
    applied = [e for e in app.audit("backup.import") if e.get("outcome") == "applied"]
    assert applied == []


@pytest.mark.django_db
def test_the_sweep_fails_a_job_of_another_machine_only_once_its_lease_has_run_out(
    settings, backup_dir
):
    settings.BACKUP_JOB_LEASE_SECONDS = 30
    tenant = f.TenantFactory()
    now = timezone.now()

    def job(model, heartbeat_seconds_ago: float, worker: str = "otherhost:123", **fields):
        return model.objects.create(
            tenant=tenant,
            trigger="api",
            worker=worker,
            started_at=now - dt.timedelta(minutes=5),
            heartbeat_at=now - dt.timedelta(seconds=heartbeat_seconds_ago),
            **fields,
        )

    stale = job(StoredBackup, 31, status="running")
    fresh = job(StoredBackup, 5, status="running")
    # On this machine the process decides, whatever the heartbeat says (a SQLite import
    # cannot beat while it holds the write lock).
    local = job(StoredBackup, 3600, worker=worker_id(), status="running")
    stale.storage_name = storage.storage_name(tenant.pk, stale.id)
    stale.save()
    # What the dead worker left: a spool file, and the file it may have been moving in place.
    spool = storage.spool_dir() / f"{stale.id}.abc{storage.SPOOL_SUFFIX}"
    spool.write_bytes(b"partial")
    stored = backup_dir / stale.storage_name
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"partial")
    stale_restore = job(Restore, 31, status="importing", mode="merge")
    fresh_restore = job(Restore, 5, status="importing", mode="merge")

    assert {b.id: b.status for b in backups_of(tenant)} == {
        stale.id: "failed",
        fresh.id: "running",
        local.id: "running",
    }
    stale.refresh_from_db()
    assert stale.error == (
        "The backup was stopped: its worker (otherhost:123) sent no heartbeat for more than "
        "30 s (BACKUP_JOB_LEASE_SECONDS). No file was kept; make it again."
    )
    assert not spool.exists() and not stored.exists()
    fresh.refresh_from_db()
    assert fresh.error == "" and fresh.finished_at is None

    assert {r.id: r.status for r in restores_of(tenant)} == {
        stale_restore.id: "failed",
        fresh_restore.id: "importing",
    }
    stale_restore.refresh_from_db()
    assert "sent no heartbeat for more than 30 s" in stale_restore.error
    assert stale_restore.error_details == {"code": "worker_died"}

    # Once the fresh one's heartbeat is older than the lease, it goes the same way.
    settings.BACKUP_JOB_LEASE_SECONDS = 4
    assert {b.id: b.status for b in backups_of(tenant)}[fresh.id] == "failed"
    assert {r.id: r.status for r in restores_of(tenant)}[fresh_restore.id] == "failed"
    local.refresh_from_db()
    assert local.status == "running"
