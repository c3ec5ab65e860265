"""Telling a live worker from a dead one.

A job being worked on carries its worker ("host:pid") and a heartbeat. While the job runs, a
thread of the worker, with a database connection of its own, writes the heartbeat and the
progress every `BACKUP_JOB_HEARTBEAT_SECONDS` (so that neither waits for the job's own
transaction). A job is dead when its worker's process is gone (known at once on the worker's own
machine) or, from any other machine, when its heartbeat is older than
`BACKUP_JOB_LEASE_SECONDS`. `sweep` marks dead jobs failed and removes what they left; it runs
before every job, and whenever jobs are listed. SQLite lets no other connection write while an
import holds its write lock, so there the heartbeat pauses during an import's writes: keep the
lease well above the longest import, or rely on the same-machine check (SQLite is one machine).
"""

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from backup.models import Job

log = logging.getLogger(__name__)
HOST = socket.gethostname()


def worker_id() -> str:
    return f"{HOST}:{os.getpid()}"


def heartbeat_seconds() -> float:
    return float(settings.BACKUP_JOB_HEARTBEAT_SECONDS)


def lease_seconds() -> float:
    return float(settings.BACKUP_JOB_LEASE_SECONDS)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) has stopped working all the same.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def dead_reason(job: Job, now: dt.datetime | None = None) -> str:
    """Why the job's worker is dead, or "" while it may be alive."""
    if not job.worker:
        return ""
    host, _, pid = job.worker.rpartition(":")
    if host == HOST and pid.isdigit():
        if not _process_alive(int(pid)):
            return f"its worker (process {pid} on {host}) stopped"
        return ""
    now = now or timezone.now()
    beat = job.heartbeat_at or job.started_at
    if beat is not None and (now - beat).total_seconds() > lease_seconds():
        return (
            f"its worker ({job.worker}) sent no heartbeat for more than "
            f"{lease_seconds():.0f} s (BACKUP_JOB_LEASE_SECONDS)"
        )
    return ""


class Lease:
    """Holds a job for this worker: claims it, then beats and reports progress from a thread
    until the job ends."""

    def __init__(self, model: type[Job], job_id: Any) -> None:
        self.model = model
        self.job_id = job_id
        self.worker = worker_id()
        self.done = 0
        self.total: int | None = None
        self.table = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._count_total: Callable[[], int] | None = None

    def claim(self, status: str | None = None, *, becomes: str | None = None) -> bool:
        """Take the job if it is still in `status` (any, when None) and no live worker has it,
        moving it to `becomes` in the same statement."""
        now = timezone.now()
        where = {} if status is None else {"status": status}
        values = {} if becomes is None else {"status": becomes}
        taken = self.model.objects.filter(pk=self.job_id, worker="", **where).update(
            worker=self.worker, heartbeat_at=now, started_at=now, finished_at=None, **values
        )
        return bool(taken)

    def progress(self, table: str, done: int, total: int | None = None) -> None:
        self.table, self.done = table, done
        if total is not None:
            self.total = total

    def count_total_later(self, count: Callable[[], int]) -> None:
        """Have the heartbeat thread count the job's total at its first beat: a job over by
        then (most of a fleet's backups) never pays for counting what nobody watched."""
        self._count_total = count

    def add(self, table: str, rows: int) -> None:
        """A callback for the engines, which report rows per table as they go."""
        self.table = table
        self.done += rows

    def start(self) -> "Lease":
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.job_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def fields(self) -> dict[str, Any]:
        values: dict[str, Any] = {"progress_done": self.done, "progress_table": self.table[:100]}
        if self.total is not None:
            values["progress_total"] = self.total
        return values

    def _beat(self) -> None:
        try:
            while not self._stop.wait(heartbeat_seconds()):
                try:
                    if self.total is None and self._count_total is not None:
                        self.total = self._count_total()
                    self.model.objects.filter(pk=self.job_id, worker=self.worker).update(
                        heartbeat_at=timezone.now(), **self.fields()
                    )
                except DatabaseError as exc:  # a locked SQLite database: beat again later
                    log.debug("heartbeat of %s skipped: %s", self.job_id, exc)
        finally:
            connection.close()


def find_dead(model: type[Job], **where: Any) -> list[tuple[Job, str]]:
    """The jobs (matching `where`) being worked on by a dead worker, each with why it is dead."""
    running = model.objects.exclude(worker="").filter(finished_at__isnull=True, **where)
    dead = []
    now = timezone.now()
    for job in running:
        reason = dead_reason(job, now)
        if reason:
            dead.append((job, reason))
    return dead
