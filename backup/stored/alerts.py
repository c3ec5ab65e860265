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

from backup.models import Alert, Drill, Schedule, StoredBackup, Trigger
from backup.stored.emails import tenant_link
from tenants.models import Membership, Tenant

log = logging.getLogger(__name__)
Kind = Alert.Kind


def grace() -> dt.timedelta:
    return dt.timedelta(minutes=int(settings.BACKUP_SCHEDULE_GRACE_MINUTES))


def raise_alert(tenant: Tenant, kind: str, key: str, message: str) -> Alert | None:
    """Raise the alert unless it was raised before; returns it when this call raised it."""
    raised = raise_alerts([Alert(tenant=tenant, kind=kind, key=key[:64], message=message)])
    return raised[0] if raised else None


def raise_alerts(alerts: list[Alert]) -> list[Alert]:
    """Raise many at once (a scheduler's pass after downtime may raise one per tenant): those
    raised before, by this process or another, are left as they were; the new ones are
    emailed. Returns the new ones."""
    Alert.objects.bulk_create(alerts, batch_size=1000, ignore_conflicts=True)
    new = set(Alert.objects.filter(pk__in=[a.pk for a in alerts]).values_list("pk", flat=True))
    raised = [a for a in alerts if a.pk in new]
    _email_owners(raised)
    return raised


def _email_owners(alerts: list[Alert]) -> None:
    if not alerts:
        return
    owners = Membership.objects.filter(
        tenant_id__in={a.tenant_id for a in alerts},
        role=Membership.Role.OWNER,
        user__is_active=True,
    ).exclude(user__email="")
    recipients: dict[Any, list[str]] = {}
    for tenant_id, email in owners.order_by("user__email").values_list("tenant_id", "user__email"):
        recipients.setdefault(tenant_id, []).append(email)
    messages = [
        EmailMessage(
            f"Backups of {a.tenant.name}: {a.get_kind_display().lower()}",
            f"{a.message}\n\n{tenant_link(a.tenant_id)}\n",
            to=recipients[a.tenant_id],
        )
        for a in alerts
        if recipients.get(a.tenant_id)
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


def slots_caught_up_late(late: list[tuple[str, dt.datetime, int]], at: dt.datetime) -> None:
    """The scheduler's pass made a slot long after its time: the slots from `first` on were
    missed (no scheduler ran) and only the latest is made now."""
    tenants = Tenant.objects.in_bulk([tenant_id for tenant_id, _, _ in late])
    alerts = []
    for tenant_id, first, skipped in late:
        tenant = tenants.get(tenant_id) or tenants.get(_uuid(tenant_id))
        if tenant is None or first is None:
            continue
        also = f" and the {skipped - 1} after it" if skipped > 1 else ""
        message = (
            f"No scheduler ran at the backup slot of {_slot(first)}{also}: the backup was made "
            f"late, at {_slot(at)}, once for all of them."
        )
        alerts.append(
            Alert(tenant=tenant, kind=Kind.MISSED, key=first.isoformat(), message=message)
        )
    raise_alerts(alerts)


def _uuid(value: str) -> Any:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def detect_missed(now: dt.datetime | None = None) -> int:
    """Raise an alert for each slot passed without a backup: a schedule whose run time is more
    than the grace period old (no scheduler ran), or a scheduled backup still queued after it
    while no worker started or worked on any job (no worker ran). Returns how many were raised."""
    now = now or timezone.now()
    cutoff = now - grace()
    alerts = [
        Alert(
            tenant=schedule.tenant,
            kind=Kind.MISSED,
            key=schedule.next_slot_at.isoformat(),  # type: ignore[union-attr]
            message=f"The backup slot of {_slot(schedule.next_slot_at)} passed without a "
            "backup: no scheduler ran (manage.py enqueue_due_backups, each minute).",
        )
        for schedule in Schedule.objects.filter(
            enabled=True, next_run_at__lt=cutoff
        ).select_related("tenant")
    ]
    waiting = StoredBackup.objects.filter(
        trigger=Trigger.SCHEDULE, status=StoredBackup.Status.QUEUED, created_at__lt=cutoff
    ).select_related("tenant")
    if waiting.exists() and not _worker_seen(cutoff):
        alerts += [
            Alert(
                tenant=backup.tenant,
                kind=Kind.MISSED,
                key=backup.scheduled_for.isoformat(),  # type: ignore[union-attr]
                message=f"The backup of the slot {_slot(backup.scheduled_for)} is still "
                "queued: no worker ran (manage.py db_worker, or the RQ worker).",
            )
            for backup in waiting
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
