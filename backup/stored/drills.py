"""Restore drills: proof that a stored backup restores.

After each scheduled backup (when the tenant's schedule has drills on), a worker restores the
stored file as a new tenant inside a transaction that is then rolled back, and checks that the
file is the one stored (its SHA-256, computed while the import reads it) and that the restored
tenant is the backup, row for row and field for field: a comparison of the file with it
(`backup.compare`), its rows matched by natural key. The backup is then "verified", with the
time the drill took, or "verification failed", with the problems; a failure raises an alert.
"""

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from backup.audit import record
from backup.compare import Comparison, compare_restored
from backup.errors import BackupError, ValidationFailed
from backup.models import Drill, StoredBackup, Trigger
from backup.registry import registry
from backup.restore import ImportOptions, Mode, import_backup
from backup.stored import alerts, keys, retention, storage
from backup.stored.leases import Lease, find_dead
from tenants.models import Tenant

log = logging.getLogger(__name__)
Status = Drill.Status


def request_drill(backup: StoredBackup) -> Drill:
    """Create the drill's row and enqueue it (after the caller's transaction commits)."""
    from backup.stored.tasks import drill_backup, hand_over  # the task module imports this one

    drill = Drill.objects.create(tenant_id=backup.tenant_id, backup=backup, trigger=backup.trigger)
    hand_over(drill_backup, Drill, [drill.id])
    return drill


def run_drill(drill_id: Any) -> Drill | None:
    """The worker's side; None when there is nothing to do (gone, or another worker has it)."""
    sweep()
    lease = Lease(Drill, drill_id)
    if not lease.claim(Status.QUEUED, becomes=Status.RUNNING):
        return None
    drill = Drill.objects.select_related("backup", "tenant").get(pk=drill_id)
    backup = drill.backup
    lease.progress("", 0, backup.total_rows)
    lease.start()
    try:
        drill.restored, drill.problems = restore_and_count(backup, lease)
    except BackupError as exc:
        drill.problems = _problems_of(exc)
    except Exception as exc:  # whatever stops a restore is what the drill is there to find
        log.exception("drill %s failed", drill_id)
        drill.problems = [f"The restore failed: {type(exc).__name__}: {exc}"]
    finally:
        lease.stop()
    drill.status = Status.FAILED if drill.problems else Status.PASSED
    drill.finished_at = timezone.now()
    drill.progress_done = lease.done
    drill.progress_table = ""
    with transaction.atomic():
        drill.save()
        record(
            drill.tenant,
            f"backup.drill.{drill.status}",
            details={
                "backup": str(backup.id),
                "drill": str(drill.id),
                "seconds": drill.seconds,
                "rows": sum(drill.restored.values()),
                "problems": drill.problems[:20],
            },
        )
    if drill.status == Status.FAILED:
        alerts.drill_failed(drill)
    elif backup.trigger == Trigger.SCHEDULE:
        alerts.backup_passed(backup)
    if backup.trigger == Trigger.SCHEDULE:
        retention.prune_quietly(drill.tenant)
    return drill


def restore_and_count(backup: StoredBackup, lease: Lease) -> tuple[dict[str, int], list[str]]:
    """Restore the backup as a new tenant, count its rows per table, compare it with the file,
    roll it all back."""
    options = ImportOptions(
        mode=Mode.NEW_TENANT,
        new_tenant_slug=f"restore-drill-{backup.id.hex[:16]}",
        new_tenant_name=f"Restore drill of backup {backup.id}",
        restore_files=False,  # checked against the backup's list, not written: rolled back
    )
    handle = storage.open_stored(backup.storage_name)
    try:
        with transaction.atomic():
            report = import_backup(
                handle,
                options=options,
                progress=lease.progress,
                decryption=keys.decryption_for(backup),
            )
            tenant = Tenant.objects.get(pk=report.tenant["id"])
            restored = _restored_rows(tenant, report.import_id)
            with storage.open_stored(backup.storage_name) as again:
                comparison = compare_restored(again, tenant, decryption=keys.decryption_for(backup))
            transaction.set_rollback(True)
    finally:
        handle.close()
    problems = []
    if report.sha256 != backup.sha256:
        problems.append(
            f"The stored file has changed since it was made (SHA-256 {report.sha256}, "
            f"recorded {backup.sha256})."
        )
    for table in sorted(set(backup.rows) | set(restored)):
        expected, got = backup.rows.get(table, 0), restored.get(table, 0)
        if expected != got:
            problems.append(f"Table {table}: {got} rows restored, the backup has {expected}.")
    problems.extend(differences(comparison))
    return restored, problems


def differences(comparison: Comparison) -> list[str]:
    """What a restore drill's comparison found, as sentences: per table, what differs and the
    first row of each kind."""
    found = []
    for name, table in comparison.tables.items():
        if table.identical:
            continue
        first = [
            *(f"missing {label}" for label in table.sample_only_new[:1]),
            *(f"not in the backup {label}" for label in table.sample_only_old[:1]),
            *(
                f"differs {row['row']} in {', '.join(row['changes'])}"
                for row in table.sample_differ[:1]
            ),
        ]
        found.append(
            f"Table {name}: the restore differs from the backup: {table.only_new:,} of its rows "
            f"missing, {table.only_old:,} rows it does not have, {table.differ:,} rows "
            f"different" + (f" (first: {'; '.join(first)})" if first else "") + "."
        )
    return found


def _restored_rows(tenant: Tenant, import_id: Any) -> dict[str, int]:
    """The rows the import wrote, per table; in a table that also gets entries of its own
    (the audit trail records the import), only the rows stamped with this import."""
    counts = {}
    for spec in registry().tenant_tables:
        rows = spec.model.objects.filter(tenant=tenant)
        if spec.stamp is not None:
            rows = rows.filter(**{spec.stamp.import_id: import_id})
        counts[spec.name] = rows.count()
    return {name: n for name, n in counts.items() if n}


def _problems_of(exc: BackupError) -> list[str]:
    if isinstance(exc, ValidationFailed):
        listed = [str(problem) for problem in exc.problems[:20]]
        return [f"The backup does not restore: {exc.message}", *listed]
    return [f"The backup does not restore: {exc.message}"]


def sweep(**where: Any) -> int:
    """Fail the drills whose worker died."""
    dead = find_dead(Drill, **where)
    for drill, reason in dead:
        Drill.objects.filter(pk=drill.pk).update(
            status=Status.FAILED,
            finished_at=timezone.now(),
            problems=[f"The drill was stopped: {reason}."],
        )
        drill.refresh_from_db()
        alerts.drill_failed(drill)  # type: ignore[arg-type]
    return len(dead)
