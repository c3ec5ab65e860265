"""The jobs a worker runs, on Django's tasks framework: whichever backend `TASKS` names
(django-tasks-db by default, RQ for fleets) runs the same functions. Each takes the id of its
row, which holds everything else; the row, not the task backend's record, is what the page and
the API show."""

from collections.abc import Iterable

from django.db import transaction
from django.tasks import Task, task
from django_tasks_db import DatabaseBackend

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


def enqueue_all(job: Task, ids: Iterable[str]) -> None:
    """Enqueue one job per id once the caller's transaction commits. A queue kept in this same
    database (django-tasks-db) gets them inside the transaction instead: the jobs then commit
    with the rows they work on, so a process killed in between loses neither."""
    ids = list(ids)
    if (
        isinstance(job.get_backend(), DatabaseBackend)
        and transaction.get_connection().in_atomic_block
    ):
        for i in ids:
            job.enqueue(i)
        return
    transaction.on_commit(lambda: [job.enqueue(i) for i in ids])
