"""Benchmark of automatic backups over a fleet: one night of scheduled backups and their restore
drills, made by real workers, and the scheduler's pass over 10,000 tenants.

    .venv/bin/python bench/fleet.py                            # PostgreSQL, 1,000 tenants, ~5M rows
    .venv/bin/python bench/fleet.py --tenants 50 --large 2     # a quick run
    .venv/bin/python bench/fleet.py --database sqlite --tenants 100 --large 2

One night: N tenants of mixed sizes (most around `--small-rows`, `--large` of them around
`--large-rows`), every one with the default schedule (drills on), all pinned to one slot. The
scheduler's pass (`manage.py enqueue_due_backups --at SLOT`) runs as a process, then W real
`db_worker` processes make every backup and drill. For each W in `--workers`, from the same
state: the makespan, backups/s and rows/s, the overhead of a backup job over the export's own
time (the same tenants exported into a zstd null sink by another process in the same run), the
drills' time, each worker's peak RSS, the database connections held, the bytes stored and the
failures. Then the scheduler's pass over `--schedules` tenants (rows in `tenants_tenant` only):
a typical minute with the default 60-minute window, all of them due at once, and all of them
due after downtime, against the task backend's own cost of enqueueing as many jobs.
Targets: job overhead (median) <= 50 ms, a pass over 10,000 tenants <= 2 s, no failure (a
failed backup, drill or task makes it exit with status 1).
"""

import argparse
import datetime as dt
import io
import itertools
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import PG, ROOT, Bench

OVERHEAD_TARGET = 0.050  # seconds, the median of a backup job over its export
PASS_TARGET = 2.0  # seconds, the scheduler's pass over 10,000 tenants
# The night's slot: any instant works, since the pass is told the moment (`--at`).
SLOT = dt.datetime(2026, 12, 6, 2, 0, tzinfo=dt.UTC)
# A backup's rows are about 1.745 x its readings + 208 at seed_demo's proportions below
# (measured: 1,000 readings make 1,954 rows, 58,000 make 101,366).
ROWS_PER_READING = 1.745
ROWS_FIXED = 208


def readings_for(rows: int) -> int:
    return max(50, round((rows - ROWS_FIXED) / ROWS_PER_READING))


def fleet_plan(tenants: int, large: int, small_rows: int, large_rows: int) -> list[list[Any]]:
    """(slug, readings) per tenant. Small tenants spread from half to one and a half times
    `small_rows` (evenly, in a shuffled order), so that sizes are mixed and not one size."""
    plan: list[list[Any]] = []
    small = tenants - large
    for i in range(small):
        share = ((i * 7919) % max(small, 1)) / max(small - 1, 1)  # 0..1, a permutation
        rows = round(small_rows * (0.5 + share))
        plan.append([f"fleet-s-{i:05d}", readings_for(rows)])
    for i in range(large):
        plan.append([f"fleet-l-{i:03d}", readings_for(large_rows)])
    return plan


def size_class(slug: str) -> str:
    return "large" if slug.startswith("fleet-l-") else "small"


# -- the steps that run inside Django, each in its own process ----------------------------------


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def _vacuum() -> None:
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # As autovacuum would between two nights: a night's drills leave every restored row
            # dead (their transactions roll back), which the next run would otherwise wade through.
            cursor.execute("VACUUM ANALYZE")
            cursor.execute("CHECKPOINT")


def step_seeded() -> dict[str, Any]:
    from tenants.models import Tenant

    return {"tenants": Tenant.objects.filter(slug__startswith="fleet-").count()}


def step_seed(plan_file: str) -> dict[str, Any]:
    from tenants.demo import DemoSizes, TenantSpec, seed_demo

    plan = json.loads(Path(plan_file).read_text())
    specs = [
        TenantSpec(
            slug=slug,
            name=f"Fleet {slug}",
            sizes=DemoSizes(
                vehicles=readings // 50,
                readings=readings,
                components=readings // 10,
                logs=readings // 5,
                work_orders=readings // 20,
            ),
        )
        for slug, readings in plan
    ]
    started = time.perf_counter()
    seed_demo(specs)
    return {"seconds": time.perf_counter() - started}


def _reset_backups() -> None:
    from django_tasks_db.models import DBTaskResult

    from backup.models import Alert, Drill, Restore, StoredBackup

    Drill.objects.all().delete()
    Restore.objects.all().delete()
    StoredBackup.objects.all().delete()
    Alert.objects.all().delete()
    DBTaskResult.objects.all().delete()


def step_night_reset(slot: str) -> dict[str, Any]:
    """Back to the state before a night: no backup, drill, alert or job; every fleet tenant's
    schedule the default one (daily, drills on), pinned to run at `slot`."""
    from backup.models import Schedule
    from backup.stored.schedules import ensure_schedules
    from tenants.models import Tenant

    moment = dt.datetime.fromisoformat(slot)
    _reset_backups()
    ensure_schedules()
    Schedule.objects.update(
        enabled=True,
        frequency="daily",
        weekday=None,
        time=moment.time(),
        timezone="UTC",
        drill=True,
        options={},
        last_slot_at=None,
        next_slot_at=moment,
        next_run_at=moment,
    )
    _vacuum()
    tenants = Tenant.objects.filter(slug__startswith="fleet-").values_list("id", "slug")
    return {"tenants": {tenant_id.hex: slug for tenant_id, slug in tenants}}


class _Discard(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def step_exports(slugs_json: str, repeat: str) -> dict[str, Any]:
    """The export's own time per tenant: `export_tenant` through zstd at the workers' level into
    a sink that keeps nothing (the median of `repeat` runs), on this process's connection. Each
    run is followed by one on a new connection, as every worker job gets one (Django closes it
    after each job unless CONN_MAX_AGE says otherwise): what that costs is part of a job's
    overhead, and is shown apart."""
    from django.conf import settings
    from django.db import connections

    from backup.export import export_tenant
    from backup.format.streams import compressed
    from tenants.models import Tenant

    def timed(tenant: Tenant) -> tuple[float, int]:
        started = time.perf_counter()
        with compressed(_Discard(), "zstd", level=settings.BACKUP_ZSTD_LEVEL) as out:  # type: ignore[arg-type]
            rows = export_tenant(tenant, out).total_rows
        return time.perf_counter() - started, rows

    found: dict[str, Any] = {}
    for slug in json.loads(slugs_json):
        tenant = Tenant.objects.get(slug=slug)
        runs, fresh, rows = [], [], 0
        for _ in range(int(repeat)):
            seconds, rows = timed(tenant)
            runs.append(seconds)
            connections.close_all()
            fresh.append(timed(tenant)[0])
        found[slug] = {
            "rows": rows,
            "seconds": statistics.median(runs),
            "runs": runs,
            "fresh_seconds": statistics.median(fresh),
            "fresh_runs": fresh,
        }
    return found


def _stamp(moment: dt.datetime | None) -> float | None:
    return moment.timestamp() if moment else None


def step_night_report() -> dict[str, Any]:
    from django_tasks_db.models import DBTaskResult

    from backup.models import Alert, Drill, StoredBackup

    tasks = {}
    for task in DBTaskResult.objects.all():
        args = task.args_kwargs.get("args") or [""]
        tasks[str(args[0])] = {
            "status": task.status,
            "started": _stamp(task.started_at),
            "finished": _stamp(task.finished_at),
            "path": task.task_path,
            "worker": (task.worker_ids or [""])[-1],
        }
    backups = [
        {
            "id": str(b.id),
            "slug": b.tenant.slug,
            "status": b.status,
            "rows": b.total_rows,
            "size": b.size or 0,
            "created": _stamp(b.created_at),
            "started": _stamp(b.started_at),
            "finished": _stamp(b.finished_at),
            "error": b.error,
            "task": tasks.get(str(b.id)),
        }
        for b in StoredBackup.objects.select_related("tenant")
    ]
    drills = [
        {
            "id": str(d.id),
            "slug": d.tenant.slug,
            "status": d.status,
            "rows": sum(d.restored.values()),
            "started": _stamp(d.started_at),
            "finished": _stamp(d.finished_at),
            "problems": d.problems[:3],
            "task": tasks.get(str(d.id)),
        }
        for d in Drill.objects.select_related("tenant")
    ]
    return {
        "backups": backups,
        "drills": drills,
        "alerts": [a.message for a in Alert.objects.all()[:20]],
        "alert_count": Alert.objects.count(),
        "tasks_failed": sum(1 for t in tasks.values() if t["status"] == "FAILED"),
        "gaps": _gaps(tasks.values()),
    }


def _gaps(tasks: Any) -> list[float]:
    """Each worker's idle time between one job's end and the next one's start, as the queue
    records them: the queue's own cost per job (closing and opening the connection, the poll,
    the claim)."""
    by_worker: dict[str, list[tuple[float, float]]] = {}
    for task in tasks:
        if task["started"] and task["finished"]:
            by_worker.setdefault(task["worker"], []).append((task["started"], task["finished"]))
    gaps = []
    for runs in by_worker.values():
        runs.sort()
        gaps += [start - end for (_, end), (start, _) in itertools.pairwise(runs)]
    return gaps


def step_scheduler(count: str, minutes: str) -> dict[str, Any]:
    """The scheduler's pass over `count` tenants that have nothing but their row: a typical
    minute, all of them due at once, all of them due after downtime, and the task backend's own
    cost of enqueueing as many jobs."""
    from django.db import transaction
    from django_tasks_db.models import DBTaskResult

    from backup.models import Schedule
    from backup.stored.alerts import detect_missed
    from backup.stored.schedules import enqueue_due, ensure_schedules, window_minutes
    from backup.stored.slots import offset_for
    from backup.stored.tasks import make_backup
    from tenants.models import AuditLog, Tenant

    n, minutes_ = int(count), int(minutes)
    Tenant.objects.bulk_create(
        [Tenant(name=f"Scheduled tenant {i}", slug=f"sched-{i:06d}") for i in range(n)],
        batch_size=5000,
    )
    started = time.perf_counter()
    made = ensure_schedules()
    figures: dict[str, Any] = {
        "tenants": n,
        "window_minutes": window_minutes(),
        "ensure_schedules": {"made": made, "seconds": time.perf_counter() - started},
    }
    by_offset: dict[dt.timedelta, list[Any]] = {}
    for tenant_id in Schedule.objects.values_list("tenant_id", flat=True):
        by_offset.setdefault(offset_for(tenant_id, window_minutes()), []).append(tenant_id)

    def reset(slot: dt.datetime, *, spread: bool) -> None:
        _reset_backups()
        AuditLog.objects.all().delete()  # only the passes' entries: these tenants have no data
        Schedule.objects.update(
            enabled=True,
            frequency="daily",
            weekday=None,
            time=dt.time(2),
            timezone="UTC",
            last_slot_at=None,
            next_slot_at=slot,
            next_run_at=slot,
        )
        if spread:
            for offset, ids in by_offset.items():
                Schedule.objects.filter(pk__in=ids).update(next_run_at=slot + offset)
        _vacuum()

    def timed_pass(at: dt.datetime) -> dict[str, Any]:
        started = time.perf_counter()
        result = enqueue_due(at)
        enqueue_seconds = time.perf_counter() - started
        started = time.perf_counter()
        missed = detect_missed(at)
        return {
            "due": result.due,
            "enqueued": len(result.enqueued),
            "late": len(result.late),
            "enqueue_due": enqueue_seconds,
            "detect_missed": time.perf_counter() - started,
            "seconds": enqueue_seconds + time.perf_counter() - started,
            "missed_alerts": missed,
        }

    def bare_enqueue(jobs: int) -> float:
        started = time.perf_counter()
        with transaction.atomic():
            for _ in range(jobs):
                make_backup.enqueue(str(uuid.uuid4()))
        seconds = time.perf_counter() - started
        DBTaskResult.objects.all().delete()
        return seconds

    # A typical minute: each tenant runs at its own offset in the window, so a pass at the
    # slot's k-th minute finds the tenants whose offset is k. A pass before the slot finds none.
    reset(SLOT, spread=True)
    figures["nothing_due"] = [timed_pass(SLOT - dt.timedelta(minutes=m)) for m in (3, 2, 1)]
    figures["minutes"] = [timed_pass(SLOT + dt.timedelta(minutes=k)) for k in range(minutes_)]
    per_minute = round(statistics.median(m["due"] for m in figures["minutes"]))
    figures["bare_minute"] = [bare_enqueue(per_minute) for _ in range(minutes_)]
    # Everything due in one pass, on time (a window of 0 minutes puts every run at the slot).
    _reset_backups()
    bare_before = bare_enqueue(n)
    reset(SLOT, spread=False)
    figures["all_due"] = timed_pass(SLOT)
    # Everything due after downtime: yesterday's slot was missed, today's is made late, and
    # each tenant gets its alert.
    reset(SLOT - dt.timedelta(days=1), spread=True)
    figures["after_downtime"] = timed_pass(SLOT + dt.timedelta(hours=2))
    _reset_backups()
    _vacuum()
    # Before and after the passes, whose mean is the baseline: this machine's speed drifts.
    figures["bare_all_runs"] = [bare_before, bare_enqueue(n)]
    figures["bare_all"] = statistics.mean(figures["bare_all_runs"])
    return figures


STEPS = {
    "seeded": step_seeded,
    "seed": step_seed,
    "night-reset": step_night_reset,
    "exports": step_exports,
    "night-report": step_night_report,
    "scheduler": step_scheduler,
}


# -- the driver --------------------------------------------------------------------------------


class Probe:
    """The driver's own connection, for polling the jobs and counting the others'."""

    def __init__(self, database: str, url: str) -> None:
        self.database = database
        if database == "postgresql":
            import psycopg

            self.conn: Any = psycopg.connect(url, autocommit=True)
        else:
            # One connection for both threads, used under `self.lock`.
            self.conn = sqlite3.connect(
                url.removeprefix("sqlite:///"), timeout=30, check_same_thread=False
            )
        self.lock = threading.Lock()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self.lock:
            cursor = self.conn.cursor()
            cursor.execute(sql)
            found = cursor.fetchall()
            if self.database == "sqlite":
                self.conn.commit()  # ends the read transaction, so the WAL can be checkpointed
            return found

    def connections(self) -> int | None:
        if self.database != "postgresql":
            return None
        return self.rows(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )[0][0]

    def active(self) -> tuple[int, int, int]:
        """(backups done, drills done, jobs still queued or running)."""
        return self.rows(
            "SELECT "
            "(SELECT count(*) FROM backup_storedbackup WHERE status IN ('succeeded', 'failed')), "
            "(SELECT count(*) FROM backup_drill WHERE status IN ('passed', 'failed')), "
            "(SELECT count(*) FROM backup_storedbackup WHERE status IN ('queued', 'running')) + "
            "(SELECT count(*) FROM backup_drill WHERE status IN ('queued', 'running')) + "
            "(SELECT count(*) FROM django_tasks_database_dbtaskresult "
            "WHERE status IN ('READY', 'RUNNING'))"
        )[0]

    def running(self) -> list[tuple[str, str, str]]:
        """(worker, tenant id as hex, kind) of every job being worked on."""
        found = self.rows(
            "SELECT worker, tenant_id, 'backup' FROM backup_storedbackup WHERE status = 'running' "
            "UNION ALL SELECT worker, tenant_id, 'drill' FROM backup_drill "
            "WHERE status = 'running'"
        )
        return [(w, uuid.UUID(str(t)).hex, k) for w, t, k in found]

    def close(self) -> None:
        self.conn.close()


def status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Sampler(threading.Thread):
    """Every half second: the connections to the database, and each worker's RSS tagged with the
    kind and size class of the job it is working on (so that memory can be read per size)."""

    def __init__(self, probe: Probe, workers: list[subprocess.Popen], slugs: dict[str, str]):
        super().__init__(daemon=True)
        self.probe, self.workers, self.slugs = probe, workers, slugs
        self.stop = threading.Event()
        self.connections: list[int] = []
        self.rss: list[tuple[int, str, float]] = []  # (pid, "backup small" etc., MB)
        self.load: list[float] = []  # the 1-minute load average, this benchmark's own included

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.load.append(float(load().split()[0]))
            try:
                count = self.probe.connections()
                running = self.probe.running()
            except sqlite3.OperationalError as exc:  # a locked SQLite file: sample again
                print(f"    (sample skipped: {exc})", flush=True)
                continue
            if count is not None:
                self.connections.append(count)
            jobs = {
                int(worker.rpartition(":")[2]): f"{kind} {size_class(self.slugs.get(t, ''))}"
                for worker, t, kind in running
                if worker
            }
            for process in self.workers:
                tag = jobs.get(process.pid, "idle")
                self.rss.append((process.pid, tag, status_kb(process.pid, "VmRSS") / 1024))


class Fleet:
    def __init__(self, args: argparse.Namespace, bench: Bench) -> None:
        self.args = args
        self.bench = bench
        self.env = {
            **bench.env,
            "BACKUP_TASK_BACKEND": "db",
            "BACKUP_DAILY_LIMIT": "100000",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        }
        self.storage = bench.work / "backups"

    def url(self, name: str) -> str:
        if self.bench.database == "postgresql":
            return PG + name
        place = (ROOT / "var" / "bench") if self.args.keep else self.bench.work
        place.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{place / name}.sqlite3"

    def exists(self, name: str) -> bool:
        if self.bench.database == "postgresql":
            found = subprocess.run(
                [
                    "psql",
                    PG + "postgres",
                    "-Atc",
                    f"SELECT 1 FROM pg_database WHERE datname='{name}'",
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            return found.stdout.strip() == "1"
        return Path(self.url(name).removeprefix("sqlite:///")).exists()

    def fresh(self, name: str) -> str:
        url = self.url(name)
        if self.bench.database == "postgresql":
            self.bench.drop(name)
            subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
        else:
            Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        self.manage(url, "migrate", "-v0")
        return url

    def drop(self, name: str) -> None:
        if self.bench.database == "postgresql":
            self.bench.drop(name)
        else:
            Path(self.url(name).removeprefix("sqlite:///")).unlink(missing_ok=True)

    def manage(self, url: str, *args: str) -> tuple[float, str]:
        """Run a management command; its seconds (the process's, start-up included) and output."""
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env={**self.env, "DATABASE_URL": url},
            check=True,
            capture_output=True,
            text=True,
        )
        return time.perf_counter() - started, done.stdout

    def step(self, url: str, name: str, *args: str) -> Any:
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--step", name, *args],
            env={**self.env, "DATABASE_URL": url},
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        return json.loads(done.stdout.strip().splitlines()[-1])

    # -- the fleet's database ----------------------------------------------------------------
    def seeded(self) -> tuple[str, str, float | None]:
        a = self.args
        name = f"tb_bench_fleet_{a.tenants}_{a.large}_{a.small_rows}_{a.large_rows}"
        plan = fleet_plan(a.tenants, a.large, a.small_rows, a.large_rows)
        if a.keep and self.exists(name):
            url = self.url(name)
            self.manage(url, "migrate", "-v0")
            if self.step(url, "seeded")["tenants"] == len(plan):
                print(f"    reusing the seeded database {name} (--keep)", flush=True)
                return name, url, None
        else:
            url = self.fresh(name)
        plan_file = self.bench.work / "plan.json"
        plan_file.write_text(json.dumps(plan))
        print(f"    seeding {len(plan):,} tenants ({a.large} large) ...", flush=True)
        seconds = self.step(url, "seed", str(plan_file))["seconds"]
        self.bench.analyze(url)
        print(f"    seeded in {seconds:.0f} s (not part of the figures)", flush=True)
        return name, url, seconds

    def export_sample(self, url: str, slugs: list[str]) -> dict[str, Any]:
        small = sorted(s for s in slugs if size_class(s) == "small")
        large = sorted(s for s in slugs if size_class(s) == "large")
        every = max(1, len(small) // max(self.args.sample, 1))
        sample = small[::every][: self.args.sample] + large[: max(1, self.args.sample // 3)]
        print(
            f"    export's own time: {len(sample)} tenants, {self.args.repeat} runs each",
            flush=True,
        )
        return self.step(url, "exports", json.dumps(sample), str(self.args.repeat))

    # -- one night -----------------------------------------------------------------------------
    def night(self, url: str, workers: int) -> dict[str, Any]:
        print(f"== one night, {workers} worker(s)", flush=True)
        shutil.rmtree(self.storage, ignore_errors=True)
        shutil.rmtree(self.bench.work / "spool", ignore_errors=True)
        slugs = self.step(url, "night-reset", SLOT.isoformat())["tenants"]
        # The command's own start-up and a pass that finds nothing: what the pass costs beyond.
        idle_seconds, _ = self.manage(
            url, "enqueue_due_backups", "--at", (SLOT - dt.timedelta(hours=1)).isoformat()
        )
        probe = Probe(self.bench.database, url)
        started = time.time()
        pass_seconds, output = self.manage(url, "enqueue_due_backups", "--at", SLOT.isoformat())
        print(f"    pass: {output.strip()} ({pass_seconds:.1f} s)", flush=True)
        processes = [self.worker(url, i) for i in range(workers)]
        sampler = Sampler(probe, processes, slugs)
        sampler.start()
        peaks: dict[int, float] = {}
        try:
            self.wait(probe, processes, len(slugs))
            peaks = {p.pid: status_kb(p.pid, "VmHWM") / 1024 for p in processes}
        finally:
            sampler.stop.set()
            sampler.join()
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=60)
            probe.close()
        report = self.step(url, "night-report")
        stored = sum(f.stat().st_size for f in self.storage.rglob("*") if f.is_file())
        return self.night_figures(
            workers=workers,
            started=started,
            pass_seconds=pass_seconds,
            idle_seconds=idle_seconds,
            report=report,
            peaks=peaks,
            sampler=sampler,
            stored=stored,
        )

    def worker(self, url: str, index: int) -> subprocess.Popen:
        log = open(self.bench.work / f"worker-{index}.log", "ab")  # noqa: SIM115 - the worker's
        return subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "db_worker",
                "--no-reload",
                "--no-startup-delay",
                "--interval",
                "0.2",
            ],
            env={**self.env, "DATABASE_URL": url},
            stdout=log,
            stderr=log,
        )

    def wait(self, probe: Probe, processes: list[subprocess.Popen], tenants: int) -> None:
        """Until no backup, drill or job is queued or running; a worker that dies, or a night
        that makes no progress for ten minutes, stops the benchmark."""
        last, changed, shown = None, time.time(), 0.0
        while True:
            time.sleep(0.5)
            for process in processes:
                if process.poll() is not None:
                    log = self.bench.work / f"worker-{processes.index(process)}.log"
                    sys.exit(
                        f"a worker stopped (exit {process.returncode}); see its log:\n"
                        f"{log.read_text()[-3000:]}"
                    )
            try:
                backups, drills, active = probe.active()
            except sqlite3.OperationalError:  # a locked SQLite file: look again
                continue
            if (backups, drills, active) != last:
                last, changed = (backups, drills, active), time.time()
            if active == 0:
                return
            if time.time() - shown >= 15:
                shown = time.time()
                print(f"    {backups:,}/{tenants:,} backups, {drills:,} drills done", flush=True)
            if time.time() - changed > 600:
                sys.exit(
                    f"no job finished for 10 minutes ({backups} backups, {drills} drills done)"
                )

    def night_figures(
        self,
        *,
        workers: int,
        started: float,
        pass_seconds: float,
        idle_seconds: float,
        report: dict[str, Any],
        peaks: dict[int, float],
        sampler: Sampler,
        stored: int,
    ) -> dict[str, Any]:
        backups, drills = report["backups"], report["drills"]
        ends = [j["finished"] for j in backups + drills if j["finished"]]
        ends += [
            j["task"]["finished"] for j in backups + drills if j["task"] and j["task"]["finished"]
        ]
        makespan = (max(ends) - started) if ends else 0.0
        rows = sum(b["rows"] for b in backups)
        failures = [
            f"backup of {b['slug']}: {b['error']}" for b in backups if b["status"] != "succeeded"
        ] + [
            f"drill of {d['slug']}: {'; '.join(d['problems'])}"
            for d in drills
            if d["status"] != "passed"
        ]
        succeeded = sum(1 for b in backups if b["status"] == "succeeded")
        if len(drills) != succeeded:
            failures.append(f"{succeeded} backups succeeded but {len(drills)} drills ran")
        by_tag: dict[str, float] = {}
        first_large: dict[int, int] = {}
        for i, (pid, tag, mb) in enumerate(sampler.rss):
            by_tag[tag] = max(by_tag.get(tag, 0.0), mb)
            if tag.endswith("large") and pid not in first_large:
                first_large[pid] = i
        before_large = max(
            (
                mb
                for i, (pid, _tag, mb) in enumerate(sampler.rss)
                if i < first_large.get(pid, 1 << 60)
            ),
            default=0.0,
        )
        drill_seconds = [
            d["finished"] - d["started"] for d in drills if d["finished"] and d["started"]
        ]
        drill_span = (
            max(d["finished"] for d in drills) - min(d["started"] for d in drills)
            if drill_seconds
            else 0.0
        )
        return {
            "workers": workers,
            "backups": len(backups),
            "drills": len(drills),
            "rows": rows,
            "makespan": makespan,
            "pass_seconds": pass_seconds,
            "idle_pass_seconds": idle_seconds,
            "backups_per_second": len(backups) / makespan if makespan else 0.0,
            "rows_per_second": rows / makespan if makespan else 0.0,
            "backup_seconds_total": sum(
                b["finished"] - b["started"] for b in backups if b["finished"] and b["started"]
            ),
            "drill_seconds_total": sum(drill_seconds),
            "drill_rows": sum(d["rows"] for d in drills),
            "drill_span": drill_span,
            "worker_peak_rss_mb": sorted(peaks.values()),
            "rss_by_job_mb": dict(sorted(by_tag.items())),
            "rss_before_first_large_mb": before_large,
            "connections_max": max(sampler.connections, default=None),
            "load_median": statistics.median(sampler.load) if sampler.load else 0.0,
            "load_max": max(sampler.load, default=0.0),
            "stored_bytes": stored,
            "stored_bytes_rows": sum(b["size"] for b in backups),
            "failures": failures,
            "alert_count": report["alert_count"],
            "tasks_failed": report["tasks_failed"],
            "queue_gap_median": statistics.median(report["gaps"]) if report["gaps"] else 0.0,
            "jobs": {b["slug"]: b for b in backups},
        }

    # -- the scheduler's pass ------------------------------------------------------------------
    def scheduler(self) -> dict[str, Any]:
        count = self.args.schedules
        print(f"== the scheduler's pass over {count:,} tenants", flush=True)
        name = f"tb_bench_fleet_sched_{count}"
        url = self.fresh(name)
        try:
            return self.step(url, "scheduler", str(count), str(self.args.minutes))
        finally:
            self.drop(name)


# -- figures -----------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def overheads(night: dict[str, Any], exports: dict[str, Any]) -> dict[str, Any]:
    """Per sampled tenant: the backup job's time (its row's started_at to finished_at) and the
    task's time (the queue's own record, which also covers what the job does before and after
    those) minus the export's own time; and the job's time minus the export's on a new
    connection (what is left once the connection's cost is set apart)."""
    job: dict[str, list[float]] = {"all": [], "small": [], "large": []}
    task: dict[str, list[float]] = {"all": [], "small": [], "large": []}
    fresh: dict[str, list[float]] = {"all": [], "small": [], "large": []}
    for slug, export in exports.items():
        backup = night["jobs"].get(slug)
        if not backup or backup["status"] != "succeeded":
            continue
        over_fresh = backup["finished"] - backup["started"] - export["fresh_seconds"]
        fresh["all"].append(over_fresh)
        fresh[size_class(slug)].append(over_fresh)
        for kind, values in (("job", job), ("task", task)):
            if kind == "job":
                seconds = backup["finished"] - backup["started"]
            elif backup["task"] and backup["task"]["finished"] and backup["task"]["started"]:
                seconds = backup["task"]["finished"] - backup["task"]["started"]
            else:
                continue
            values["all"].append(seconds - export["seconds"])
            values[size_class(slug)].append(seconds - export["seconds"])
    return {
        kind: {
            group: {
                "n": len(v),
                "median": statistics.median(v) if v else float("nan"),
                "p95": percentile(v, 0.95),
            }
            for group, v in values.items()
        }
        for kind, values in (("job", job), ("task", task), ("fresh", fresh))
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def scheduler_summary(s: dict[str, Any]) -> dict[str, Any]:
    minute = statistics.median(m["seconds"] for m in s["minutes"])
    due = statistics.median(m["due"] for m in s["minutes"])
    bare_minute = statistics.median(s["bare_minute"])
    idle = statistics.median(m["seconds"] for m in s["nothing_due"])
    return {
        "minute_seconds": minute,
        "minute_due": due,
        "minute_bare": bare_minute,
        "idle_seconds": idle,
        "all_seconds": s["all_due"]["seconds"],
        "all_due": s["all_due"]["due"],
        "downtime_seconds": s["after_downtime"]["seconds"],
        "downtime_due": s["after_downtime"]["due"],
        "bare_all": s["bare_all"],
    }


def checks(figures: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    found: list[tuple[str, str, str, bool]] = []
    for night in figures["nights"]:
        w = night["workers"]
        o = night["overhead"]["job"]["all"]
        found.append(
            (
                f"backup job overhead, median, {w} worker(s)",
                ms(o["median"]),
                "<= 50 ms",
                o["median"] <= OVERHEAD_TARGET,
            )
        )
        failed = len(night["failures"]) + night["tasks_failed"]
        found.append((f"failures, {w} worker(s)", str(failed), "= 0", failed == 0))
    if "scheduler" in figures:
        s = figures["scheduler_summary"]
        n = figures["scheduler"]["tenants"]
        for label, key in (
            (f"pass, a typical minute ({s['minute_due']:.0f} of {n:,} due)", "minute_seconds"),
            (f"pass, all {n:,} due at once", "all_seconds"),
            (f"pass, all {n:,} due after downtime (late, alerted)", "downtime_seconds"),
        ):
            found.append((label, f"{s[key]:.2f} s", "<= 2 s", s[key] <= PASS_TARGET))
    return found


def night_predictions(figures: dict[str, Any], target: int) -> list[str]:
    one = next((n for n in figures["nights"] if n["workers"] == 1), figures["nights"][0])
    tenants = one["backups"] or 1
    work = (one["backup_seconds_total"] + one["drill_seconds_total"]) / tenants
    overhead = one["overhead"]["task"]["all"]["median"]
    lines = [
        f"At this run's mix, one tenant costs a worker {work:.2f} s of jobs (its backup and its "
        f"drill, {one['backup_seconds_total'] / tenants:.2f} s + "
        f"{one['drill_seconds_total'] / tenants:.2f} s). 100,000 such tenants are "
        f"{work * target / 3600:,.0f} worker-hours a night: "
        f"{work * target / 3600 / 6:,.1f} workers busy for 6 hours, "
        f"{work * target / 3600:,.0f} for one, if the database keeps up.",
    ]
    if len(figures["nights"]) > 1:
        two = figures["nights"][-1]
        speedup = one["makespan"] / two["makespan"] if two["makespan"] else 0.0
        lines.append(
            f"How far that holds: {two['workers']} workers made the night {speedup:.2f}x as fast "
            f"as one here, on 2 cores shared with PostgreSQL, so the database's own capacity, not "
            "the workers, sets the pace of a larger fleet; measure it on the database server "
            "before adding machines."
        )
    if overhead == overhead:  # not NaN
        connection = statistics.median(
            e["fresh_seconds"] - e["seconds"] for e in figures["exports"].values()
        )
        lines.append(
            f"The backup job's overhead over the export (the queue's record, median "
            f"{ms(overhead)}) is {overhead * target / 3600:,.1f} worker-hours for 100,000 tenants, "
            f"divided by the workers. A new connection for each job would add {ms(connection)} "
            f"({connection * target / 3600:,.1f} worker-hours, and as much again for the "
            "drills): workers keep theirs (`DATABASE_CONN_MAX_AGE`)."
        )
    if one.get("connections_max") is not None:
        per = max(n["connections_max"] / n["workers"] for n in figures["nights"])
        lines.append(
            f"Connections: at most {per:.1f} per worker here (its own, and its heartbeat thread's "
            "while a job runs longer than BACKUP_JOB_HEARTBEAT_SECONDS), so 10 machines of 4 "
            f"workers hold about {per * 40:.0f}, against "
            f"PostgreSQL's max_connections ({figures.get('max_connections', '?')} here) shared "
            "with the web processes."
        )
    return lines


def predictions(figures: dict[str, Any]) -> list[str]:
    """What the measured figures predict for 100,000 tenants, derived here so that the paragraph
    follows the run."""
    target = 100_000
    lines = night_predictions(figures, target) if figures["nights"] else []
    if "scheduler_summary" in figures:
        s = figures["scheduler_summary"]
        n = figures["scheduler"]["tenants"]
        per_due = (s["all_seconds"] - s["idle_seconds"]) / max(s["all_due"], 1)
        late = (s["downtime_seconds"] - s["idle_seconds"]) / max(s["downtime_due"], 1)
        minute = s["idle_seconds"] * target / n + per_due * target / 60
        lines.append(
            f"The pass costs {ms(s['idle_seconds'])} with nothing due over {n:,} tenants and "
            f"{per_due * 1000:.2f} ms per due schedule ({late * 1000:.2f} ms when it is late and "
            f"alerted). With 100,000 tenants and a 60-minute window, ~{target // 60:,} are due "
            f"each minute: a pass of about {minute:.1f} s, assuming the part with nothing due "
            f"grows with the tenants; all 100,000 at once about {per_due * target:.0f} s "
            f"({late * target:.0f} s after downtime): a single pass, so one minute's pass may "
            "overrun the next (the next pass skips the rows it has locked)."
        )
    return lines


def table(figures: dict[str, Any]) -> list[str]:
    lines = [
        "| workers | makespan s | backups/s | rows/s | pass s (empty pass s) "
        "| job overhead median / p95 | task overhead median / p95 | queue gap median "
        "| backups s | drills s | worker peak RSS MB | connections max | stored MB | failures |",
        "|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for n in figures["nights"]:
        job, task = n["overhead"]["job"]["all"], n["overhead"]["task"]["all"]
        lines.append(
            f"| {n['workers']} | {n['makespan']:.1f} | {n['backups_per_second']:.1f} | "
            f"{n['rows_per_second']:,.0f} | "
            f"{n['pass_seconds']:.1f} ({n['idle_pass_seconds']:.1f}) | "
            f"{ms(job['median'])} / {ms(job['p95'])} | {ms(task['median'])} / {ms(task['p95'])} | "
            f"{ms(n['queue_gap_median'])} | {n['backup_seconds_total']:.1f} | "
            f"{n['drill_seconds_total']:.1f} | "
            f"{', '.join(f'{v:.0f}' for v in n['worker_peak_rss_mb'])} | "
            f"{n['connections_max'] if n['connections_max'] is not None else 'n/a'} | "
            f"{n['stored_bytes'] / 1e6:,.1f} | {len(n['failures']) + n['tasks_failed']} |"
        )
    return lines


def markdown(figures: dict[str, Any]) -> str:
    a = figures["args"]
    lines = [
        f"# Automatic backups over a fleet, {a['database']}, {a['tenants']:,} tenants, "
        f"{figures['started']}",
        "",
        f"Command: `{figures['command']}`, at commit {figures['commit']}. "
        f"Machine: {figures['machine']}. "
        f"Load average before the run: {figures['load_before']}; after: {figures['load_after']}."
        + (f" {figures['note']}" if figures.get("note") else ""),
        "",
    ]
    if figures["nights"]:
        lines += night_sections(figures)
    if "scheduler" in figures:
        lines += scheduler_section(figures)
    lines += ["## Targets", "", "| target | measured | wanted | met |", "|---|---:|---|---|"]
    for name, value, wanted, met in figures["checks"]:
        lines.append(
            f"| {name} | {value} | {wanted} | {'' if met is None else 'yes' if met else 'NO'} |"
        )
    lines += ["", "## What it predicts for 100,000 tenants and several machines", ""]
    lines += [" ".join(predictions(figures)), ""]
    return "\n".join(lines)


def night_sections(figures: dict[str, Any]) -> list[str]:
    a = figures["args"]
    lines = [
        f"The fleet: {a['tenants']:,} tenants, {a['tenants'] - a['large']:,} of "
        f"{a['small_rows'] // 2:,}-{a['small_rows'] * 3 // 2:,} rows and {a['large']} of about "
        f"{a['large_rows']:,}, {figures['nights'][0]['rows']:,} rows backed up in all (seeded in "
        + (f"{figures['seed_seconds']:.0f} s" if figures.get("seed_seconds") else "an earlier run")
        + ", not part of the figures). Each night: every schedule pinned to one slot, "
        "`enqueue_due_backups --at SLOT` as a process, then the workers (`db_worker`) until every "
        "backup and its restore drill was done; before each night the backups, drills, alerts, "
        "jobs and stored files of the previous one were deleted"
        + (" and the database vacuumed." if a["database"] == "postgresql" else "."),
        "",
        "## One night",
        "",
        *table(figures),
        "",
        "- makespan: from the pass's start to the last job's end; backups/s and rows/s over it.",
        "- pass: `enqueue_due_backups --at SLOT` as a process (Python's and Django's start-up "
        "included); the empty pass: the same command at a moment with nothing due.",
        "- job overhead: a backup job's time (its row's `started_at` to `finished_at`) minus the "
        f"export's own time for that tenant: `export_tenant` through zstd into a null sink in "
        f"another process, median of {a['repeat']} runs, for {figures['export_sample']} tenants "
        "(small and large) before the nights. Task overhead: the same from the task queue's own "
        "record of the job, which also covers the sweep before it and the drill's request, the "
        "audit entry and the e-mail check after it.",
        "- queue gap: a worker's idle time between one job's end and the next one's start, as "
        "the task queue records them (the queue's own cost per job: the poll and the claim).",
        "- backups s, drills s: the jobs' times added up (per worker, they run one at a time).",
        "",
        "| workers | overhead median small / large | drills: rows, span s | RSS by job (MB, max "
        "sampled) | RSS before any large tenant MB | load average (1 min) median / max |",
        "|---:|---|---|---|---:|---|",
    ]
    for n in figures["nights"]:
        job = n["overhead"]["job"]
        lines.append(
            f"| {n['workers']} | {ms(job['small']['median'])} / {ms(job['large']['median'])} | "
            f"{n['drill_rows']:,}, {n['drill_span']:.1f} | "
            + ", ".join(f"{tag} {mb:.0f}" for tag, mb in n["rss_by_job_mb"].items())
            + f" | {n['rss_before_first_large_mb']:.0f} | "
            f"{n['load_median']:.1f} / {n['load_max']:.1f} |"
        )
    exports = figures["exports"]
    lines += [
        "",
        "Export's own time (the baseline): "
        + "; ".join(
            f"{group} {len(v)} tenants, median {statistics.median(v) * 1000:.0f} ms"
            for group in ("small", "large")
            if (v := [e["seconds"] for s, e in exports.items() if size_class(s) == group])
        )
        + ". The same exports each on a new connection (what each job would pay again with "
        "`DATABASE_CONN_MAX_AGE=0`, workers then opening one per job): "
        + "; ".join(
            f"{group} {statistics.median(v) * 1000:+.0f} ms"
            for group in ("small", "large")
            if (
                v := [
                    e["fresh_seconds"] - e["seconds"]
                    for s, e in exports.items()
                    if size_class(s) == group
                ]
            )
        )
        + " (median); a job's overhead over the export on a new connection, median: "
        + ", ".join(
            f"{ms(n['overhead']['fresh']['all']['median'])} ({n['workers']} worker(s))"
            for n in figures["nights"]
        )
        + ".",
        "",
    ]
    for n in figures["nights"]:
        if n["failures"]:
            lines += [
                f"Failures with {n['workers']} worker(s): " + "; ".join(n["failures"][:5]),
                "",
            ]
    return lines


def scheduler_section(figures: dict[str, Any]) -> list[str]:
    s, raw = figures["scheduler_summary"], figures["scheduler"]
    bare_ratio = s["all_seconds"] / s["bare_all"] if s["bare_all"] else 0.0
    return [
        f"## The scheduler's pass over {raw['tenants']:,} tenants",
        "",
        "`enqueue_due` and `detect_missed` timed in one process (what `enqueue_due_backups` "
        "does each minute); tenants with no data, schedules made by `ensure_schedules` "
        f"({raw['ensure_schedules']['seconds']:.2f} s for "
        f"{raw['ensure_schedules']['made']:,}). "
        "The baseline: django-tasks-db's own `enqueue`, one call per job, of as many "
        "`make_backup` jobs in one transaction, nothing else; the pass writes its backups, jobs, "
        "audit entries and alerts a table at a time (`backup.db.bulk_rows`).",
        "",
        "| pass | due | seconds | of which enqueue_due | bare enqueue s | pass / bare |",
        "|---|---:|---:|---:|---:|---:|",
        f"| nothing due (median of {len(raw['nothing_due'])}) | 0 | {s['idle_seconds']:.3f} | "
        f"{statistics.median(m['enqueue_due'] for m in raw['nothing_due']):.3f} | | |",
        f"| a typical minute, 60-minute window (median of {len(raw['minutes'])}) | "
        f"{s['minute_due']:.0f} | {s['minute_seconds']:.3f} | "
        f"{statistics.median(m['enqueue_due'] for m in raw['minutes']):.3f} | "
        f"{s['minute_bare']:.3f} | {s['minute_seconds'] / s['minute_bare']:.1f} |",
        f"| all due at once, on time | {s['all_due']:,} | {s['all_seconds']:.2f} | "
        f"{raw['all_due']['enqueue_due']:.2f} | {s['bare_all']:.2f} | {bare_ratio:.1f} |",
        f"| all due after downtime (each late, alerted) | {s['downtime_due']:,} | "
        f"{s['downtime_seconds']:.2f} | {raw['after_downtime']['enqueue_due']:.2f} | "
        f"{s['bare_all']:.2f} | {s['downtime_seconds'] / s['bare_all']:.1f} |",
        "",
        "Bare enqueue of all: "
        + " and ".join(f"{b:.2f} s" for b in raw["bare_all_runs"])
        + " (before and after the passes; the table shows their mean). Minutes: "
        + ", ".join(f"{m['due']} due {m['seconds']:.3f} s" for m in raw["minutes"])
        + ".",
        "",
    ]


def commit() -> str:
    """The code measured: HEAD, and the service files changed beside it, if any."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--", "backup", "tenants", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    changed = [line[3:] for line in changed if line.strip()]
    return head + (f" (with uncommitted changes to {', '.join(changed)})" if changed else "")


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--step":
        _django()
        print(json.dumps(STEPS[sys.argv[2]](*sys.argv[3:])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument(
        "--large",
        type=int,
        default=None,
        help="tenants of about --large-rows (default: 3%% of the tenants, at least 1: 30 of "
        "1,000, which with the small ones makes about 5 million rows)",
    )
    parser.add_argument("--small-rows", type=int, default=2100, help="a small tenant's mean rows")
    parser.add_argument("--large-rows", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2", help="the nights to run, e.g. 1,2")
    parser.add_argument("--sample", type=int, default=30, help="small tenants' exports timed")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each sampled export")
    parser.add_argument(
        "--schedules", type=int, default=10_000, help="tenants of the scheduler's pass (0: skip it)"
    )
    parser.add_argument("--minutes", type=int, default=10, help="typical minutes timed")
    parser.add_argument("--keep", action="store_true", help="keep the seeded database and reuse it")
    parser.add_argument("--note", default="", help="a sentence for the results file")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if args.large is None:
        args.large = max(1, round(args.tenants * 0.03))
    if not 0 < args.large <= args.tenants:
        parser.error(f"--large {args.large}: must be from 1 to --tenants ({args.tenants})")
    workers = [int(w) for w in re.split(r"[, ]+", args.workers.strip()) if w]
    import platform

    figures: dict[str, Any] = {
        "args": vars(args) | {"results": str(args.results)},
        "command": " ".join(["bench/fleet.py", *sys.argv[1:]]),
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}",
        "load_before": load(),
        "commit": commit(),
        "note": args.note,
        "nights": [],
    }
    print(
        f"== {args.database}, {args.tenants:,} tenants ({args.large} large); load {load()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="tb-bench-fleet-") as tmp:
        bench = Bench(args.database, Path(tmp), args.repeat)
        fleet = Fleet(args, bench)
        name, url, figures["seed_seconds"] = fleet.seeded()
        try:
            if args.database == "postgresql":
                figures["max_connections"] = int(
                    Probe(args.database, url).rows("SHOW max_connections")[0][0]
                )
            plan = fleet_plan(args.tenants, args.large, args.small_rows, args.large_rows)
            slugs = [slug for slug, _ in plan]
            figures["exports"] = fleet.export_sample(url, slugs)
            figures["export_sample"] = len(figures["exports"])
            for w in workers:
                night = fleet.night(url, w)
                night["overhead"] = overheads(night, figures["exports"])
                figures["nights"].append(night)
        finally:
            if not args.keep:
                fleet.drop(name)
        if args.schedules:
            figures["scheduler"] = fleet.scheduler()
            figures["scheduler_summary"] = scheduler_summary(figures["scheduler"])
    figures["load_after"] = load()
    figures["checks"] = checks(figures)
    text = markdown(figures)
    print()
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    stem = f"fleet-{args.database}-{args.tenants}"
    for night in figures["nights"]:
        # Per tenant, a megabyte of JSON that the tables sum up: only the sampled tenants' jobs.
        jobs = night.pop("jobs")
        night["sampled_jobs"] = {slug: jobs.get(slug) for slug in figures["exports"]}
    (args.results / f"{stem}.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    (args.results / f"{stem}.md").write_text(text)
    print(f"Written to {args.results / stem}.json and .md")
    failed = [f"{n['workers']} worker(s): {f}" for n in figures["nights"] for f in n["failures"]]
    failed += [
        f"{n['tasks_failed']} task(s) failed" for n in figures["nights"] if n["tasks_failed"]
    ]
    if failed:
        # A speed short of its target is a figure; a backup or drill that failed is a failure.
        sys.exit("Failures: " + "; ".join(failed[:10]))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
