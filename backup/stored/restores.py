"""Restores as jobs: a stored backup or an upload, previewed by a worker, imported once confirmed.

    request_restore --enqueue--> run_preview: status "previewing" -> "awaiting_confirmation"
        (the preview's counts and notices in `preview`), or "failed" with every problem
    confirm_restore (a replace needs the tenant's name typed) --enqueue--> run_import:
        "importing" -> a backup of the current data first (the undo, unless asked not to)
        -> the import in one transaction -> "succeeded" with `report`, or "failed"

The import validates everything again itself: a confirmation only says "go", it trusts nothing
the preview found. A worker that dies mid-import leaves the tenant untouched (the transaction
never commits), and the sweep marks the restore failed.
"""

import dataclasses
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files import File
from django.db.models import QuerySet
from django.utils import timezone

from backup import uploads
from backup.access import refuse_lost_privileges
from backup.audit import record
from backup.errors import (
    BackupError,
    BackupNotFound,
    ConfirmationRequired,
    JobActive,
    NotRestorable,
    ValidationFailed,
)
from backup.models import Restore, StoredBackup, Trigger
from backup.restore import ImportOptions, ImportReport, Mode, import_backup, preview_import
from backup.stored import emails, keys, storage
from backup.stored.backups import delete_backup, is_uuid, make_undo_backup
from backup.stored.leases import Lease, find_dead
from tenants.models import Tenant

log = logging.getLogger(__name__)
Status = Restore.Status
UNDO_NOTICE = (
    "Before the import, a backup of the tenant's current data ({rows:,} rows) is stored, so "
    "that this restore can be undone by restoring that backup; it costs one export."
)


def request_restore(
    tenant: Tenant,
    *,
    user: Any,
    trigger: str,
    options: ImportOptions,
    backup: StoredBackup | None = None,
    upload: File | None = None,
    undo: bool = True,
) -> Restore:
    """Create the restore of `backup` (or of `upload`) and enqueue its preview.

    `tenant` is the tenant restored into, or, for a new tenant, the one whose page asked (a
    tenant's admin restores only that tenant's backups as a new tenant)."""
    if (backup is None) == (upload is None):
        raise ValueError("a restore needs either a stored backup or an upload")
    if backup is not None and backup.tenant_id != tenant.pk:
        # Callers look backups up through the tenant; a service that trusted them would let one
        # tenant restore another's backup.
        raise BackupNotFound(f"Tenant '{tenant.slug}' has no stored backup with id {backup.id}.")
    if backup is not None and backup.status != StoredBackup.Status.SUCCEEDED:
        raise NotRestorable(
            f"Backup {backup.id} is {backup.status}: only a backup that succeeded can be restored."
        )
    refuse_lost_privileges(user, create_missing_master_data=options.create_missing_master_data)
    if options.mode == Mode.NEW_TENANT and trigger != Trigger.COMMAND:
        options = dataclasses.replace(options, source_tenant_id=str(tenant.pk))
    restore = Restore(
        tenant=tenant,
        backup=backup,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        trigger=trigger,
        mode=str(options.mode),
        options={k: v for k, v in dataclasses.asdict(options).items() if k != "mode"},
        undo=undo and options.mode != Mode.NEW_TENANT,
        progress_total=backup.total_rows if backup is not None else 0,
    )
    if upload is not None:
        pending = uploads.keep(upload, tenant=tenant, user=user, options=options)
        restore.upload_id = pending.id
        restore.options["max_bytes"] = int(settings.BACKUP_UPLOAD_MAX_DECOMPRESSED_BYTES)
    restore.save()
    record(
        tenant,
        "backup.restore.requested",
        actor=user,
        details={
            "restore": str(restore.id),
            "backup": str(backup.id) if backup else None,
            "upload": restore.upload_id or None,
            "mode": restore.mode,
            "trigger": trigger,
        },
    )
    _enqueue("preview_restore", restore)
    return restore


def _enqueue(task_name: str, restore: Restore) -> None:
    from backup.stored import tasks  # the task module imports this one

    tasks.hand_over(getattr(tasks, task_name), Restore, [restore.id])


def options_of(restore: Restore) -> ImportOptions:
    return ImportOptions(mode=Mode(restore.mode), **restore.options)


def target_of(restore: Restore) -> Tenant | None:
    return None if restore.mode == Mode.NEW_TENANT else restore.tenant


@contextmanager
def source_of(restore: Restore) -> Iterator[BinaryIO]:
    if restore.upload_id:
        pending = uploads.get_pending(
            restore.upload_id, tenant=restore.tenant, user=restore.created_by
        )
        with uploads.open_pending(pending) as handle:
            yield handle
    elif restore.backup is not None:
        with storage.open_stored(restore.backup.storage_name) as handle:
            _refuse_changed(restore.backup, handle)
            yield handle
    else:
        raise NotRestorable("The backup this restore was asked for has been deleted since.")


def _run_engine(
    engine: Callable[..., ImportReport], restore: Restore, lease: Lease
) -> ImportReport:
    """`preview_import` or `import_backup` of the restore's file, as the restore asks."""
    with source_of(restore) as source:
        return engine(
            source,
            tenant=target_of(restore),
            options=options_of(restore),
            actor=restore.created_by,
            progress=lease.progress,
            decryption=keys.decryption_for(restore.backup) if restore.backup else None,
        )


def run_preview(restore_id: Any) -> Restore | None:
    """The worker's side of the preview."""
    sweep()
    lease = Lease(Restore, restore_id)
    if not lease.claim(Status.PREVIEWING):
        return None
    restore = _load(restore_id)
    lease.total = restore.progress_total
    lease.start()
    try:
        report = _run_engine(preview_import, restore, lease)
    except Exception as exc:
        lease.stop()
        _fail(restore, exc)
        return restore
    lease.stop()
    preview = report.as_dict()
    notices = preview.setdefault("notices", [])
    if restore.undo:
        rows = sum(report.tables[t].delete + report.tables[t].unchanged for t in report.tables)
        notices.append(UNDO_NOTICE.format(rows=rows))
    if restore.upload_id:
        # An upload is kept for BACKUP_UPLOAD_TTL_SECONDS, then purged with the others.
        expires = uploads.get_pending(
            restore.upload_id, tenant=restore.tenant, user=restore.created_by
        ).expires_at
        notices.append(
            f"The uploaded file is kept until {expires[:16].replace('T', ' ')} UTC: confirm "
            "before then, or upload it again."
        )
    Restore.objects.filter(pk=restore.pk).update(
        status=Status.AWAITING_CONFIRMATION,
        preview=preview,
        worker="",  # the import is claimed afresh once confirmed
        **lease.fields(),
    )
    restore.refresh_from_db()
    emails.restore_finished(restore)
    return restore


def _refuse_changed(backup: StoredBackup, handle: BinaryIO) -> None:
    """Read the stored file once to check that it is the one made (before a preview or an
    import reads it): a file changed in storage is refused, not imported."""
    sha256 = storage.sha256_of(handle)
    handle.seek(0)
    if sha256 != backup.sha256:
        raise NotRestorable(
            f"The file of backup {backup.id} has changed in storage since it was made "
            f"(SHA-256 {sha256}, recorded {backup.sha256}): it is not restored."
        )


def confirm_restore(restore: Restore, *, user: Any, confirmation: str = "") -> Restore:
    """Start the import of a previewed restore. A replace needs the tenant's name typed."""
    if restore.status != Status.AWAITING_CONFIRMATION:
        raise JobActive(
            f"Restore {restore.id} is {restore.status}: only a restore awaiting confirmation "
            "can be confirmed."
        )
    if restore.mode == Mode.REPLACE and confirmation.strip() != restore.tenant.name:
        raise ConfirmationRequired(
            f"Replace deletes the current data of tenant '{restore.tenant.name}': type the "
            "tenant's name exactly to confirm."
        )
    refuse_lost_privileges(
        user, create_missing_master_data=options_of(restore).create_missing_master_data
    )
    moved = Restore.objects.filter(pk=restore.pk, status=Status.AWAITING_CONFIRMATION).update(
        status=Status.IMPORTING, progress_done=0, progress_table=""
    )
    if not moved:  # confirmed twice at once: the other confirmation runs it
        raise JobActive(f"Restore {restore.id} was confirmed already.")
    record(
        restore.tenant,
        "backup.restore.confirmed",
        actor=user,
        details={"restore": str(restore.id), "mode": restore.mode},
    )
    _enqueue("import_restore", restore)
    restore.refresh_from_db()
    return restore


def run_import(restore_id: Any) -> Restore | None:
    """The worker's side of the import: the undo backup first, then the import."""
    sweep()
    lease = Lease(Restore, restore_id)
    if not lease.claim(Status.IMPORTING):
        return None
    restore = _load(restore_id)
    lease.total = restore.progress_total
    lease.start()  # beats through the undo backup too
    try:
        if restore.undo:
            lease.progress("(backup of the current data)", 0)
            undo = make_undo_backup(restore.tenant, user=restore.created_by)
            Restore.objects.filter(pk=restore.pk).update(undo_backup=undo)
            restore.undo_backup = undo
        report = _run_engine(import_backup, restore, lease)
    except Exception as exc:
        lease.stop()
        if restore.undo_backup is not None:
            # The import changed nothing: a copy of the data as it still is undoes nothing.
            delete_backup(restore.undo_backup, user=restore.created_by)
            restore.undo_backup = None
        _fail(restore, exc)
        return restore
    lease.stop()
    Restore.objects.filter(pk=restore.pk).update(
        status=Status.SUCCEEDED,
        report=report.as_dict(),
        finished_at=timezone.now(),
        **lease.fields(),
    )
    restore.refresh_from_db()
    _discard_upload(restore)
    record(
        restore.tenant,
        "backup.restore.finished",
        actor=restore.created_by,
        details={
            "restore": str(restore.id),
            "mode": restore.mode,
            "import_id": str(report.import_id),
            "target_tenant": report.tenant,
            "undo_backup": str(restore.undo_backup_id) if restore.undo_backup_id else None,
            "totals": report.totals().as_dict(),
            "seconds": restore.seconds,
        },
    )
    emails.restore_finished(restore)
    return restore


def cancel_restore(restore: Restore, *, user: Any) -> Restore:
    """Drop a restore that awaits its confirmation (its upload goes with it)."""
    moved = Restore.objects.filter(pk=restore.pk, status=Status.AWAITING_CONFIRMATION).update(
        status=Status.CANCELLED, finished_at=timezone.now()
    )
    if not moved:
        raise JobActive(
            f"Restore {restore.id} is {restore.status}: only a restore awaiting confirmation "
            "can be cancelled."
        )
    restore.refresh_from_db()
    _discard_upload(restore)
    record(
        restore.tenant, "backup.restore.cancelled", actor=user, details={"restore": str(restore.id)}
    )
    return restore


def _load(restore_id: Any) -> Restore:
    return Restore.objects.select_related("tenant", "backup", "created_by").get(pk=restore_id)


def _fail(restore: Restore, exc: BaseException) -> None:
    if isinstance(exc, BackupError):
        message = exc.message
    else:
        log.exception("restore %s failed", restore.id, exc_info=exc)
        message = f"The restore failed: {type(exc).__name__}: {exc}"
    details = None
    if isinstance(exc, ValidationFailed):
        details = {
            "problems": [p.as_dict() for p in exc.problems],
            "more": exc.more,
            "stopped": exc.stopped,
        }
    fail(restore, message, details=details, code=getattr(exc, "code", "error"))


def fail(restore: Restore, message: str, *, details: Any = None, code: str = "error") -> None:
    Restore.objects.filter(pk=restore.pk).update(
        status=Status.FAILED,
        error=message,
        error_details={"code": code, **(details or {})},
        finished_at=timezone.now(),
    )
    restore.refresh_from_db()
    _discard_upload(restore)
    record(
        restore.tenant,
        "backup.restore.failed",
        actor=restore.created_by,
        details={"restore": str(restore.id), "mode": restore.mode, "error": message},
    )
    emails.restore_finished(restore)


def _discard_upload(restore: Restore) -> None:
    if restore.upload_id:
        uploads.discard(restore.upload_id)


def sweep(**where: Any) -> int:
    """Fail the restores whose worker died (an import that died wrote nothing)."""
    dead = find_dead(Restore, **where)
    for restore, reason in dead:
        fail(
            restore,  # type: ignore[arg-type]
            f"The restore was stopped: {reason}. Nothing was written to the tenant.",
            code="worker_died",
        )
    return len(dead)


def restores_of(tenant: Tenant) -> QuerySet[Restore]:
    sweep(tenant=tenant)
    return Restore.objects.filter(tenant=tenant).select_related("backup", "created_by")


def get_restore(tenant: Tenant, restore_id: Any) -> Restore:
    restore = restores_of(tenant).filter(pk=restore_id).first() if is_uuid(restore_id) else None
    if restore is None:
        raise BackupNotFound(f"Tenant '{tenant.slug}' has no restore with id {restore_id!s}.")
    return restore
