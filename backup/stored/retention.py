"""How long stored backups are kept, and the prune that deletes the rest.

Each tenant's schedule carries its rules: keep the `keep_last` most recent scheduled backups,
plus the last scheduled backup of each of the `keep_monthly` most recent months (in the tenant's
time zone), and none older than `max_age_days`, which applies to every backup, made by hand or
before a restore too. Whatever the rules say, a backup marked "keep" stays, as do the newest
backup that succeeded, the newest that passed its drill, and any backup a restore is using.

A prune deletes the rows first (one transaction, audited) and then the files: one interrupted
in between leaves files without a row, which `repair_storage` removes; it also marks failed any
backup whose file has gone from storage, so that the list never offers a file that is not there.
"""

import datetime as dt
import logging
import uuid
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from backup.audit import record
from backup.errors import StorageFailed
from backup.models import ENCRYPTED_SUFFIX, Drill, Restore, Schedule, StoredBackup, Trigger
from backup.stored import storage
from backup.stored.slots import zone_named
from tenants.models import Tenant

log = logging.getLogger(__name__)
Status = StoredBackup.Status
ACTIVE_RESTORES = (
    Restore.Status.PREVIEWING,
    Restore.Status.AWAITING_CONFIRMATION,
    Restore.Status.IMPORTING,
)


@dataclass
class Decision:
    keep: list[StoredBackup] = field(default_factory=list)
    delete: list[StoredBackup] = field(default_factory=list)


def decide(
    backups: Iterable[StoredBackup],
    schedule: Schedule,
    *,
    now: dt.datetime,
    verified: set[Any],
    in_use: set[Any],
) -> Decision:
    """Which of one tenant's finished backups the rules keep. `verified`: the ids whose drill
    passed; `in_use`: the ids an unfinished restore reads."""
    newest_first = sorted(backups, key=lambda b: b.created_at, reverse=True)
    zone = zone_named(schedule.timezone) or zoneinfo.ZoneInfo("UTC")
    oldest_allowed = now - dt.timedelta(days=schedule.max_age_days)
    protected = {b.pk for b in newest_first if b.keep or b.pk in in_use}
    succeeded = [b for b in newest_first if b.status == Status.SUCCEEDED]
    if succeeded:
        protected.add(succeeded[0].pk)
    for b in succeeded:
        if b.pk in verified:
            protected.add(b.pk)
            break
    scheduled = [b for b in newest_first if b.trigger == Trigger.SCHEDULE]
    recent = {b.pk for b in scheduled[: schedule.keep_last]}
    good = [b for b in scheduled if b.status == Status.SUCCEEDED]
    recent |= {b.pk for b in good[: schedule.keep_last]}
    monthly: dict[tuple[int, int], Any] = {}
    for b in good:
        local = b.created_at.astimezone(zone)
        month = (local.year, local.month)
        if month not in monthly and len(monthly) < schedule.keep_monthly:
            monthly[month] = b.pk
    by_rules = recent | set(monthly.values())
    decision = Decision()
    for b in newest_first:
        young = b.created_at >= oldest_allowed
        kept_by_rules = young and (b.trigger != Trigger.SCHEDULE or b.pk in by_rules)
        (decision.keep if b.pk in protected or kept_by_rules else decision.delete).append(b)
    return decision


def expiry(backup: StoredBackup, schedule: Schedule) -> dt.datetime | None:
    """The latest the backup is kept: its maximum age; None when marked keep."""
    if backup.keep:
        return None
    return backup.created_at + dt.timedelta(days=schedule.max_age_days)


def refresh_expiry(schedule: Schedule) -> int:
    """Set `expires_at` of the tenant's backups after the maximum age or a keep mark changed."""
    backups = StoredBackup.objects.filter(tenant_id=schedule.tenant_id)
    backups.filter(keep=True).update(expires_at=None)
    age = dt.timedelta(days=schedule.max_age_days)
    return backups.filter(keep=False).update(expires_at=F("created_at") + age)


@dataclass
class Pruned:
    tenant: Tenant
    deleted: list[str] = field(default_factory=list)  # backup ids
    files_left: list[str] = field(default_factory=list)  # files the storage did not delete


def prune_tenant(tenant: Tenant, *, now: dt.datetime | None = None) -> Pruned:
    """Delete the tenant's backups that the rules no longer keep: rows, then files."""
    from backup.stored.schedules import schedule_of  # schedules imports this module

    now = now or timezone.now()
    result = Pruned(tenant)
    schedule = schedule_of(tenant)
    with transaction.atomic():
        finished = list(
            StoredBackup.objects.select_for_update()
            .filter(tenant=tenant, status__in=(Status.SUCCEEDED, Status.FAILED))
            .order_by("-created_at")
        )
        ids = [b.pk for b in finished]
        verified = set(
            Drill.objects.filter(backup_id__in=ids, status=Drill.Status.PASSED).values_list(
                "backup_id", flat=True
            )
        )
        in_use = set(
            Restore.objects.filter(backup_id__in=ids, status__in=ACTIVE_RESTORES).values_list(
                "backup_id", flat=True
            )
        )
        doomed = decide(finished, schedule, now=now, verified=verified, in_use=in_use).delete
        if not doomed:
            return result
        StoredBackup.objects.filter(pk__in=[b.pk for b in doomed]).delete()
        record(
            tenant,
            "backup.stored.pruned",
            details={
                "backups": [
                    {
                        "backup": str(b.pk),
                        "created_at": b.created_at.isoformat(),
                        "trigger": b.trigger,
                    }
                    for b in doomed
                ],
                "rules": {
                    "keep_last": schedule.keep_last,
                    "keep_monthly": schedule.keep_monthly,
                    "max_age_days": schedule.max_age_days,
                },
            },
        )
    result.deleted = [str(b.pk) for b in doomed]
    for b in doomed:
        if b.status != Status.SUCCEEDED:
            continue
        try:
            storage.delete(b.storage_name)
        except StorageFailed as exc:  # the row is gone: the next repair removes the file
            log.warning("%s", exc.message)
            result.files_left.append(b.storage_name)
    return result


def prune_quietly(tenant: Tenant) -> None:
    """The prune after a scheduled backup (or its drill): a failure is logged, not the job's."""
    try:
        prune_tenant(tenant)
    except Exception:
        log.exception("pruning the backups of %s failed", tenant.pk)


def prune_all(*, now: dt.datetime | None = None) -> list[Pruned]:
    """Prune every tenant that has backups; returns the tenants where something was deleted."""
    tenants = Tenant.objects.filter(
        Exists(
            StoredBackup.objects.filter(
                tenant=OuterRef("pk"), status__in=(Status.SUCCEEDED, Status.FAILED)
            )
        )
    )
    results = [prune_tenant(tenant, now=now) for tenant in tenants.iterator()]
    return [r for r in results if r.deleted]


@dataclass
class Repaired:
    files_removed: list[str] = field(default_factory=list)  # files no backup row named
    rows_failed: list[str] = field(default_factory=list)  # succeeded backups without a file


def repair_storage() -> Repaired:
    """Make the storage and the rows agree again after an interrupted prune or delete, or a
    file removed from storage by hand. Files are listed before the rows are read, and only
    backups finished before the listing can lack a file, so a backup being saved meanwhile is
    never taken for either."""
    listed_at = timezone.now()
    names = set(storage.stored_names())
    by_id: dict[uuid.UUID, str] = {}
    for name in names:
        backup_id = _backup_id(name)
        if backup_id is not None:
            by_id[backup_id] = name
    rows = StoredBackup.objects.values_list("pk", "storage_name", "status", "finished_at")
    known: set[uuid.UUID] = set()
    missing: list[uuid.UUID] = []
    for pk, name, status, finished_at in rows.iterator(chunk_size=5000):
        known.add(pk)
        if status == Status.SUCCEEDED and name not in names and finished_at < listed_at:
            missing.append(pk)
    result = Repaired()
    for backup_id, name in sorted(by_id.items()):
        if backup_id not in known:
            try:
                storage.delete(name)
            except StorageFailed as exc:
                log.warning("%s", exc.message)
                continue
            result.files_removed.append(name)
    for backup in StoredBackup.objects.filter(pk__in=missing).select_related("tenant"):
        message = (
            f"Its file {backup.storage_name} was no longer in the backup storage on "
            f"{listed_at:%Y-%m-%d %H:%M} UTC (removed outside this application?)."
        )
        StoredBackup.objects.filter(pk=backup.pk).update(status=Status.FAILED, error=message)
        record(
            backup.tenant,
            "backup.stored.failed",
            details={"backup": str(backup.pk), "error": message, "by": "repair"},
        )
        result.rows_failed.append(str(backup.pk))
    return result


def _backup_id(name: str) -> uuid.UUID | None:
    """The backup id in a stored file's name (`<tenant>/<backup>.json.zst[.age]`, or `.zip`
    for one with files), or None for a file that is not one of ours."""
    name = name.removesuffix(ENCRYPTED_SUFFIX)
    for suffix in (storage.SUFFIX, storage.ARCHIVE_SUFFIX):
        if name.endswith(suffix):
            try:
                return uuid.UUID(name.rsplit("/", 1)[-1].removesuffix(suffix))
            except ValueError:
                return None
    return None
