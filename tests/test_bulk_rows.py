"""`backup.db.bulk_rows`: rows written without an instance each, as the ORM writes them."""

import datetime as dt
import uuid

import pytest
from django.db import IntegrityError, transaction
from django.tasks.signals import task_enqueued

from backup.db.bulk_rows import insert_rows, update_rows
from backup.models import Schedule, StoredBackup, Trigger
from backup.stored.schedules import ensure_schedules
from tenants.models import AuditLog

pytestmark = pytest.mark.django_db
SLOT = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)


def _values(row: StoredBackup) -> dict:
    skip = {"id", "created_at", "scheduled_for"}
    return {f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields} | {
        name: None for name in skip
    }


def test_rows_are_written_as_the_orm_writes_them(tenant, other):
    by_orm = StoredBackup.objects.create(
        tenant=tenant, trigger=Trigger.SCHEDULE, options={"include_audit": True}
    )
    keys = insert_rows(
        StoredBackup,
        [
            {"tenant_id": t.pk, "trigger": Trigger.SCHEDULE, "options": {"include_audit": True}}
            for t in (tenant, other)
        ],
    )
    written = StoredBackup.objects.in_bulk(keys)
    assert len(keys) == len(set(keys)) == len(written) == 2  # each its own default id
    for key in keys:
        row = written[key]
        assert isinstance(key, uuid.UUID)
        assert _values(row) | {"tenant_id": None} == _values(by_orm) | {"tenant_id": None}
        assert row.rows == {} and row.status == "queued" and row.created_at >= by_orm.created_at
    assert {written[k].tenant_id for k in keys} == {tenant.pk, other.pk}


def test_conflicting_rows_are_skipped_and_only_the_written_ones_named(tenant, other):
    first = StoredBackup.objects.create(
        tenant=tenant, trigger=Trigger.SCHEDULE, scheduled_for=SLOT, storage_name="kept"
    )
    rows = [
        {"id": uuid.uuid4(), "tenant_id": t.pk, "trigger": "schedule", "scheduled_for": SLOT}
        for t in (tenant, other)
    ]
    written = insert_rows(StoredBackup, rows, skip_conflicts=True)
    assert written == [rows[1]["id"]]
    assert StoredBackup.objects.get(tenant=tenant).pk == first.pk
    assert StoredBackup.objects.get(pk=first.pk).storage_name == "kept"
    assert insert_rows(StoredBackup, rows, skip_conflicts=True) == []
    assert StoredBackup.objects.count() == 2


def test_a_conflict_not_skipped_writes_nothing(tenant, other):
    StoredBackup.objects.create(tenant=tenant, trigger="schedule", scheduled_for=SLOT)
    rows = [
        {"tenant_id": t.pk, "trigger": "schedule", "scheduled_for": SLOT} for t in (other, tenant)
    ]
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(StoredBackup, rows)
    assert list(StoredBackup.objects.values_list("tenant_id", flat=True)) == [tenant.pk]


def test_update_sets_only_the_given_rows_and_fields(tenant, other):
    ensure_schedules()
    before = {s.pk: s for s in Schedule.objects.all()}
    later = SLOT + dt.timedelta(days=1)
    updated = update_rows(Schedule, [{"pk": tenant.pk, "last_slot_at": SLOT, "next_run_at": later}])
    assert updated == 1
    mine, theirs = Schedule.objects.get(pk=tenant.pk), Schedule.objects.get(pk=other.pk)
    assert (mine.last_slot_at, mine.next_run_at) == (SLOT, later)
    assert mine.next_slot_at == before[tenant.pk].next_slot_at  # not given
    assert mine.updated_at == before[tenant.pk].updated_at  # auto_now left alone, as update()
    assert _schedule(theirs) == _schedule(before[other.pk])


def _schedule(s: Schedule) -> dict:
    return {f.attname: getattr(s, f.attname) for f in s._meta.concrete_fields}


def test_audit_entries_of_many_tenants(tenant, other):
    count_before = AuditLog.objects.count()
    rows = [
        {"tenant_id": t.pk, "action": "backup.test", "details": {"n": i}}
        for i, t in enumerate((tenant, other))
    ]
    insert_rows(AuditLog, rows)
    made = AuditLog.objects.filter(action="backup.test").order_by("details__n")
    assert AuditLog.objects.count() == count_before + 2
    assert [(e.tenant_id, e.details, e.actor_id, e.actor_email) for e in made] == [
        (tenant.pk, {"n": 0}, None, ""),
        (other.pk, {"n": 1}, None, ""),
    ]


def test_jobs_enqueued_together_send_the_signal_with_the_rows_as_stored(settings):
    from django_tasks_db.models import DBTaskResult

    from backup.stored.tasks import enqueue_all, make_backup

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    results = []

    def received(sender, task_result, **kwargs):
        results.append(task_result)

    task_enqueued.connect(received)
    try:
        enqueue_all(make_backup, ["two", "three"])
    finally:
        task_enqueued.disconnect(received)
    stored = {row.id: row.task_result for row in DBTaskResult.objects.all()}
    assert len(results) == 2 and {r.args[0] for r in results} == {"two", "three"}
    for result in results:
        row = stored[uuid.UUID(result.id)]
        assert (result.args, result.enqueued_at, result.status, result.task.name) == (
            row.args,
            row.enqueued_at,
            row.status,
            row.task.name,
        )
