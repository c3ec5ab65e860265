"""Stored backups: asked for by the page, the API, a command or a schedule, made by a worker.

A request only creates the row (status "queued") and enqueues the job; the worker claims it,
exports the tenant through zstd into a spool file while a lease thread reports progress, and
hands the finished file to the `backups` storage. Only then is the backup "succeeded"; a backup
that fails, or whose worker dies, leaves no file behind.
"""

import dataclasses
import datetime as dt
import logging
import uuid
from typing import Any, BinaryIO

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from backup.audit import record
from backup.errors import BackupError, BackupNotFound, DailyLimitReached, JobActive, NotRestorable
from backup.export import ExportOptions, expected_rows, export_tenant
from backup.format.document import FORMAT_VERSION
from backup.format.streams import compressed, sealed
from backup.models import BY_HAND, Schedule, StoredBackup, Trigger
from backup.stored import alerts, drills, emails, keys, retention, storage
from backup.stored.leases import Lease, find_dead
from backup.stored.schedules import schedule_of
from tenants.models import Tenant

log = logging.getLogger(__name__)
Status = StoredBackup.Status


def daily_limit() -> int:
    return int(settings.BACKUP_DAILY_LIMIT)


def refuse_over_daily_limit(tenant: Tenant, now: dt.datetime | None = None) -> None:
    """Backups made by hand (page, API, command) count against `BACKUP_DAILY_LIMIT` over the
    last 24 hours; scheduled ones and those made before a restore do not."""
    limit = daily_limit()
    now = now or timezone.now()
    window = now - dt.timedelta(days=1)
    recent = StoredBackup.objects.filter(
        tenant=tenant, trigger__in=BY_HAND, created_at__gt=window
    ).order_by("created_at")
    made = recent.count()
    if made < limit:
        return
    # The oldest backup inside the window leaving it frees the next slot.
    frees_at = recent.values_list("created_at", flat=True)[made - limit] + dt.timedelta(days=1)
    wait = max(1, int((frees_at - now).total_seconds()) + 1)
    raise DailyLimitReached(
        f"Tenant '{tenant.slug}' made {made} backups in the last 24 hours, the most allowed "
        f"(BACKUP_DAILY_LIMIT = {limit}); the next one can be made from "
        f"{frees_at:%Y-%m-%d %H:%M} UTC, in {_duration(wait)}.",
        retry_after=wait,
    )


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes = -(-rest // 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def request_backup(
    tenant: Tenant,
    *,
    user: Any,
    trigger: str,
    options: ExportOptions | None = None,
) -> StoredBackup:
    """Create the backup's row and enqueue the job that makes it; answers at once."""
    options = options or ExportOptions()
    if trigger in BY_HAND:
        refuse_over_daily_limit(tenant)
    backup = _new_backup(tenant, user=user, trigger=trigger, options=options)
    record(
        tenant,
        "backup.stored.created",
        actor=user,
        details={"backup": str(backup.id), "trigger": trigger, "options": backup.options},
    )
    from backup.stored.tasks import hand_over, make_backup  # the task module imports this one

    hand_over(make_backup, StoredBackup, [backup.id])
    return backup


def _new_backup(tenant: Tenant, *, user: Any, trigger: str, options: ExportOptions) -> StoredBackup:
    backup = StoredBackup(
        tenant=tenant,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        trigger=trigger,
        options=dataclasses.asdict(options),
        format_version=str(FORMAT_VERSION),
    )
    backup.storage_name = storage.storage_name(
        tenant.pk, backup.id, encrypted=keys.encrypting_at_rest(), archive=options.include_files
    )
    backup.save()
    return backup


def run_backup(backup_id: Any) -> StoredBackup | None:
    """The worker's side: make the queued backup. Returns None when there is nothing to do (it
    was deleted, or another worker has it)."""
    sweep()
    lease = Lease(StoredBackup, backup_id)
    if not lease.claim(Status.QUEUED, becomes=Status.RUNNING):
        return None
    _abort_stale_uploads()
    backup = StoredBackup.objects.select_related("tenant", "created_by").get(pk=backup_id)
    try:
        write_backup(backup, lease)
    except Exception as exc:
        if not isinstance(exc, BackupError):
            log.exception("backup %s failed", backup_id)
        fail(backup, _message(exc))
        return backup
    schedule = schedule_of(backup.tenant)
    drilled = backup.trigger == Trigger.SCHEDULE and schedule.drill
    # One commit: the backup finished, its audit entry and its drill's request stand or fall
    # together.
    with transaction.atomic():
        finished(backup, schedule)
        if drilled:
            drills.request_drill(backup)  # the drill prunes once it has run
    emails.backup_finished(backup)
    if backup.trigger == Trigger.SCHEDULE and not drilled:
        alerts.backup_passed(backup)
        retention.prune_quietly(backup.tenant)
    return backup


def write_backup(backup: StoredBackup, lease: Lease) -> None:
    """Export the backup's tenant through zstd (and age, for a backup encrypted at rest) into
    the storage; fills in the backup's fields (not saved). The storage gets the file only once
    it is complete. A backup with files is an archive, which compresses the document itself."""
    options = ExportOptions(**backup.options)
    encryption = keys.encryption_for(backup)
    lease.count_total_later(lambda: expected_rows(backup.tenant, options))
    lease.start()
    try:
        with storage.spooled(backup.id) as (hashing, spool):
            level = settings.BACKUP_ZSTD_LEVEL
            with (
                sealed(hashing, encryption) as raw,  # type: ignore[arg-type]
                compressed(raw, None if options.include_files else "zstd", level=level) as out,
            ):
                result = export_tenant(
                    backup.tenant,
                    out,
                    options=options,
                    actor=backup.created_by,
                    rows_written=lease.add,
                    encryption=encryption,
                )
            saved = storage.save(backup.storage_name, spool)
    finally:
        lease.stop()
    backup.storage_name = saved
    backup.rows = result.statistics
    backup.total_rows = result.total_rows
    backup.size = hashing.size
    backup.sha256 = hashing.digest.hexdigest()
    backup.progress_done = backup.progress_total = result.total_rows


def finished(backup: StoredBackup, schedule: Schedule | None = None) -> None:
    """Save the backup as succeeded, audited; the caller sends its email."""
    backup.status = Status.SUCCEEDED
    backup.finished_at = timezone.now()
    backup.expires_at = retention.expiry(backup, schedule or schedule_of(backup.tenant))
    backup.progress_table = ""
    backup.save()
    record(
        backup.tenant,
        "backup.stored.finished",
        actor=backup.created_by,
        details={
            "backup": str(backup.id),
            "rows": backup.total_rows,
            "size": backup.size,
            "sha256": backup.sha256,
            "seconds": backup.seconds,
        },
    )


def fail(backup: StoredBackup, message: str) -> None:
    """Mark the backup failed and make sure no file of it is left in storage."""
    try:
        storage.sweep_partial(backup.id, backup.storage_name)
    except BackupError as exc:
        message += f" (Its partial file could not be removed yet: {exc.message})"
    StoredBackup.objects.filter(pk=backup.pk).update(
        status=Status.FAILED, error=message, finished_at=timezone.now(), size=None, sha256=""
    )
    backup.refresh_from_db()
    record(
        backup.tenant,
        "backup.stored.failed",
        actor=backup.created_by,
        details={"backup": str(backup.id), "error": message},
    )
    emails.backup_finished(backup)
    alerts.backup_failed(backup)


def _message(exc: Exception) -> str:
    if isinstance(exc, BackupError):
        return exc.message
    return f"The backup failed: {type(exc).__name__}: {exc}"


def _abort_stale_uploads() -> None:
    """What dead jobs left on S3 when it could not be removed then (S3 was down)."""
    running = StoredBackup.objects.filter(status=Status.RUNNING).values_list(
        "storage_name", flat=True
    )
    try:
        storage.abort_stale_uploads(running)
    except BackupError as exc:
        log.warning("%s", exc.message)


def sweep(**where: Any) -> int:
    """Fail the backups whose worker died; returns how many."""
    dead = find_dead(StoredBackup, **where)
    for backup, reason in dead:
        fail(backup, f"The backup was stopped: {reason}. No file was kept; make it again.")  # type: ignore[arg-type]
    return len(dead)


def backups_of(tenant: Tenant) -> QuerySet[StoredBackup]:
    """The tenant's stored backups, newest first, with their drills (dead jobs failed first)."""
    sweep(tenant=tenant)
    drills.sweep(tenant=tenant)
    return (
        StoredBackup.objects.filter(tenant=tenant)
        .select_related("created_by")
        .prefetch_related("drills")
    )


def get_backup(tenant: Tenant, backup_id: Any) -> StoredBackup:
    """One of the tenant's backups; another tenant's, or an id that is not one, is not found."""
    backup = None
    if is_uuid(backup_id):
        backup = backups_of(tenant).filter(pk=backup_id).first()
    if backup is not None:
        return backup
    raise BackupNotFound(f"Tenant '{tenant.slug}' has no stored backup with id {backup_id!s}.")


def delete_backup(backup: StoredBackup, *, user: Any) -> None:
    """Delete the backup's file, then its row. A queued or running backup cannot be deleted."""
    if backup.active:
        raise JobActive(
            f"Backup {backup.id} is {backup.status}: wait until it has finished, then delete it."
        )
    storage.delete(backup.storage_name if backup.status == Status.SUCCEEDED else "")
    record(
        backup.tenant,
        "backup.stored.deleted",
        actor=user,
        details={"backup": str(backup.id), "size": backup.size, "sha256": backup.sha256},
    )
    backup.delete()


def set_keep(backup: StoredBackup, keep: bool, *, user: Any) -> StoredBackup:
    """Mark the backup to be kept whatever the retention rules say, or release it to them."""
    if backup.keep != keep:
        backup.keep = keep
        backup.expires_at = retention.expiry(backup, schedule_of(backup.tenant))
        backup.save(update_fields=["keep", "expires_at"])
        record(
            backup.tenant,
            "backup.stored.kept" if keep else "backup.stored.released",
            actor=user,
            details={"backup": str(backup.id)},
        )
    return backup


def open_for_operator(backup: StoredBackup, user: Any = None) -> BinaryIO:
    """The backup's file as stored, for an operator on the server (the `backup_download`
    command: the shell is its credential, so no link); the download is audited all the same."""
    if backup.status != Status.SUCCEEDED:
        raise NotRestorable(f"Backup {backup.id} is {backup.status}: it has no file to download.")
    handle = storage.open_stored(backup.storage_name)
    record(
        backup.tenant,
        "backup.stored.downloaded",
        actor=user,
        details={
            "backup": str(backup.id),
            "size": backup.size,
            "sha256": backup.sha256,
            "by": "command",
        },
    )
    return handle


def make_backup_now(
    tenant: Tenant, *, user: Any, trigger: str, options: ExportOptions | None = None
) -> StoredBackup:
    """Make a stored backup in this process (a restore's undo backup, made by the worker that
    runs the restore); raises the error when it fails."""
    backup = _new_backup(tenant, user=user, trigger=trigger, options=options or ExportOptions())
    record(
        tenant,
        "backup.stored.created",
        actor=user,
        details={"backup": str(backup.id), "trigger": trigger, "options": backup.options},
    )
    lease = Lease(StoredBackup, backup.id)
    lease.claim(becomes=Status.RUNNING)
    backup.refresh_from_db()
    try:
        write_backup(backup, lease)
    except Exception as exc:
        fail(backup, _message(exc))
        raise
    finished(backup)
    emails.backup_finished(backup)
    return backup


def make_undo_backup(tenant: Tenant, *, user: Any) -> StoredBackup:
    """The backup of the tenant's current data stored before a merge or a replace is applied,
    so that restoring it undoes the import. Soft-deleted rows too: a replace deletes them."""
    return make_backup_now(
        tenant,
        user=user,
        trigger=Trigger.BEFORE_RESTORE,
        options=ExportOptions(include_deleted=True),
    )


def is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
