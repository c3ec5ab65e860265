"""Automatic backups in this process: schedules and their checks, the scheduler's pass (each
slot once, catching up once), restore drills, retention and the prune, the storage repair,
alerts and `backup_health`. Real schedulers and workers in separate processes are in
`test_scheduler_processes.py`."""

import datetime as dt
import io
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from backup.errors import InvalidSchedule
from backup.models import Alert, Drill, Schedule, StoredBackup, Trigger
from backup.stored import retention, storage
from backup.stored.alerts import detect_missed, open_alerts
from backup.stored.backups import run_backup, set_keep
from backup.stored.drills import request_drill
from backup.stored.schedules import (
    enqueue_due,
    ensure_schedules,
    schedule_of,
    update_schedule,
)
from tenants.models import AuditLog, Tenant, TenantSettings

from . import factories as f
from .backup_support import pin_next_slot, snapshot

pytestmark = pytest.mark.django_db
Status = StoredBackup.Status
UTC = dt.UTC


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.fixture
def owner(tenant):
    user = f.UserFactory(email="owner@north.example")
    f.MembershipFactory(tenant=tenant, user=user, role="owner")
    return user


@pytest.fixture
def no_window(settings):
    """Slots run at their time exactly (no spreading offset): times in tests stay readable."""
    settings.BACKUP_SCHEDULE_WINDOW_MINUTES = 0


def daily_at(tenant, time="02:00", zone="UTC", **changes):
    return pin_next_slot(
        update_schedule(
            tenant, {"time": time, "timezone": zone, "drill": False, **changes}, user=None
        )
    )


# Schedules -------------------------------------------------------------------------------


def test_a_tenant_gets_a_daily_backup_at_two_in_its_own_time_zone(tenant):
    TenantSettings.objects.filter(tenant=tenant).update(timezone="Australia/Perth")
    schedule = schedule_of(tenant)
    assert (schedule.enabled, schedule.frequency, schedule.time) == (True, "daily", dt.time(2))
    assert schedule.timezone == "Australia/Perth"
    assert (schedule.drill, schedule.keep_last, schedule.keep_monthly) == (True, 7, 12)
    assert schedule.max_age_days == 365
    local = schedule.next_slot_at.astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert local.strftime("%H:%M") == "02:00"
    # Its slot may have passed while its run, at the tenant's offset in the window, is ahead.
    assert schedule.next_run_at > timezone.now()


def test_the_default_time_is_a_setting(tenant, settings):
    settings.BACKUP_SCHEDULE_TIME = "04:30"
    settings.BACKUP_SCHEDULE_ENABLED = False
    schedule = schedule_of(tenant)
    assert (schedule.time, schedule.enabled) == (dt.time(4, 30), False)


def test_the_scheduler_gives_every_tenant_without_a_schedule_the_default(tenant, other):
    assert ensure_schedules() == 2
    assert ensure_schedules() == 0
    assert Schedule.objects.count() == 2


def test_a_schedule_is_changed_and_audited(tenant, owner):
    schedule = update_schedule(
        tenant,
        {
            "frequency": "weekly",
            "weekday": "friday",
            "time": "23:15",
            "timezone": "Asia/Tokyo",
            "keep_last": 3,
            "options": {"include_audit_logs": True},
        },
        user=owner,
    )
    assert (schedule.frequency, schedule.weekday, schedule.time) == ("weekly", 4, dt.time(23, 15))
    local = schedule.next_slot_at.astimezone(dt.timezone(dt.timedelta(hours=9)))
    assert (local.weekday(), local.strftime("%H:%M")) == (4, "23:15")
    entry = AuditLog.objects.get(tenant=tenant, action="backup.schedule.updated")
    assert entry.actor == owner
    assert entry.details["before"]["frequency"] == "daily"
    assert entry.details["after"]["weekday"] == "friday"
    assert entry.details["after"]["options"] == {
        "include_audit_logs": True,
        "include_deleted": False,
        "include_files": False,
    }


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", "not a known IANA time zone"),
        ({"time": "25:00"}, "time", "not a time of day"),
        ({"time": "2am"}, "time", "not a time of day"),
        ({"frequency": "weekly"}, "weekday", "needs the day of the week"),
        ({"frequency": "weekly", "weekday": "someday"}, "weekday", "not a day of the week"),
        ({"frequency": "hourly"}, "frequency", "must be one of daily, weekly"),
        ({"keep_last": 0}, "keep_last", "from 1 to 1000"),
        ({"max_age_days": -5}, "max_age_days", "from 1 to 36500"),
        ({"keep_monthly": "12"}, "keep_monthly", "whole number"),
        ({"enabled": "yes"}, "enabled", "true or false"),
        ({"options": {"include_passwords": True}}, "options", "unknown export option"),
        ({"colour": "blue"}, "colour", "not a schedule setting"),
    ],
)
def test_bad_settings_are_refused_naming_the_field_and_change_nothing(
    tenant, changes, field, words
):
    schedule_of(tenant)
    before = snapshot()
    with pytest.raises(InvalidSchedule) as caught:
        update_schedule(tenant, changes, user=None)
    assert words in caught.value.errors[field]
    assert snapshot() == before


def test_every_bad_field_is_named_at_once(tenant):
    with pytest.raises(InvalidSchedule) as caught:
        update_schedule(tenant, {"time": "25:00", "timezone": "Nowhere", "keep_last": 0}, user=None)
    assert set(caught.value.errors) == {"time", "timezone", "keep_last"}


# The scheduler's pass -----------------------------------------------------------------------


def test_a_due_slot_is_enqueued_once_and_made(tenant, other, no_window, run_jobs):
    daily_at(tenant)
    daily_at(other, time="03:00")
    with run_jobs():
        first = enqueue_due(utc(2026, 12, 8, 2, 0))
    assert (first.due, len(first.enqueued)) == (1, 1)
    backup = StoredBackup.objects.get(pk=first.enqueued[0])
    assert (backup.tenant, backup.trigger, backup.status) == (
        tenant,
        Trigger.SCHEDULE,
        Status.SUCCEEDED,
    )
    assert backup.scheduled_for == utc(2026, 12, 8, 2, 0)
    assert storage.backup_storage().exists(backup.storage_name)
    schedule = Schedule.objects.get(tenant=tenant)
    assert schedule.last_slot_at == utc(2026, 12, 8, 2, 0)
    assert schedule.next_slot_at == utc(2026, 12, 9, 2, 0)
    # The same moment again, and a minute later: nothing more is due.
    assert enqueue_due(utc(2026, 12, 8, 2, 0)).enqueued == []
    assert enqueue_due(utc(2026, 12, 8, 2, 1)).enqueued == []
    assert StoredBackup.objects.filter(tenant=tenant).count() == 1
    assert AuditLog.objects.filter(tenant=tenant, action="backup.stored.created").count() == 1


def test_a_slot_another_scheduler_took_is_not_enqueued_twice(tenant, no_window):
    daily_at(tenant)
    # Another scheduler inserted this slot's backup but this one read the schedule before it
    # moved on: the unique constraint lets only one row in.
    StoredBackup.objects.create(
        tenant=tenant, trigger=Trigger.SCHEDULE, scheduled_for=utc(2026, 12, 8, 2, 0)
    )
    result = enqueue_due(utc(2026, 12, 8, 2, 0))
    assert (result.due, result.enqueued, result.already) == (1, [], 1)
    assert StoredBackup.objects.filter(tenant=tenant).count() == 1


def test_after_downtime_a_missed_slot_is_caught_up_once_and_reported(tenant, owner, no_window):
    daily_at(tenant)
    Schedule.objects.filter(tenant=tenant).update(
        next_slot_at=utc(2026, 12, 3, 2, 0), next_run_at=utc(2026, 12, 3, 2, 0)
    )
    result = enqueue_due(utc(2026, 12, 8, 9, 30))  # down from the 3rd to the 8th
    assert len(result.enqueued) == 1
    assert StoredBackup.objects.get().scheduled_for == utc(2026, 12, 8, 2, 0)
    alert = Alert.objects.get(tenant=tenant)
    assert alert.kind == Alert.Kind.MISSED
    assert "slot of 2026-12-03 02:00 UTC and the 4 after it" in alert.message
    assert "owner@north.example" in mail.outbox[-1].to
    assert "slot passed without a backup" in mail.outbox[-1].subject
    assert enqueue_due(utc(2026, 12, 8, 9, 31)).enqueued == []


def test_a_disabled_schedule_makes_no_backup(tenant, no_window):
    daily_at(tenant, enabled=False)
    assert enqueue_due(utc(2026, 12, 8, 2, 0)).due == 0


def test_a_weekly_schedule_runs_on_its_day_only(tenant, no_window):
    daily_at(tenant, frequency="weekly", weekday="tuesday")  # 2026-12-08 is a Tuesday
    made = [enqueue_due(utc(2026, 12, d, 2, 0)).enqueued for d in range(6, 16)]
    assert [len(m) for m in made] == [0, 0, 1, 0, 0, 0, 0, 0, 0, 1]


def test_the_window_spreads_tenants_and_each_still_runs_once(settings):
    settings.BACKUP_SCHEDULE_WINDOW_MINUTES = 60
    tenants = [f.TenantFactory() for _ in range(30)]
    for t in tenants:
        daily_at(t)
    enqueued = []
    for minute in range(0, 61):
        enqueued += enqueue_due(utc(2026, 12, 8, 2, 0) + dt.timedelta(minutes=minute)).enqueued
    assert len(enqueued) == 30
    starts = {s.last_slot_at for s in Schedule.objects.all()}
    assert starts == {utc(2026, 12, 8, 2, 0)}
    created = sorted(b.created_at for b in StoredBackup.objects.all())
    assert len(set(created)) > 1


def test_dst_skipped_slot_is_made_once(tenant, no_window):
    daily_at(tenant, time="02:30", zone="Europe/Berlin")
    Schedule.objects.filter(tenant=tenant).update(
        next_slot_at=utc(2026, 3, 28, 1, 30), next_run_at=utc(2026, 3, 28, 1, 30)
    )
    made = []
    for minutes in range(0, 60 * 48, 10):
        made += enqueue_due(utc(2026, 3, 28, 0, 0) + dt.timedelta(minutes=minutes)).enqueued
    slots = sorted(StoredBackup.objects.values_list("scheduled_for", flat=True))
    # 28th 02:30 CET, 29th 03:00 CEST (02:30 does not exist), nothing else before the 30th.
    assert slots == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0)]


# A worker killed during a scheduled backup ------------------------------------------------


def test_a_scheduled_backup_whose_worker_died_is_failed_and_alerted(tenant, owner, no_window):
    daily_at(tenant)
    result = enqueue_due(utc(2026, 12, 8, 2, 0))
    StoredBackup.objects.filter(pk=result.enqueued[0]).update(
        status=Status.RUNNING,
        worker="some-host-that-died:1",
        heartbeat_at=timezone.now() - dt.timedelta(hours=1),
    )
    run_backup("00000000-0000-0000-0000-000000000000")  # any job's sweep finds it
    backup = StoredBackup.objects.get(pk=result.enqueued[0])
    assert backup.status == Status.FAILED
    assert "sent no heartbeat" in backup.error
    alert = Alert.objects.get(tenant=tenant, kind=Alert.Kind.BACKUP_FAILED)
    assert "2026-12-08 02:00 UTC failed" in alert.message
    assert any("failed" in m.subject for m in mail.outbox)


# Restore drills ----------------------------------------------------------------------------


def test_a_scheduled_backup_is_drilled_verified_and_nothing_of_the_drill_remains(
    tenant, other, no_window, run_jobs
):
    daily_at(tenant, drill=True)
    tenants_before = set(Tenant.objects.values_list("pk", flat=True))
    with run_jobs():
        enqueue_due(utc(2026, 12, 8, 2, 0))
    backup = StoredBackup.objects.get(tenant=tenant)
    drill = Drill.objects.get(backup=backup)
    assert drill.status == Drill.Status.PASSED, drill.problems
    assert drill.restored == {k: v for k, v in backup.rows.items() if v}
    assert drill.seconds is not None and drill.seconds >= 0
    assert backup.last_drill == drill
    assert set(Tenant.objects.values_list("pk", flat=True)) == tenants_before
    assert AuditLog.objects.filter(tenant=tenant, action="backup.drill.passed").count() == 1


def test_a_drill_of_a_corrupted_file_fails_with_its_problems_and_alerts(
    tenant, owner, no_window, run_jobs
):
    daily_at(tenant, drill=False)
    with run_jobs():
        enqueue_due(utc(2026, 12, 8, 2, 0))
    backup = StoredBackup.objects.get(tenant=tenant)
    path = Path(storage.backup_storage().path(backup.storage_name))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    before = tenant_data()
    with run_jobs():
        drill = request_drill(backup)
    drill.refresh_from_db()
    assert drill.status == Drill.Status.FAILED
    assert drill.problems[0].startswith("The backup does not restore")
    assert tenant_data() == before
    alert = Alert.objects.get(kind=Alert.Kind.DRILL_FAILED)
    assert str(backup.pk) in alert.message
    assert any("restore drill failed" in m.subject for m in mail.outbox)


def test_a_drill_whose_counts_differ_from_the_statistics_fails_naming_the_table(
    tenant, no_window, run_jobs
):
    daily_at(tenant, drill=False)
    with run_jobs():
        enqueue_due(utc(2026, 12, 8, 2, 0))
    backup = StoredBackup.objects.get(tenant=tenant)
    backup.rows = {**backup.rows, "vehicle": backup.rows["vehicle"] + 1}
    backup.save()
    with run_jobs():
        drill = request_drill(backup)
    drill.refresh_from_db()
    assert drill.status == Drill.Status.FAILED
    assert any(p.startswith("Table vehicle:") for p in drill.problems)


# Retention ---------------------------------------------------------------------------------


def tenant_data():
    """Every row but the backup service's own records and the audit trail."""
    return {k: v for k, v in snapshot(audit=False).items() if not k.startswith("backup.")}


def _made(tenant, when, *, trigger=Trigger.SCHEDULE, status=Status.SUCCEEDED, keep=False):
    backup = StoredBackup.objects.create(
        tenant=tenant,
        trigger=trigger,
        status=status,
        keep=keep,
        scheduled_for=when if trigger == Trigger.SCHEDULE else None,
        finished_at=when,
    )
    StoredBackup.objects.filter(pk=backup.pk).update(created_at=when)
    backup.refresh_from_db()
    backup.storage_name = storage.storage_name(tenant.pk, backup.pk)
    if status == Status.SUCCEEDED:
        storage.backup_storage().save(backup.storage_name, io.BytesIO(b"x"))
    backup.save()
    return backup


def test_retention_keeps_the_last_n_plus_one_per_month_up_to_the_maximum_age(tenant):
    # Months in UTC: the tenant's own zone (a random one) may already be in December at noon
    # UTC on 30 November.
    update_schedule(
        tenant,
        {"keep_last": 3, "keep_monthly": 4, "max_age_days": 200, "timezone": "UTC"},
        user=None,
    )
    now = utc(2026, 12, 6, 12)
    daily = [_made(tenant, now - dt.timedelta(days=d)) for d in range(0, 240)]
    pruned = retention.prune_tenant(tenant, now=now)
    kept = list(StoredBackup.objects.filter(tenant=tenant).order_by("-created_at"))
    kept_days = [(now - b.created_at).days for b in kept]
    # The three most recent, then the last of November, October and September (December's
    # last is the newest).
    assert kept_days == [0, 1, 2, 6, 36, 67]
    assert len(pruned.deleted) == 240 - 6
    assert sorted(storage.stored_names()) == sorted(b.storage_name for b in kept)
    entry = AuditLog.objects.get(tenant=tenant, action="backup.stored.pruned")
    assert len(entry.details["backups"]) == 234
    del daily


def test_the_maximum_age_applies_to_backups_made_by_hand_too_but_never_to_kept_ones(tenant):
    update_schedule(tenant, {"max_age_days": 30}, user=None)
    now = utc(2026, 12, 6, 12)
    old_manual = _made(tenant, now - dt.timedelta(days=40), trigger=Trigger.PAGE)
    kept = _made(tenant, now - dt.timedelta(days=400), trigger=Trigger.PAGE, keep=True)
    young = _made(tenant, now - dt.timedelta(days=3), trigger=Trigger.API)
    retention.prune_tenant(tenant, now=now)
    assert set(StoredBackup.objects.values_list("pk", flat=True)) == {kept.pk, young.pk}
    assert not storage.backup_storage().exists(old_manual.storage_name)


def test_the_newest_good_backup_is_never_pruned_whatever_the_rules(tenant):
    update_schedule(tenant, {"keep_last": 1, "keep_monthly": 0, "max_age_days": 1}, user=None)
    now = utc(2026, 12, 6, 12)
    good = _made(tenant, now - dt.timedelta(days=90))
    failed = _made(tenant, now - dt.timedelta(days=2), status=Status.FAILED)
    retention.prune_tenant(tenant, now=now)
    assert list(StoredBackup.objects.values_list("pk", flat=True)) == [good.pk]
    del failed


def test_the_newest_verified_backup_is_kept_when_newer_ones_failed_their_drill(tenant):
    update_schedule(tenant, {"keep_last": 1, "keep_monthly": 0, "max_age_days": 1}, user=None)
    now = utc(2026, 12, 6, 12)
    verified = _made(tenant, now - dt.timedelta(days=10))
    Drill.objects.create(tenant=tenant, backup=verified, trigger="schedule", status="passed")
    unverified = _made(tenant, now - dt.timedelta(days=5))
    Drill.objects.create(tenant=tenant, backup=unverified, trigger="schedule", status="failed")
    newest = _made(tenant, now)
    retention.prune_tenant(tenant, now=now)
    assert set(StoredBackup.objects.values_list("pk", flat=True)) == {verified.pk, newest.pk}


def test_keep_marks_a_backup_out_of_the_rules_and_is_audited(tenant, owner):
    now = timezone.now()
    backup = _made(tenant, now - dt.timedelta(days=1), trigger=Trigger.PAGE)
    set_keep(backup, True, user=owner)
    assert backup.expires_at is None
    assert AuditLog.objects.filter(action="backup.stored.kept", actor=owner).exists()
    set_keep(backup, False, user=owner)
    assert backup.expires_at == backup.created_at + dt.timedelta(days=365)


def test_pruning_another_tenant_never_touches_this_one(tenant, other):
    update_schedule(other, {"max_age_days": 1}, user=None)
    now = utc(2026, 12, 6, 12)
    mine = [_made(tenant, now - dt.timedelta(days=d)) for d in (10, 20)]
    _made(other, now - dt.timedelta(days=10))
    _made(other, now - dt.timedelta(days=20))
    retention.prune_tenant(other, now=now)
    assert set(StoredBackup.objects.filter(tenant=tenant).values_list("pk", flat=True)) == {
        b.pk for b in mine
    }
    assert all(storage.backup_storage().exists(b.storage_name) for b in mine)


def test_the_repair_removes_files_without_a_row_and_fails_rows_without_a_file(tenant):
    now = timezone.now() - dt.timedelta(minutes=5)
    kept = _made(tenant, now)
    lost = _made(tenant, now - dt.timedelta(days=1))
    storage.backup_storage().delete(lost.storage_name)
    orphan = storage.storage_name(tenant.pk, "6b0f7c3e-0000-4000-8000-000000000001")
    storage.backup_storage().save(orphan, io.BytesIO(b"left by a prune cut short"))
    out = io.StringIO()
    call_command("prune_backups", stdout=out)
    assert f"Removed {orphan}: no backup names this file." in out.getvalue()
    assert f"Marked backup {lost.pk} failed" in out.getvalue()
    assert sorted(storage.stored_names()) == [kept.storage_name]
    lost.refresh_from_db()
    assert lost.status == Status.FAILED and "no longer in the backup storage" in lost.error


def test_an_interrupted_prune_is_repaired(tenant, monkeypatch):
    update_schedule(tenant, {"max_age_days": 1}, user=None)
    now = timezone.now()
    newest = _made(tenant, now - dt.timedelta(minutes=1))
    old = _made(tenant, now - dt.timedelta(days=5))

    def cut(name):
        raise SystemExit("killed between the rows and the files")

    monkeypatch.setattr(storage, "delete", cut)
    with pytest.raises(SystemExit):
        retention.prune_tenant(tenant, now=now)
    monkeypatch.undo()
    assert not StoredBackup.objects.filter(pk=old.pk).exists()
    assert storage.backup_storage().exists(old.storage_name)  # a file without a row, for now
    repaired = retention.repair_storage()
    assert repaired.files_removed == [old.storage_name]
    assert sorted(storage.stored_names()) == [newest.storage_name]


# Alerts and health -------------------------------------------------------------------------


def test_backup_health_exits_non_zero_while_a_slot_was_missed(tenant, no_window):
    daily_at(tenant)
    assert _health() == (0, "Automatic backups: all well.\n")
    Schedule.objects.filter(tenant=tenant).update(
        next_run_at=timezone.now() - dt.timedelta(hours=2)
    )
    code, out = _health()
    assert code == 1
    assert "north-pit  missed" in out and "no scheduler ran" in out
    assert open_alerts(tenant).count() == 1


def test_a_queued_scheduled_backup_with_no_worker_seen_is_reported(tenant, no_window):
    daily_at(tenant)
    backup = StoredBackup.objects.create(
        tenant=tenant,
        trigger=Trigger.SCHEDULE,
        scheduled_for=timezone.now() - dt.timedelta(hours=3),
    )
    StoredBackup.objects.filter(pk=backup.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=3)
    )
    assert detect_missed() == 1
    assert "no worker ran" in Alert.objects.get().message
    assert detect_missed() == 0  # raised once


def test_a_later_good_scheduled_backup_resolves_the_alerts(tenant, no_window, run_jobs):
    daily_at(tenant)
    Schedule.objects.filter(tenant=tenant).update(
        next_run_at=timezone.now() - dt.timedelta(hours=2)
    )
    detect_missed()
    assert open_alerts(tenant).exists()
    with run_jobs():
        enqueue_due()
    assert not open_alerts(tenant).exists()
    assert _health()[0] == 0


def _health() -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("backup_health", stdout=out)
    except SystemExit as exc:
        return int(exc.code), out.getvalue()
    return 0, out.getvalue()


# A hand-over to the task backend that was lost ------------------------------------------------


def test_a_backup_whose_hand_over_was_lost_is_enqueued_again_by_the_next_pass(
    tenant, no_window, run_jobs
):
    # A scheduler killed after its transaction committed, before the task backend (RQ) had
    # the jobs: rows queued, never stamped as handed over.
    daily_at(tenant)
    lost = StoredBackup.objects.create(
        tenant=tenant, trigger=Trigger.SCHEDULE, scheduled_for=utc(2026, 12, 7, 2, 0)
    )
    StoredBackup.objects.filter(pk=lost.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=5),
        storage_name=storage.storage_name(tenant.pk, lost.pk),
    )
    just_made = StoredBackup.objects.create(tenant=tenant, trigger=Trigger.PAGE)
    with run_jobs():
        result = enqueue_due(utc(2026, 12, 7, 13, 0))  # nothing due
    assert (result.due, result.requeued) == (0, 1)
    lost.refresh_from_db()
    assert lost.status == Status.SUCCEEDED and lost.enqueued_at is not None
    just_made.refresh_from_db()  # still within its minute: its hand-over may be under way
    assert just_made.status == Status.QUEUED
    assert enqueue_due(utc(2026, 12, 7, 13, 1)).requeued == 0


def test_handed_over_jobs_are_stamped(tenant, no_window, run_jobs):
    daily_at(tenant)
    with run_jobs():
        result = enqueue_due(utc(2026, 12, 8, 2, 0))
    backup = StoredBackup.objects.get(pk=result.enqueued[0])
    assert backup.enqueued_at is not None


def test_jobs_enqueued_together_are_the_rows_django_tasks_db_makes_one_by_one(tenant, settings):
    from django_tasks_db.models import DBTaskResult

    from backup.stored.tasks import enqueue_all, make_backup

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    make_backup.enqueue("one")
    enqueue_all(make_backup, ["two", "three"])
    rows = {row.args_kwargs["args"][0]: row for row in DBTaskResult.objects.all()}
    assert set(rows) == {"one", "two", "three"}
    for name in ("two", "three"):
        assert rows[name].args_kwargs == {"args": [name], "kwargs": {}}
        assert rows[name].enqueued_at is not None and rows[name].id != rows["one"].id
        for field in DBTaskResult._meta.concrete_fields:
            if field.name not in ("id", "enqueued_at", "args_kwargs"):
                assert getattr(rows[name], field.name) == getattr(rows["one"], field.name), field
    # What a worker takes: all three, the one enqueued first first.
    names = [row.args_kwargs["args"][0] for row in DBTaskResult.objects.ready()]
    assert names[0] == "one" and sorted(names[1:]) == ["three", "two"]
    assert rows["two"].task_result.task.name == make_backup.name
