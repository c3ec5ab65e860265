"""Each tenant's automatic backups, and the scheduler's pass that enqueues the ones due.

Every tenant has a schedule (made with the deployment's defaults the first time it is needed,
or by the scheduler for tenants that have none). The pass (`enqueue_due`, run each minute by
`manage.py enqueue_due_backups`) is set-based: one query finds the schedules whose `next_run_at`
has come; their backups, jobs and audit entries are inserted and the schedules moved on a table
at a time (`backup.db.bulk_rows`), each rule's slots worked out once. A slot is enqueued
exactly once per tenant whichever schedulers run: the database's unique constraint on (tenant,
slot) lets one insert win, and only the rows a pass inserted are enqueued. After downtime only
the latest missed slot is made (once), and the slots in between are reported (`alerts`).
"""

import dataclasses
import datetime as dt
import re
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backup.audit import record, record_many
from backup.db.bulk_rows import insert_rows, update_rows
from backup.errors import InvalidSchedule
from backup.export import ExportOptions
from backup.format.document import FORMAT_VERSION
from backup.models import Schedule, StoredBackup, Trigger
from backup.stored import alerts, keys, retention, storage
from backup.stored.slots import Rule, offset_for, zone_named
from tenants.models import Tenant, TenantSettings

Frequency = Schedule.Frequency
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# What a person may change, in the order the page and the API show them.
EDITABLE = (
    "enabled",
    "frequency",
    "weekday",
    "time",
    "timezone",
    "options",
    "drill",
    "keep_last",
    "keep_monthly",
    "max_age_days",
)
LIMITS = {"keep_last": (1, 1000), "keep_monthly": (0, 1200), "max_age_days": (1, 36500)}


def window_minutes() -> int:
    return int(settings.BACKUP_SCHEDULE_WINDOW_MINUTES)


def rule_of(schedule: Schedule) -> Rule:
    return _rule(
        schedule.frequency,
        schedule.weekday,
        schedule.time,
        schedule.timezone,
        offset_for(schedule.tenant_id, window_minutes()),
    )


def _rule(
    frequency: str, weekday: int | None, at: dt.time, zone: str, offset: dt.timedelta
) -> Rule:
    return Rule(
        at=at,
        zone=zone_named(zone) or zone_named("UTC"),  # type: ignore[arg-type]
        weekday=weekday if frequency == Frequency.WEEKLY else None,
        offset=offset,
    )


def _plan_next(schedule: Schedule, after: dt.datetime) -> None:
    """Point the schedule at its first slot running after `after`."""
    rule = rule_of(schedule)
    slot = rule.next_slot(after)
    schedule.next_slot_at, schedule.next_run_at = slot, slot + rule.offset


def _default_time() -> dt.time:
    return _parse_time(settings.BACKUP_SCHEDULE_TIME, "BACKUP_SCHEDULE_TIME")


def _default_zone(tenant_zone: str | None) -> str:
    if tenant_zone and zone_named(tenant_zone):
        return tenant_zone
    return str(settings.BACKUP_SCHEDULE_TIMEZONE)


def _new_schedule(tenant_id: Any, tenant_zone: str | None, now: dt.datetime) -> Schedule:
    schedule = Schedule(
        tenant_id=tenant_id,
        enabled=bool(settings.BACKUP_SCHEDULE_ENABLED),
        time=_default_time(),
        timezone=_default_zone(tenant_zone),
        options=dataclasses.asdict(ExportOptions()),
        drill=bool(settings.BACKUP_DRILL_ENABLED),
        keep_last=int(settings.BACKUP_KEEP_LAST),
        keep_monthly=int(settings.BACKUP_KEEP_MONTHLY),
        max_age_days=int(settings.BACKUP_MAX_AGE_DAYS),
    )
    _plan_next(schedule, now)
    return schedule


def schedule_of(tenant: Tenant) -> Schedule:
    """The tenant's schedule. A tenant that has none yet is shown the deployment's defaults (a
    daily backup at `BACKUP_SCHEDULE_TIME` in its own time zone), unsaved: reading writes
    nothing; the scheduler's pass, or a change, saves it."""
    schedule = Schedule.objects.filter(tenant=tenant).first()
    if schedule is not None:
        return schedule
    zone = TenantSettings.objects.filter(tenant=tenant).values_list("timezone", flat=True).first()
    return _new_schedule(tenant.pk, zone, timezone.now())


def ensure_schedules(now: dt.datetime | None = None) -> int:
    """Give every tenant without a schedule the default one; returns how many were made."""
    now = now or timezone.now()
    missing = Tenant.objects.filter(backup_schedule__isnull=True).values_list("pk", flat=True)
    ids = list(missing)
    if not ids:
        return 0
    zones = dict(
        TenantSettings.objects.filter(tenant_id__in=ids).values_list("tenant_id", "timezone")
    )
    made = [_new_schedule(pk, zones.get(pk), now) for pk in ids]
    Schedule.objects.bulk_create(made, batch_size=2000, ignore_conflicts=True)
    return len(made)


def describe(schedule: Schedule) -> dict[str, Any]:
    """The schedule as the page, the API and the audit trail show it."""
    return {
        "enabled": schedule.enabled,
        "frequency": schedule.frequency,
        "weekday": WEEKDAYS[schedule.weekday] if schedule.weekday is not None else None,
        "time": schedule.time.strftime("%H:%M"),
        "timezone": schedule.timezone,
        "options": schedule.options,
        "drill": schedule.drill,
        "keep_last": schedule.keep_last,
        "keep_monthly": schedule.keep_monthly,
        "max_age_days": schedule.max_age_days,
        "next_slot_at": schedule.next_slot_at.isoformat() if schedule.next_slot_at else None,
        "next_run_at": schedule.next_run_at.isoformat() if schedule.next_run_at else None,
        "last_slot_at": schedule.last_slot_at.isoformat() if schedule.last_slot_at else None,
    }


def update_schedule(tenant: Tenant, changes: dict[str, Any], *, user: Any) -> Schedule:
    """Apply the changes (any of `EDITABLE`, as given by a form or a JSON body: "02:30",
    "Europe/Berlin", "monday" or 0) after checking all of them; audited with before and after.

    Raises `InvalidSchedule` naming every field that is wrong; nothing is saved then."""
    unknown = {name: "is not a schedule setting." for name in sorted(set(changes) - set(EDITABLE))}
    known = {name: value for name, value in changes.items() if name in EDITABLE}
    with transaction.atomic():
        if not Schedule.objects.filter(tenant=tenant).exists():
            Schedule.objects.bulk_create([schedule_of(tenant)], ignore_conflicts=True)
        schedule = Schedule.objects.select_for_update().get(tenant=tenant)
        before = describe(schedule)
        values = _checked({**_editable_values(schedule), **known}, unknown)
        for name, value in values.items():
            setattr(schedule, name, value)
        if values["frequency"] == Frequency.DAILY:
            schedule.weekday = None
        schedule.updated_by = user if getattr(user, "is_authenticated", False) else None
        _plan_next(schedule, timezone.now())
        schedule.save()
        retention.refresh_expiry(schedule)
        after = describe(schedule)
        if {k: before[k] for k in EDITABLE} != {k: after[k] for k in EDITABLE}:
            record(
                tenant,
                "backup.schedule.updated",
                actor=user,
                details={"before": before, "after": after},
            )
    return schedule


def _editable_values(schedule: Schedule) -> dict[str, Any]:
    return {name: getattr(schedule, name) for name in EDITABLE}


def _checked(values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """The values as they are stored, or `InvalidSchedule` naming every wrong one (`errors`
    holds those already found)."""
    errors = dict(errors)
    result: dict[str, Any] = {}
    for name in ("enabled", "drill"):
        if isinstance(values[name], bool):
            result[name] = values[name]
        else:
            errors[name] = "must be true or false."
    frequency = values["frequency"]
    if frequency in Frequency.values:
        result["frequency"] = frequency
    else:
        errors["frequency"] = f"must be one of {', '.join(Frequency.values)}, not {frequency!r}."
    try:
        result["weekday"] = _parse_weekday(values["weekday"])
    except ValueError as exc:
        errors["weekday"] = str(exc)
    if frequency == Frequency.WEEKLY and result.get("weekday", 0) is None:
        errors["weekday"] = "a weekly schedule needs the day of the week (monday ... sunday)."
    try:
        result["time"] = _parse_time(values["time"], "time")
    except InvalidSchedule as exc:
        errors.update(exc.errors)
    zone = values["timezone"]
    if isinstance(zone, str) and zone_named(zone):
        result["timezone"] = zone
    else:
        errors["timezone"] = f"{zone!r} is not a known IANA time zone (e.g. Europe/Berlin, UTC)."
    try:
        result["options"] = _parse_options(values["options"])
    except ValueError as exc:
        errors["options"] = str(exc)
    for name, (low, high) in LIMITS.items():
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            errors[name] = f"must be a whole number from {low} to {high}, not {value!r}."
        else:
            result[name] = value
    if errors:
        raise InvalidSchedule(errors)
    return result


def _parse_weekday(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().lower() in WEEKDAYS:
        return WEEKDAYS.index(value.strip().lower())
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return value
    raise ValueError(f"{value!r} is not a day of the week (monday ... sunday, or 0 ... 6).")


_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


def _parse_time(value: Any, name: str) -> dt.time:
    if isinstance(value, dt.time):
        return value.replace(second=0, microsecond=0)
    match = _TIME.match(value.strip()) if isinstance(value, str) else None
    if match and int(match[1]) < 24 and int(match[2]) < 60:
        return dt.time(int(match[1]), int(match[2]))
    raise InvalidSchedule({name: f"{value!r} is not a time of day as HH:MM (00:00 to 23:59)."})


def _parse_options(value: Any) -> dict[str, bool]:
    known = {f.name for f in dataclasses.fields(ExportOptions)}
    if not isinstance(value, dict):
        raise ValueError("must be an object of export options.")
    wrong = sorted(set(value) - known)
    if wrong:
        raise ValueError(
            f"unknown export option(s) {', '.join(wrong)}; known: {', '.join(sorted(known))}."
        )
    if not all(isinstance(v, bool) for v in value.values()):
        raise ValueError("each export option must be true or false.")
    return dataclasses.asdict(ExportOptions(**value))


@dataclasses.dataclass
class SchedulerPass:
    """What one pass did."""

    at: dt.datetime
    due: int = 0  # schedules whose next run had come
    enqueued: list[str] = dataclasses.field(default_factory=list)  # backup ids
    already: int = 0  # slots another scheduler had enqueued first
    # (tenant id, the first slot missed, how many were): made late
    late: list[tuple[Any, dt.datetime, int]] = dataclasses.field(default_factory=list)
    schedules_made: int = 0
    requeued: int = 0  # backups and drills whose hand-over to the task backend was lost


def enqueue_due(at: dt.datetime | None = None) -> SchedulerPass:
    """Enqueue every scheduled backup due at `at` (default now): one per tenant and slot."""
    from backup.stored.tasks import (  # they import this
        enqueued_with_rows,
        hand_over,
        make_backup,
        requeue_lost,
    )

    at = at or timezone.now()
    result = SchedulerPass(at=at, schedules_made=ensure_schedules(at))
    grace = dt.timedelta(minutes=int(settings.BACKUP_SCHEDULE_GRACE_MINUTES))
    window = window_minutes()
    encrypted = keys.encrypting_at_rest()
    version = str(FORMAT_VERSION)
    # Whole fleets share a few rules (a time, a zone, an offset in the window): each rule's
    # slots are worked out once per pass, not once per schedule.
    plans: dict[tuple[Any, ...], _Plan] = {}
    with transaction.atomic():
        due = (
            Schedule.objects.filter(enabled=True, next_run_at__lte=at)
            .select_for_update(skip_locked=True)
            .values_list(
                "pk",
                "tenant_id",
                "frequency",
                "weekday",
                "time",
                "timezone",
                "next_slot_at",
                "options",
            )
        )
        backups: list[dict[str, Any]] = []
        moves: list[dict[str, Any]] = []
        # Jobs that commit with the backups: the backups are written with their stamp.
        stamp = timezone.now() if enqueued_with_rows(make_backup) else None
        for pk, tenant_id, frequency, weekday, time, zone, planned, options in due:
            rule_key = (frequency, weekday, time, zone, offset_for(tenant_id, window), planned)
            plan = plans.get(rule_key)
            if plan is None:
                plan = plans[rule_key] = _plan(_rule(*rule_key[:5]), planned, at, grace)
            if plan.late:
                result.late.append((tenant_id, planned, plan.skipped))
            backup_id = uuid.uuid4()
            backups.append(
                {
                    "id": backup_id,
                    "tenant_id": tenant_id,
                    "trigger": Trigger.SCHEDULE,
                    "options": options or dataclasses.asdict(ExportOptions()),
                    "format_version": version,
                    "scheduled_for": plan.slot,
                    "storage_name": storage.storage_name(tenant_id, backup_id, encrypted=encrypted),
                    "enqueued_at": stamp,
                }
            )
            moves.append(
                {
                    "pk": pk,
                    "last_slot_at": plan.slot,
                    "next_slot_at": plan.next_slot,
                    "next_run_at": plan.next_run,
                }
            )
        result.due = len(backups)
        made = set(insert_rows(StoredBackup, backups, skip_conflicts=True))
        result.already = len(backups) - len(made)
        update_rows(Schedule, moves)
        created = [b for b in backups if b["id"] in made]
        record_many(
            (
                b["tenant_id"],
                "backup.stored.created",
                {
                    "backup": str(b["id"]),
                    "trigger": Trigger.SCHEDULE,
                    "options": b["options"],
                    "slot": b["scheduled_for"].isoformat(),
                },
            )
            for b in created
        )
        result.enqueued = [str(b["id"]) for b in created]
        hand_over(make_backup, StoredBackup, result.enqueued, stamped=stamp is not None)
    result.requeued = requeue_lost()
    alerts.slots_caught_up_late(result.late, at)
    return result


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What a pass does for a schedule of a rule, planned for a slot."""

    slot: dt.datetime  # the slot made now
    skipped: int  # slots missed before it
    late: bool  # made after its grace period, or after missed slots
    next_slot: dt.datetime
    next_run: dt.datetime


def _plan(rule: Rule, planned: dt.datetime | None, at: dt.datetime, grace: dt.timedelta) -> _Plan:
    slot = rule.latest_slot(at)
    if slot is None or (planned and slot < planned):
        # The window changed since the schedule was planned: its planned slot is due.
        slot = planned
    assert slot is not None, "a due schedule has a slot at or before its run time"
    skipped = _slots_between(rule, planned, slot)
    following = rule.next_slot(max(at, slot + rule.offset))
    return _Plan(
        slot=slot,
        skipped=skipped,
        late=bool(skipped) or at - (slot + rule.offset) > grace,
        next_slot=following,
        next_run=following + rule.offset,
    )


def _slots_between(rule: Rule, first: dt.datetime | None, slot: dt.datetime) -> int:
    """How many slots from `first` (the one expected next) came before `slot`: missed ones."""
    if first is None:
        return 0
    count, moment = 0, first
    while moment < slot and count < 1000:
        count += 1
        moment = rule.next_slot(moment + rule.offset)
    return count
