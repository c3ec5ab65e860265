"""The jobs a worker runs, on Django's tasks framework: whichever backend `TASKS` names
(django-tasks-db by default, RQ for fleets) runs the same functions. Each takes the id of its
row, which holds everything else; the row, not the task backend's record, is what the page and
the API show."""

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.tasks import Task, task
from django.tasks.signals import task_enqueued
from django.utils import timezone
from django_tasks_db import DatabaseBackend
from django_tasks_db.models import DBTaskResult, get_date_max

from backup.db.bulk_rows import insert_rows
from backup.models import Drill, Job, StoredBackup
from backup.stored import backups, drills, restores


@task
def make_backup(backup_id: str) -> str:
    backup = backups.run_backup(backup_id)
    return backup.status if backup else "skipped"


@task
def preview_restore(restore_id: str) -> str:
    restore = restores.run_preview(restore_id)
    return restore.status if restore else "skipped"


@task
def import_restore(restore_id: str) -> str:
    restore = restores.run_import(restore_id)
    return restore.status if restore else "skipped"


@task
def drill_backup(drill_id: str) -> str:
    drill = drills.run_drill(drill_id)
    return drill.status if drill else "skipped"


def hand_over(job: Task, model: type[Job], ids: Iterable[Any], *, stamped: bool = False) -> None:
    """Enqueue one job per row once the caller's transaction commits, and stamp the rows'
    `enqueued_at` once the task backend has them. A queue kept in this same database
    (django-tasks-db) gets them inside the transaction instead (`enqueued_with_rows`): jobs
    and rows then commit together, and rows written with their stamp already (`stamped`) are
    not stamped again. Elsewhere (RQ) a process killed in between leaves rows without the
    stamp, which the scheduler's next pass hands over again (`requeue_lost`)."""
    ids = [str(i) for i in ids]
    if not ids:
        return

    def enqueue() -> None:
        enqueue_all(job, ids)
        if not stamped:
            model.objects.filter(pk__in=ids).update(enqueued_at=timezone.now())

    if enqueued_with_rows(job):
        enqueue()
    else:
        assert not stamped, "rows are stamped only when their jobs commit with them"
        # robust: a task backend that refuses (Redis away) is logged, not raised into the
        # request or the pass that already committed its rows; `requeue_lost` retries.
        transaction.on_commit(enqueue, robust=True)


def enqueued_with_rows(job: Task) -> bool:
    """Whether jobs handed over now commit (or roll back) with the rows written in the
    caller's transaction: their queue is kept in this same database."""
    return (
        isinstance(job.get_backend(), DatabaseBackend)
        and transaction.get_connection().in_atomic_block
    )


def enqueue_all(job: Task, args: list[str]) -> None:
    """Enqueue `job` once for each of `args`. django-tasks-db's own `enqueue` writes one row per
    call, which bounded a scheduler's pass over a whole fleet due at once; its rows are written
    here all together (`insert_rows`), with the fields its `enqueue` gives them (its pre-save
    rule for `run_after` included), and the same signal sent for each. Other backends get one
    `enqueue` per job."""
    backend = job.get_backend()
    if not isinstance(backend, DatabaseBackend) or len(args) < 2:
        for arg in args:
            job.enqueue(arg)
        return
    backend.validate_task(job)
    now = timezone.now()
    common = {
        "enqueued_at": now,
        "priority": job.priority,
        "task_path": job.module_path,
        "queue_name": job.queue_name,
        "run_after": job.run_after or get_date_max(),
        "backend_name": backend.alias,
    }
    rows = [
        {"id": uuid.uuid4(), "args_kwargs": {"args": [arg], "kwargs": {}}, **common} for arg in args
    ]
    insert_rows(DBTaskResult, rows)
    if task_enqueued.has_listeners(type(backend)):
        # The rows as the queue reads them back, for the signal's results.
        fields = DBTaskResult._meta.concrete_fields
        names = [f.attname for f in fields]
        for row in rows:
            values = [row[f.attname] if f.attname in row else f.get_default() for f in fields]
            result = DBTaskResult.from_db(None, names, values).task_result
            task_enqueued.send(type(backend), task_result=result)


def requeue_lost(older_than: dt.timedelta = dt.timedelta(minutes=1)) -> int:
    """Hand over again the queued backups and drills whose hand-over never completed; a job
    enqueued twice runs once (its lease). Returns how many."""
    cutoff = timezone.now() - older_than
    count = 0
    for job, model in ((make_backup, StoredBackup), (drill_backup, Drill)):
        lost = model.objects.filter(
            status="queued", worker="", enqueued_at__isnull=True, created_at__lt=cutoff
        ).values_list("pk", flat=True)
        ids = list(lost)
        hand_over(job, model, ids)
        count += len(ids)
    return count
