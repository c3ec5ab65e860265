"""The scheduler (`manage.py enqueue_due_backups`) and the workers as real processes: two
schedulers racing for the same slot while two workers make the backups and their drills (on
PostgreSQL, always, and on SQLite), a worker killed during a scheduled backup, the scheduler
kept running with `--loop` and stopped by a signal, and backups whose hand-over to RQ was
refused (Redis away) handed over again by a later pass to an RQ worker.

Each test works on a database of its own (`tests/processes.py`) with twenty small tenants. The
slot is a minute shortly before now, so that nothing else is due or missed: what `backup_health`
reports is only what the test did.
"""

import datetime as dt
import json
import re
import signal
import subprocess
import sys
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django_tasks_db.models import DBTaskResult

from backup.models import Alert, Drill, Schedule, StoredBackup
from tenants.models import AuditLog, Tenant

from .processes import (
    BASE_DIR,
    Database,
    Process,
    command,
    db_worker,
    drop_database,
    environment,
    files_under,
    manage,
    new_database,
    redis_database,
    rq_worker,
    shell,
    wait_for,
)
from .test_workers import ADD_READINGS

BACKUPS = StoredBackup._meta.db_table
DRILLS = Drill._meta.db_table
SCHEDULES = Schedule._meta.db_table
ALERTS = Alert._meta.db_table
TENANTS = Tenant._meta.db_table
TASKS = DBTaskResult._meta.db_table
AUDIT = AuditLog._meta.db_table
SLUGS = [f"tenant-{n:02}" for n in range(20)]
VENDORS = ("sqlite", "postgresql")

# Small tenants, each with a daily schedule at the slot's time (UTC), planned from now: the
# next run is tomorrow's, until a test pins a tenant back to today's slot.
SEED = f"""
import datetime as dt
from backup.stored.schedules import update_schedule
from tenants.demo import DemoSizes, TenantSpec, seed_demo
from tenants.models import Tenant

sizes = DemoSizes(vehicles=3, readings=10, components=3, logs=3, work_orders=3)
seed_demo([TenantSpec(slug=slug, name=slug.title(), sizes=sizes) for slug in {SLUGS!r}])
time = dt.datetime.fromisoformat(slot).strftime("%H:%M")
for tenant in Tenant.objects.all():
    update_schedule(tenant, {{"time": time, "timezone": "UTC"}}, user=None)
result = True
"""
PASS = re.compile(r"(\d+) backup\(s\) enqueued of (\d+) due(?:, (\d+) already enqueued)?")


def moment(value: Any) -> dt.datetime:
    """A datetime column's value (SQLite hands over text, in UTC)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def slot() -> dt.datetime:
    """The slot the tests make backups for: a whole minute shortly before now, due and not
    late (within the grace period) for as long as the tests run."""
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    return now - dt.timedelta(minutes=3)


@pytest.fixture(scope="module")
def templates(tmp_path_factory, slot):
    """A migrated database of each vendor with the tenants and their schedules, copied for
    each test; the two are made at the same time (their processes mostly wait)."""
    made: dict[str, Database] = {}

    def make(vendor: str) -> None:
        directory = tmp_path_factory.mktemp(f"template-{vendor}")
        db = made[vendor] = new_database(directory, vendor=vendor)
        env = environment(db, directory, BACKUP_SCHEDULE_WINDOW_MINUTES=0)
        manage(env, "migrate", "--verbosity", "0")
        shell(env, f"slot = {slot.isoformat()!r}\n{SEED}")
        db.close()

    try:
        with ThreadPoolExecutor() as pool:
            for done in [pool.submit(make, vendor) for vendor in VENDORS]:
                done.result()
        yield made
    finally:
        for db in made.values():
            drop_database(db)


class Site:
    """The app on a database of the test's own: its processes' environment (no spreading
    window: a slot runs at its time), its storage, and what the rows say."""

    def __init__(self, db: Database, directory: Path) -> None:
        self.db = db
        self.storage = directory / "backups"
        self.spool = directory / "spool"
        self.logs = directory / "logs"
        self.env = environment(db, directory, BACKUP_SCHEDULE_WINDOW_MINUTES=0)
        self._processes = 0

    def _log(self, name: str) -> Path:
        self._processes += 1
        return self.logs / f"{name}-{self._processes}.log"

    def worker(self) -> Process:
        return db_worker(self.env, self._log("worker"))

    def scheduler(self, *args: str) -> Process:
        argv = [sys.executable, str(BASE_DIR / "manage.py"), "enqueue_due_backups", *args]
        return Process("enqueue_due_backups", argv, self.env, self._log("scheduler"))

    def pin(self, slugs: list[str], slot: dt.datetime) -> int:
        """Point the tenants' schedules back at `slot`, as a scheduler that has not run yet
        finds them; how many it changed."""
        marks = ", ".join(["%s"] * len(slugs))
        self.db.query(
            f"UPDATE {SCHEDULES} SET next_slot_at = %s, next_run_at = %s "
            f"WHERE tenant_id IN (SELECT id FROM {TENANTS} WHERE slug IN ({marks}))",
            (self.db.moment(slot), self.db.moment(slot), *slugs),
        )
        return self.db.value(
            f"SELECT count(*) FROM {SCHEDULES} WHERE next_run_at = %s", (self.db.moment(slot),)
        )

    def race(self, at: dt.datetime, schedulers: int = 2) -> list[tuple[int, int, int]]:
        """Start the schedulers at once, all for the moment `at`; what each says it did:
        (enqueued, due, already enqueued by another)."""
        argv = [sys.executable, str(BASE_DIR / "manage.py"), "enqueue_due_backups"]
        started = [
            subprocess.Popen(
                [*argv, "--at", at.isoformat()],
                env=self.env,
                cwd=BASE_DIR,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(schedulers)
        ]
        passes = []
        for popen in started:
            out, err = popen.communicate(timeout=60)
            assert popen.returncode == 0 and err == "", f"the scheduler failed:\n{out}\n{err}"
            found = PASS.search(out)
            assert found, f"the scheduler's output says nothing of its pass:\n{out}"
            passes.append(tuple(int(n or 0) for n in found.groups()))
        return passes

    def backups(self) -> list[dict[str, Any]]:
        rows = self.db.query(
            f"SELECT b.id, t.slug, b.trigger, b.status, b.error, b.scheduled_for, "
            f"b.storage_name, b.size FROM {BACKUPS} b JOIN {TENANTS} t ON t.id = b.tenant_id "
            "ORDER BY t.slug"
        )
        names = ("id", "slug", "trigger", "status", "error", "slot", "storage_name", "size")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def drills(self) -> list[tuple[Any, str]]:
        return self.db.query(f"SELECT backup_id, status FROM {DRILLS}")

    def alerts(self) -> list[tuple[str, str, str]]:
        return self.db.query(
            f"SELECT t.slug, a.kind, a.message FROM {ALERTS} a "
            f"JOIN {TENANTS} t ON t.id = a.tenant_id WHERE a.resolved_at IS NULL"
        )

    def tasks(self) -> Counter:
        """The task backend's records: (task, status) and how many."""
        rows = self.db.query(f"SELECT task_path, status FROM {TASKS}")
        return Counter((path.rsplit(".", 1)[-1], status) for path, status in rows)

    def rq_worker(self, env: dict[str, str]) -> Process:
        return rq_worker(env, self._log("rqworker"))

    def audit(self, action: str) -> list[dict[str, Any]]:
        rows = self.db.query(f"SELECT details FROM {AUDIT} WHERE action = %s", (action,))
        return [json.loads(d) if isinstance(d, str) else d for (d,) in rows]

    def idle(self) -> bool:
        """Nothing queued or running, and each succeeded backup has its drill (the worker
        asks for it just after the backup has succeeded)."""
        active = ("queued", "running")
        for table in (BACKUPS, DRILLS):
            if self.db.value(f"SELECT count(*) FROM {table} WHERE status IN (%s, %s)", active):
                return False
        succeeded = self.db.value(f"SELECT count(*) FROM {BACKUPS} WHERE status = 'succeeded'")
        return self.db.value(f"SELECT count(*) FROM {DRILLS}") == succeeded


@pytest.fixture
def site_on(templates, tmp_path):
    """`site_on(vendor)`: a Site on a copy of that vendor's template (default: the run's)."""
    made: list[Database] = []

    def site_on(vendor: str | None = None) -> Site:
        directory = tmp_path / f"site-{len(made)}"
        db = new_database(directory / "db", template=templates[vendor or connection.vendor])
        made.append(db)
        return Site(db, directory)

    try:
        yield site_on
    finally:
        for db in made:
            drop_database(db)


def assert_one_backup_per_tenant(site: Site, slot: dt.datetime) -> list[dict[str, Any]]:
    backups = site.backups()
    assert [b["slug"] for b in backups] == SLUGS  # one each, no tenant twice or left out
    assert {(b["trigger"], moment(b["slot"])) for b in backups} == {("schedule", slot)}
    return backups


def test_two_schedulers_and_two_workers_make_one_backup_per_tenant_and_slot_on_postgresql(
    site_on, slot
):
    site = site_on("postgresql")
    assert site.pin(SLUGS, slot) == len(SLUGS)
    with site.worker() as first, site.worker() as second:
        first_round = site.race(slot)
        # The same slot again, its schedules pinned back as if their moving on were lost: the
        # database's one backup per tenant and slot is what holds then.
        site.pin(SLUGS, slot)
        again = site.race(slot)
        wait_for(site.idle, timeout=120, what="the backups and drills to end", process=first)
        assert first.running() and second.running()

    assert sum(enqueued for enqueued, _, _ in first_round) == len(SLUGS)
    assert sum(due for _, due, _ in first_round) == len(SLUGS)  # each schedule taken by one
    assert sum(enqueued for enqueued, _, _ in again) == 0
    assert sum(already for _, _, already in again) == len(SLUGS)
    backups = assert_one_backup_per_tenant(site, slot)
    assert {b["status"] for b in backups} == {"succeeded"}
    for backup in backups:
        path = site.storage / backup["storage_name"]
        assert path.is_file() and path.stat().st_size == backup["size"] > 0
    assert len(files_under(site.storage)) == len(SLUGS)
    # Each backup verified by exactly one drill, each job run once by the task backend.
    drills = site.drills()
    assert sorted(str(backup_id) for backup_id, _ in drills) == sorted(
        str(b["id"]) for b in backups
    )
    assert {status for _, status in drills} == {"passed"}
    assert site.tasks() == {
        ("make_backup", "SUCCESSFUL"): len(SLUGS),
        ("drill_backup", "SUCCESSFUL"): len(SLUGS),
    }
    assert site.alerts() == []


def test_two_schedulers_on_sqlite_enqueue_each_slot_once_without_a_locked_database(site_on, slot):
    site = site_on("sqlite")
    site.pin(SLUGS, slot)
    # Each round's schedulers start together; `race` fails on any error they print (a
    # "database is locked" among them).
    first_round = site.race(slot)
    site.pin(SLUGS, slot)
    again = site.race(slot)

    assert sorted(first_round) == [(0, 0, 0), (len(SLUGS), len(SLUGS), 0)]
    assert sum(enqueued for enqueued, _, _ in again) == 0
    assert sum(already for _, _, already in again) == len(SLUGS)
    assert {b["status"] for b in assert_one_backup_per_tenant(site, slot)} == {"queued"}
    assert site.tasks() == {("make_backup", "READY"): len(SLUGS)}


def test_a_scheduled_backup_whose_worker_is_killed_fails_with_an_alert_and_no_file(site_on, slot):
    site = site_on()
    slug = SLUGS[0]
    readings = shell(site.env, f"slug = {slug!r}\nper_vehicle = 50_000\n{ADD_READINGS}")
    assert readings >= 150_000  # an export long enough to be caught mid-way
    site.pin([slug], slot)
    worker = site.worker().start()
    try:
        assert site.race(slot, schedulers=1) == [(1, 1, 0)]

        def exporting() -> dict[str, Any] | None:
            rows = site.db.query(
                f"SELECT id, status, progress_done, progress_total, worker FROM {BACKUPS}"
            )
            names = ("id", "status", "done", "total", "worker")
            row = dict(zip(names, rows[0], strict=True)) if rows else None
            return row if row and row["status"] == "running" and row["done"] > 0 else None

        running = wait_for(
            exporting, timeout=60, what="the backup to report progress", every=0.01, process=worker
        )
        worker.kill()  # SIGKILL: no handler, no cleanup
    finally:
        worker.stop()
    assert running["done"] < running["total"]
    # The kill may land between the file's hand-over to the storage and the row's success (the
    # progress seen lags the export by a heartbeat): the sweep removes such a file too.

    # Listing the tenant's backups sweeps the dead job.
    manage(site.env, "backup_list", slug)
    [backup] = site.backups()
    assert backup["status"] == "failed"
    assert f"its worker (process {worker.pid} on " in backup["error"]
    assert "No file was kept" in backup["error"]
    assert backup["size"] is None
    assert files_under(site.storage) == [] and files_under(site.spool) == []
    [(tenant, kind, message)] = site.alerts()
    assert (tenant, kind) == (slug, "backup_failed")
    assert f"The scheduled backup of {slot:%Y-%m-%d %H:%M} UTC failed" in message

    # The slot is accounted for: its backup failed, the schedule moved on to the next one.
    assert moment(backup["slot"]) == slot
    [(last, following)] = site.db.query(
        f"SELECT s.last_slot_at, s.next_slot_at FROM {SCHEDULES} s "
        f"JOIN {TENANTS} t ON t.id = s.tenant_id WHERE t.slug = %s",
        (slug,),
    )
    assert (moment(last), moment(following)) == (slot, slot + dt.timedelta(days=1))
    health = command(site.env, "backup_health")
    assert health.returncode == 1, health.stdout + health.stderr
    [line, total] = health.stdout.splitlines()
    assert line.startswith(f"{slug}  backup_failed  since ")
    assert f"its worker (process {worker.pid} on " in line
    assert total == "1 alert(s) open."


# SIGTERM (systemd's stop) ends the process by the signal; Ctrl-C ends the loop quietly.
@pytest.mark.parametrize(
    ("stop", "status"), [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 0)], ids=["TERM", "INT"]
)
def test_the_scheduler_in_a_loop_enqueues_what_becomes_due_until_stopped(
    site_on, slot, stop, status
):
    site = site_on()
    site.pin([SLUGS[0]], slot)
    scheduler = site.scheduler("--loop", "--interval", "1").start()
    try:
        wait_for(
            lambda: [b["slug"] for b in site.backups()] == [SLUGS[0]],
            timeout=30,
            what="the first pass to enqueue the due backup",
            process=scheduler,
        )
        # Another tenant falls due while it runs: a later pass enqueues it.
        site.pin([SLUGS[1]], slot)
        wait_for(
            lambda: [b["slug"] for b in site.backups()] == SLUGS[:2],
            timeout=30,
            what="a later pass to enqueue the tenant that fell due",
            process=scheduler,
        )

        def kept_going() -> list[int] | None:
            enqueued = [int(found[0]) for found in PASS.findall(scheduler.log.read_text())]
            made = [i for i, n in enumerate(enqueued) if n]
            return enqueued if len(made) == 2 and len(enqueued) > made[-1] + 1 else None

        passes = wait_for(kept_going, timeout=30, what="a pass after that", process=scheduler)
        assert scheduler.running(), scheduler.tail()
        scheduler.popen.send_signal(stop)
        returncode = scheduler.wait(timeout=10)
    finally:
        scheduler.stop()
    output = scheduler.log.read_text()
    assert "Traceback" not in output, output
    assert returncode == status, output
    assert sorted(set(passes)) == [0, 1] and sum(passes) == 2, output
    assert {b["status"] for b in site.backups()} == {"queued"}  # no worker here
    assert site.tasks() == {("make_backup", "READY"): 2}


def test_backups_whose_hand_over_redis_refused_are_enqueued_again_by_a_later_pass(site_on, slot):
    site = site_on()
    pair = SLUGS[:2]
    assert site.pin(pair, slot) == len(pair)
    # Nothing listens on port 1: RQ refuses the jobs once the pass has committed its rows.
    away = {**site.env, "BACKUP_TASK_BACKEND": "rq", "REDIS_URL": "redis://127.0.0.1:1/0"}
    refused = command(away, "enqueue_due_backups", "--at", slot.isoformat(), timeout=60)
    output = f"{refused.stdout}\n{refused.stderr}"
    assert refused.returncode == 0, output
    found = PASS.search(refused.stdout)
    assert found and found.groups() == ("2", "2", None), output
    assert "Error calling hand_over.<locals>.enqueue in on_commit()" in refused.stderr, output
    assert "connecting to 127.0.0.1:1. Connection refused" in refused.stderr, output
    rows = site.db.query(f"SELECT id, status, enqueued_at, created_at FROM {BACKUPS}")
    assert [(status, enqueued) for _, status, enqueued, _ in rows] == [("queued", None)] * 2

    # Old enough for a later pass to take their hand-over as lost.
    for backup_id, _, _, created in rows:
        earlier = moment(created) - dt.timedelta(minutes=2)
        site.db.query(
            f"UPDATE {BACKUPS} SET created_at = %s WHERE id = %s",
            (site.db.moment(earlier), backup_id),
        )
    with redis_database() as redis_url:
        env = {**site.env, "BACKUP_TASK_BACKEND": "rq", "REDIS_URL": redis_url}
        # Stopped without waiting long: with redis-py 8.2, rq 3.0's worker may hang at shutdown
        # until its pubsub thread's poll times out (when nothing runs any more).
        worker = site.rq_worker(env).start()
        try:
            again = command(env, "enqueue_due_backups", "--at", slot.isoformat(), timeout=60)
            wait_for(site.idle, timeout=60, what="the backups and drills to end", process=worker)
            assert worker.running(), worker.tail()
        finally:
            worker.stop(timeout=3)
    assert (again.returncode, again.stderr) == (0, ""), f"{again.stdout}\n{again.stderr}"
    assert "; 2 job(s) whose hand-over was lost enqueued again." in again.stdout, again.stdout

    backups = site.backups()
    assert [(b["slug"], b["status"]) for b in backups] == [(slug, "succeeded") for slug in pair]
    for backup in backups:
        path = site.storage / backup["storage_name"]
        assert path.is_file() and path.stat().st_size == backup["size"] > 0
    # The refused hand-over never reached Redis, the second did: each backup made once.
    ids = sorted(str(uuid.UUID(str(b["id"]))) for b in backups)
    assert sorted(entry["backup"] for entry in site.audit("backup.stored.finished")) == ids
    assert site.db.value(f"SELECT count(*) FROM {BACKUPS} WHERE enqueued_at IS NULL") == 0
    # Their drills went through RQ too, handed over at once by the worker.
    drills = site.db.query(f"SELECT backup_id, status, enqueued_at FROM {DRILLS}")
    assert sorted(str(uuid.UUID(str(backup_id))) for backup_id, _, _ in drills) == ids
    assert {status for _, status, _ in drills} == {"passed"}
    assert all(enqueued is not None for _, _, enqueued in drills)
    assert site.tasks() == {}  # nothing went through the database's queue
    assert site.alerts() == []
