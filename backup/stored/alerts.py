"""What someone must look at about a tenant's automatic backups.

An alert is raised once per tenant, kind and key (a slot or a backup): a scheduled backup that
failed, a restore drill that failed, or a slot that passed without a backup because no scheduler
or no worker ran. Raising it emails the tenant's owners; it is shown on Admin > Backup (the
tenant's banner, the superusers' list on the admin index) and by `manage.py backup_health` until
a later scheduled backup of the tenant succeeds (and passes its drill, when drills are on).
"""

import datetime as dt
import logging
import uuid
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, mailers
from django.db.models import Q, QuerySet
from django.utils import timezone

from backup.db.bulk_rows import insert_rows
from backup.models import Alert, Drill, Schedule, StoredBackup, Trigger
from backup.stored.emails import tenant_link
from tenants.models import Membership, Tenant

log = logging.getLogger(__name__)
Kind = Alert.Kind


def grace() -> dt.timedelta:
    return dt.timedelta(minutes=int(settings.BACKUP_SCHEDULE_GRACE_MINUTES))


def raise_alert(tenant: Tenant, kind: str, key: str, message: str) -> Alert | None:
    """Raise the alert unless it was raised before; returns it when this call raised it."""
    raised = raise_alerts([{"tenant_id": tenant.pk, "kind": kind, "key": key, "message": message}])
    return Alert.objects.get(pk=raised[0]) if raised else None


def raise_alerts(alerts: list[dict[str, Any]]) -> list[Any]:
    """Raise many at once, each given as its `tenant_id`, `kind`, `key` and `message` (a
    scheduler's pass after downtime may raise one per tenant): those raised before, by this
    process or another, are left as they were; the new ones are emailed. Returns the new ones'
    ids."""
    tenant_id = Tenant._meta.pk.to_python  # type: ignore[union-attr]
    rows = [
        {
            **alert,
            "id": uuid.uuid4(),
            "tenant_id": tenant_id(alert["tenant_id"]),
            "key": alert["key"][:64],
        }
        for alert in alerts
    ]
    raised = insert_rows(Alert, rows, skip_conflicts=True)
    new = set(raised)
    _email_owners([row for row in rows if row["id"] in new])
    return raised


def _email_owners(alerts: list[dict[str, Any]]) -> None:
    if not alerts:
        return
    owners = Membership.objects.filter(
        tenant_id__in={a["tenant_id"] for a in alerts},
        role=Membership.Role.OWNER,
        user__is_active=True,
    ).exclude(user__email="")
    recipients: dict[Any, list[str]] = {}
    for tenant_id, email in owners.order_by("user__email").values_list("tenant_id", "user__email"):
        recipients.setdefault(tenant_id, []).append(email)
    names = dict(Tenant.objects.filter(pk__in=list(recipients)).values_list("pk", "name"))
    messages = [
        EmailMessage(
            f"Backups of {names[a['tenant_id']]}: {Kind(a['kind']).label.lower()}",
            f"{a['message']}\n\n{tenant_link(a['tenant_id'])}\n",
            to=recipients[a["tenant_id"]],
        )
        for a in alerts
        if recipients.get(a["tenant_id"])
    ]
    try:
        mailers.default.send_messages(messages)
    except Exception:  # a mail server that is down must not fail the job it reports on
        log.exception("could not send the emails about %d alert(s)", len(messages))


def backup_failed(backup: StoredBackup) -> None:
    if backup.trigger != Trigger.SCHEDULE:
        return
    raise_alert(
        backup.tenant,
        Kind.BACKUP_FAILED,
        str(backup.pk),
        f"The scheduled backup of {_slot(backup.scheduled_for)} failed: {backup.error}",
    )


def drill_failed(drill: Drill) -> None:
    problems = "; ".join(drill.problems[:5])
    raise_alert(
        drill.tenant,
        Kind.DRILL_FAILED,
        str(drill.backup_id),
        f"The restore drill of backup {drill.backup_id} (made "
        f"{_slot(drill.backup.created_at)}) failed: the backup may not restore. {problems}",
    )


def backup_passed(backup: StoredBackup) -> int:
    """A scheduled backup that succeeded (and passed its drill): the tenant's alerts are
    resolved. Returns how many."""
    return Alert.objects.filter(tenant_id=backup.tenant_id, resolved_at__isnull=True).update(
        resolved_at=timezone.now()
    )


def slots_caught_up_late(late: list[tuple[Any, dt.datetime, int]], at: dt.datetime) -> None:
    """The scheduler's pass made a slot long after its time: the slots from `first` on were
    missed (no scheduler ran) and only the latest is made now."""
    made_at = _slot(at)
    raise_alerts(
        [
            {
                "tenant_id": tenant_id,
                "kind": Kind.MISSED,
                "key": first.isoformat(),
                "message": f"No scheduler ran at the backup slot of {_slot(first)}"
                + (f" and the {skipped - 1} after it" if skipped > 1 else "")
                + f": the backup was made late, at {made_at}, once for all of them.",
            }
            for tenant_id, first, skipped in late
            if first is not None
        ]
    )


def detect_missed(now: dt.datetime | None = None) -> int:
    """Raise an alert for each slot passed without a backup: a schedule whose run time is more
    than the grace period old (no scheduler ran), or a scheduled backup still queued after it
    while no worker started or worked on any job (no worker ran). Returns how many were raised."""
    now = now or timezone.now()
    cutoff = now - grace()
    passed = Schedule.objects.filter(enabled=True, next_run_at__lt=cutoff)
    alerts = [
        {
            "tenant_id": tenant_id,
            "kind": Kind.MISSED,
            "key": slot.isoformat(),
            "message": f"The backup slot of {_slot(slot)} passed without a backup: no "
            "scheduler ran (manage.py enqueue_due_backups, each minute).",
        }
        for tenant_id, slot in passed.values_list("tenant_id", "next_slot_at")
        if slot is not None
    ]
    waiting = StoredBackup.objects.filter(
        trigger=Trigger.SCHEDULE, status=StoredBackup.Status.QUEUED, created_at__lt=cutoff
    )
    if waiting.exists() and not _worker_seen(cutoff):
        alerts += [
            {
                "tenant_id": tenant_id,
                "kind": Kind.MISSED,
                "key": slot.isoformat(),
                "message": f"The backup of the slot {_slot(slot)} is still queued: no worker "
                "ran (manage.py db_worker, or the RQ worker).",
            }
            for tenant_id, slot in waiting.values_list("tenant_id", "scheduled_for")
        ]
    return len(raise_alerts(alerts))


def _worker_seen(since: dt.datetime) -> bool:
    """Whether any worker started a job, or beat for one, since then."""
    seen = Q(started_at__gte=since) | Q(heartbeat_at__gte=since)
    return StoredBackup.objects.filter(seen).exists() or Drill.objects.filter(seen).exists()


def open_alerts(tenant: Tenant | None = None) -> QuerySet[Alert]:
    alerts = Alert.objects.filter(resolved_at__isnull=True).select_related("tenant")
    return alerts.filter(tenant=tenant) if tenant is not None else alerts


def _slot(moment: dt.datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "an unknown time"
