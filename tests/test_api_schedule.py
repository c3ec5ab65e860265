"""The API of automatic backups: the tenant's schedule (read, changed, refused with the field
named and nothing saved), its open alerts, keep marks on stored backups and their restore
drills; access by role and tenant isolation."""

import datetime as dt
from pathlib import Path

import pytest
from django.core.cache import cache
from django.urls import reverse
from drf_spectacular.validation import validate_schema

from backup.models import Alert, Drill, Schedule, StoredBackup, Trigger
from backup.stored import storage
from backup.stored.alerts import raise_alert
from backup.stored.drills import request_drill
from backup.stored.schedules import EDITABLE, enqueue_due, update_schedule
from tenants.models import AuditLog, TenantSettings

from . import factories as f
from .backup_support import pin_next_slot, snapshot
from .test_api import client_for, member_of

pytestmark = pytest.mark.django_db
UTC = dt.UTC


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()  # throttle history lives in the default cache
    yield
    cache.clear()


@pytest.fixture
def owner(tenant):
    return member_of(tenant, "owner")


@pytest.fixture
def api(owner):
    return client_for(owner)


def schedule_url(slug: str = "north-pit") -> str:
    return reverse("backup-api:backup-schedule", kwargs={"tenant": slug})


def backup_url(backup: StoredBackup, slug: str = "north-pit") -> str:
    return reverse("backup-api:backup", kwargs={"tenant": slug, "id": str(backup.id)})


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"code", "message", "details"}
    assert body["code"] == code, body
    assert body["message"]
    return body


def made_by_hand(tenant, *, days_ago: int = 1) -> StoredBackup:
    """A backup that succeeded, made by hand `days_ago` days ago (its file is not needed)."""
    when = dt.datetime.now(UTC) - dt.timedelta(days=days_ago)
    backup = StoredBackup.objects.create(
        tenant=tenant, trigger=Trigger.API, status="succeeded", finished_at=when
    )
    StoredBackup.objects.filter(pk=backup.pk).update(
        created_at=when, expires_at=when + dt.timedelta(days=365)
    )
    backup.refresh_from_db()
    return backup


def scheduled_backup(tenant, run_jobs, *, drill: bool) -> StoredBackup:
    """A scheduled backup of its first slot after `backup_support.EPOCH`, made (and drilled,
    with `drill`) by the scheduler's pass and the jobs it enqueues."""
    schedule = update_schedule(
        tenant, {"time": "02:00", "timezone": "UTC", "drill": drill}, user=None
    )
    pin_next_slot(schedule)
    with run_jobs():
        enqueue_due(schedule.next_run_at)
    slot = schedule.next_slot_at
    backup = StoredBackup.objects.get(tenant=tenant, trigger=Trigger.SCHEDULE)
    assert backup.status == StoredBackup.Status.SUCCEEDED, backup.error
    assert backup.scheduled_for == slot
    return backup


# Reading the schedule --------------------------------------------------------------------------


def test_a_tenant_without_a_schedule_gets_the_defaults_in_its_own_time_zone(api, tenant):
    TenantSettings.objects.filter(tenant=tenant).update(timezone="Australia/Perth")
    response = api.get(schedule_url())
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {*EDITABLE, "next_slot_at", "next_run_at", "last_slot_at", "alerts"}
    assert body["enabled"] is True
    assert (body["frequency"], body["weekday"], body["time"]) == ("daily", None, "02:00")
    assert body["timezone"] == "Australia/Perth"
    assert (body["drill"], body["keep_last"], body["keep_monthly"]) == (True, 7, 12)
    assert body["max_age_days"] == 365
    assert body["last_slot_at"] is None
    next_slot = dt.datetime.fromisoformat(body["next_slot_at"])
    # The next run is ahead; its slot may have passed already when the tenant's offset in the
    # window is not (Perth's 02:00 is 18:00 UTC: the test also runs between 18:00 and 19:00).
    assert dt.datetime.fromisoformat(body["next_run_at"]) > dt.datetime.now(UTC)
    assert next_slot.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%H:%M") == "02:00"
    assert dt.datetime.fromisoformat(body["next_run_at"]) >= next_slot
    assert body["alerts"] == []
    assert not Schedule.objects.filter(tenant=tenant).exists()  # shown, saved by a change


def test_the_open_alerts_of_the_tenant_only_are_shown_newest_first(api, tenant, other):
    raise_alert(tenant, Alert.Kind.MISSED, "slot-1", "The backup of 2026-12-08 02:00 UTC ...")
    later = raise_alert(tenant, Alert.Kind.DRILL_FAILED, "b-2", "The restore drill ... failed")
    resolved = raise_alert(tenant, Alert.Kind.BACKUP_FAILED, "b-3", "Resolved since.")
    Alert.objects.filter(pk=resolved.pk).update(resolved_at=dt.datetime.now(UTC))
    Alert.objects.filter(pk=later.pk).update(created_at=dt.datetime.now(UTC) + dt.timedelta(1))
    raise_alert(other, Alert.Kind.MISSED, "slot-1", "Another tenant's alert.")
    alerts = api.get(schedule_url()).json()["alerts"]
    assert [(a["kind"], a["message"]) for a in alerts] == [
        ("drill_failed", "The restore drill ... failed"),
        ("missed", "The backup of 2026-12-08 02:00 UTC ..."),
    ]
    assert all(set(a) == {"kind", "message", "since"} for a in alerts)
    assert dt.datetime.fromisoformat(alerts[0]["since"]) > dt.datetime.now(UTC)


# Changing the schedule ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch"])
def test_the_settings_sent_change_the_others_stay_and_it_is_audited(api, tenant, owner, method):
    before = api.get(schedule_url()).json()
    changes = {
        "frequency": "weekly",
        "weekday": "friday",
        "time": "23:15",
        "timezone": "Asia/Tokyo",
        "keep_last": 3,
        "options": {"include_audit_logs": True},
    }
    response = getattr(api, method)(schedule_url(), changes, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert {name: body[name] for name in changes} == {
        **changes,
        "options": {"include_audit_logs": True, "include_deleted": False, "include_files": False},
    }
    for name in ("enabled", "drill", "keep_monthly", "max_age_days"):
        assert body[name] == before[name], name
    local = dt.datetime.fromisoformat(body["next_slot_at"]).astimezone(
        dt.timezone(dt.timedelta(hours=9))
    )
    assert (local.weekday(), local.strftime("%H:%M")) == (4, "23:15")
    assert api.get(schedule_url()).json() == body
    schedule = Schedule.objects.get(tenant=tenant)
    assert (schedule.weekday, schedule.time, schedule.updated_by) == (4, dt.time(23, 15), owner)
    entry = AuditLog.objects.get(tenant=tenant, action="backup.schedule.updated")
    assert entry.actor == owner
    assert entry.details["before"]["frequency"] == "daily"
    assert entry.details["after"]["weekday"] == "friday"
    assert entry.details["after"]["time"] == "23:15"


def test_a_whole_object_of_settings_is_accepted(api, tenant):
    settings = {
        "enabled": False,
        "frequency": "daily",
        "weekday": None,
        "time": "04:05",
        "timezone": "UTC",
        "options": {"include_audit_logs": False, "include_deleted": True, "include_files": False},
        "drill": False,
        "keep_last": 10,
        "keep_monthly": 0,
        "max_age_days": 30,
    }
    response = api.put(schedule_url(), settings, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert {name: body[name] for name in EDITABLE} == settings
    assert dt.datetime.fromisoformat(body["next_slot_at"]).strftime("%H:%M") == "04:05"


def test_a_weekday_is_taken_as_a_number_too(api):
    response = api.patch(schedule_url(), {"frequency": "weekly", "weekday": 0}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["weekday"] == "monday"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", "not a known IANA time zone"),
        ({"time": "25:00"}, "time", "not a time of day"),
        ({"frequency": "weekly"}, "weekday", "needs the day of the week"),
        ({"keep_last": 0}, "keep_last", "from 1 to 1000"),
        ({"keep_last": "7"}, "keep_last", "whole number"),
        ({"enabled": "yes"}, "enabled", "true or false"),
        ({"colour": "blue"}, "colour", "not a schedule setting"),
        ({"next_run_at": "2026-12-08T02:00:00+00:00"}, "next_run_at", "not a schedule setting"),
    ],
)
@pytest.mark.parametrize("method", ["put", "patch"])
def test_a_bad_setting_is_refused_naming_it_and_nothing_changes(
    api, tenant, changes, field, words, method
):
    before = snapshot()
    response = getattr(api, method)(schedule_url(), changes, format="json")
    body = assert_error(response, 400, "invalid_schedule")
    assert list(body["details"]) == [field]
    assert words in body["details"][field]
    assert field in body["message"]
    assert snapshot() == before


def test_every_bad_setting_is_named_at_once_and_good_ones_are_not_saved(api, tenant):
    api.get(schedule_url())
    before = snapshot()
    changes = {"time": "25:00", "timezone": "Nowhere", "keep_last": 0, "drill": False}
    body = assert_error(api.put(schedule_url(), changes, format="json"), 400, "invalid_schedule")
    assert set(body["details"]) == {"time", "timezone", "keep_last"}
    assert snapshot() == before


@pytest.mark.parametrize(
    ("content", "kind"),
    [("[]", "an array"), ('["time", "03:00"]', "an array"), ('"03:00"', "a string"),
     ("null", "null"), ("7", "a number"), ("true", "a boolean")],
)  # fmt: skip
def test_a_body_that_is_not_a_json_object_is_refused(api, tenant, content, kind):
    before = snapshot()
    response = api.generic("PUT", schedule_url(), content, content_type="application/json")
    body = assert_error(response, 400, "invalid_request")
    assert "must be a JSON object of schedule settings" in body["message"]
    assert f"not {kind}." in body["message"]
    assert snapshot() == before


def test_a_body_that_is_not_json_is_refused(api, tenant):
    before = snapshot()
    response = api.generic("PUT", schedule_url(), '{"time": ', content_type="application/json")
    assert_error(response, 400, "malformed_request")
    form = api.put(schedule_url(), "time=03%3A00", content_type="application/x-www-form-urlencoded")
    assert_error(form, 415, "unsupported_media_type")
    assert snapshot() == before


def test_a_new_maximum_age_moves_the_expiry_of_the_backups_but_not_of_kept_ones(api, tenant):
    backup, kept = made_by_hand(tenant), made_by_hand(tenant)
    api.patch(backup_url(kept), {"keep": True}, format="json")
    response = api.put(schedule_url(), {"max_age_days": 30}, format="json")
    assert response.status_code == 200, response.content
    expires = api.get(backup_url(backup)).json()["expires_at"]
    assert dt.datetime.fromisoformat(expires) == backup.created_at + dt.timedelta(days=30)
    assert api.get(backup_url(kept)).json()["expires_at"] is None


# Access --------------------------------------------------------------------------------------


def schedule_request(client, method: str, slug: str = "north-pit"):
    if method == "get":
        return client.get(schedule_url(slug))
    return getattr(client, method)(schedule_url(slug), {"keep_last": 3}, format="json")


@pytest.mark.parametrize("method", ["get", "put", "patch"])
@pytest.mark.parametrize("role", ["owner", "admin", "superuser"])
def test_owners_admins_and_superusers_may(tenant, method, role):
    user = f.UserFactory(is_superuser=True) if role == "superuser" else member_of(tenant, role)
    response = schedule_request(client_for(user), method)
    assert response.status_code == 200, response.content
    if method != "get":
        assert Schedule.objects.get(tenant=tenant).keep_last == 3
        entry = AuditLog.objects.get(tenant=tenant, action="backup.schedule.updated")
        assert entry.actor == user


@pytest.mark.parametrize("method", ["get", "put", "patch"])
def test_members_get_403(tenant, method):
    client = client_for(member_of(tenant, "member"))
    before = snapshot()
    response = schedule_request(client, method)
    assert_error(response, 403, "permission_denied")
    assert snapshot() == before


@pytest.mark.parametrize("method", ["get", "put", "patch"])
def test_owners_of_another_tenant_get_404(tenant, other, method):
    client = client_for(member_of(other, "owner"))
    before = snapshot()
    response = schedule_request(client, method)
    body = assert_error(response, 404, "not_found")
    assert "north-pit" in body["message"]
    assert snapshot() == before


@pytest.mark.parametrize("method", ["get", "put", "patch"])
def test_unknown_tenants_get_404(api, method):
    assert_error(schedule_request(api, method, slug="no-such-pit"), 404, "not_found")


@pytest.mark.parametrize("method", ["get", "put", "patch"])
def test_anonymous_gets_401(tenant, method):
    before = snapshot()
    response = schedule_request(client_for(), method)
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"
    assert snapshot() == before


def test_a_superuser_changes_another_tenants_schedule_through_its_slug(tenant, other):
    root = client_for(f.UserFactory(is_superuser=True))
    response = root.patch(schedule_url("south-pit"), {"keep_last": 2}, format="json")
    assert response.status_code == 200, response.content
    assert Schedule.objects.get(tenant=other).keep_last == 2
    assert not Schedule.objects.filter(tenant=tenant).exists()


# Keep marks ----------------------------------------------------------------------------------


def test_a_backup_shows_its_schedule_fields_and_no_verification_without_a_drill(api, tenant):
    backup = made_by_hand(tenant)
    body = api.get(backup_url(backup)).json()
    assert (body["keep"], body["scheduled_for"], body["verification"]) == (False, None, None)
    assert dt.datetime.fromisoformat(body["expires_at"]) == backup.expires_at


def test_keep_is_set_and_released_shown_in_the_list_and_the_expiry_and_audited(api, tenant, owner):
    backup = made_by_hand(tenant, days_ago=3)
    response = api.patch(backup_url(backup), {"keep": True}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["keep"], response.json()["expires_at"]) == (True, None)
    listed = api.get(reverse("backup-api:backups", kwargs={"tenant": "north-pit"})).json()
    assert [(b["id"], b["keep"], b["expires_at"]) for b in listed] == [(str(backup.id), True, None)]
    assert api.get(backup_url(backup)).json()["keep"] is True
    entry = AuditLog.objects.get(tenant=tenant, action="backup.stored.kept")
    assert (entry.actor, entry.details) == (owner, {"backup": str(backup.id)})

    response = api.patch(backup_url(backup), {"keep": False}, format="json")
    assert response.status_code == 200, response.content
    body = api.get(backup_url(backup)).json()
    assert body["keep"] is False
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert expires == backup.created_at + dt.timedelta(days=365)
    assert AuditLog.objects.filter(tenant=tenant, action="backup.stored.released").count() == 1


def test_keeping_a_kept_backup_again_changes_and_audits_nothing(api, tenant):
    backup = made_by_hand(tenant)
    api.patch(backup_url(backup), {"keep": True}, format="json")
    before = snapshot()
    response = api.patch(backup_url(backup), {"keep": True}, format="json")
    assert response.status_code == 200, response.content
    assert snapshot() == before


@pytest.mark.parametrize(
    ("content", "field", "words"),
    [
        ('{"keep": "true"}', "keep", "Must be true or false"),
        ('{"keep": 1}', "keep", "Must be true or false"),
        ('{"keep": null}', "keep", "may not be null"),
        ("{}", "keep", "required"),
        ('{"keep": true, "status": "failed"}', "status", "only keep can be changed"),
        ("[true]", "non_field_errors", "Expected a dictionary"),
    ],
)
def test_anything_but_a_boolean_keep_is_refused_and_changes_nothing(
    api, tenant, content, field, words
):
    backup = made_by_hand(tenant)
    before = snapshot()
    response = api.generic("PATCH", backup_url(backup), content, content_type="application/json")
    body = assert_error(response, 400, "invalid_request")
    assert words in " ".join(body["details"][field])
    assert snapshot() == before


def test_keep_from_a_form_is_refused(api, tenant):
    backup = made_by_hand(tenant)
    before = snapshot()
    response = api.patch(
        backup_url(backup), "keep=true", content_type="application/x-www-form-urlencoded"
    )
    assert_error(response, 415, "unsupported_media_type")
    assert snapshot() == before


@pytest.mark.parametrize(
    ("user", "status", "code"),
    [
        ("member", 403, "permission_denied"),
        ("other tenant's owner", 404, "not_found"),
        ("anonymous", 401, "not_authenticated"),
    ],
)
def test_keep_is_for_owners_admins_and_superusers_only(tenant, other, user, status, code):
    backup = made_by_hand(tenant)
    client = {
        "member": lambda: client_for(member_of(tenant, "member")),
        "other tenant's owner": lambda: client_for(member_of(other, "owner")),
        "anonymous": client_for,
    }[user]()
    before = snapshot()
    assert_error(client.patch(backup_url(backup), {"keep": True}, format="json"), status, code)
    assert snapshot() == before


@pytest.mark.parametrize("role", ["admin", "superuser"])
def test_admins_and_superusers_may_keep(tenant, role):
    user = f.UserFactory(is_superuser=True) if role == "superuser" else member_of(tenant, role)
    backup = made_by_hand(tenant)
    response = client_for(user).patch(backup_url(backup), {"keep": True}, format="json")
    assert response.status_code == 200, response.content
    backup.refresh_from_db()
    assert backup.keep is True


def test_another_tenants_backup_cannot_be_kept_through_this_tenants_url(api, tenant, other):
    theirs = made_by_hand(other)
    before = snapshot()
    response = api.patch(backup_url(theirs), {"keep": True}, format="json")
    body = assert_error(response, 404, "not_found")
    assert str(theirs.id) in body["message"]
    assert snapshot() == before


# Verification --------------------------------------------------------------------------------


def test_a_drilled_scheduled_backup_shows_it_was_verified(api, tenant, run_jobs):
    backup = scheduled_backup(tenant, run_jobs, drill=True)
    drill = Drill.objects.get(backup=backup)
    body = api.get(backup_url(backup)).json()
    assert body["trigger"] == "schedule"
    assert dt.datetime.fromisoformat(body["scheduled_for"]) == backup.scheduled_for
    assert body["verification"] == {
        "status": "passed",
        "label": "Verified",
        "seconds": drill.seconds,
        "finished_at": body["verification"]["finished_at"],
        "problems": [],
    }
    assert dt.datetime.fromisoformat(body["verification"]["finished_at"]) == drill.finished_at
    listed = api.get(reverse("backup-api:backups", kwargs={"tenant": "north-pit"})).json()
    assert [b["verification"]["status"] for b in listed] == ["passed"]


def test_a_queued_drill_shows_and_a_failed_one_lists_its_problems(api, tenant, run_jobs):
    backup = scheduled_backup(tenant, run_jobs, drill=False)
    assert api.get(backup_url(backup)).json()["verification"] is None
    request_drill(backup)  # not run: the worker has not taken it yet
    queued = api.get(backup_url(backup)).json()["verification"]
    assert queued == {
        "status": "queued",
        "label": "Queued",
        "seconds": None,
        "finished_at": None,
        "problems": [],
    }
    path = Path(storage.backup_storage().path(backup.storage_name))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    Drill.objects.filter(backup=backup).delete()
    with run_jobs():
        request_drill(backup)
    failed = api.get(backup_url(backup)).json()["verification"]
    assert (failed["status"], failed["label"]) == ("failed", "Verification failed")
    assert failed["problems"] and failed["problems"][0].startswith("The backup does not restore")
    assert failed["seconds"] is not None and failed["finished_at"]


# Schema --------------------------------------------------------------------------------------


def test_the_schema_documents_the_schedule_and_keep(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    paths = schema["paths"]
    schedule = paths["/api/v1/tenants/{tenant}/backup-schedule/"]
    backup = paths["/api/v1/tenants/{tenant}/backups/{id}/"]
    operations = [schedule["get"], schedule["put"], schedule["patch"], backup["patch"]]
    error = "#/components/schemas/Error"
    for operation in operations:
        assert operation["summary"] and operation["description"]
        for code in ("401", "403", "404"):
            content = operation["responses"][code]["content"]["application/json"]["schema"]
            assert content["$ref"] == error
    for operation in operations[1:]:
        assert list(operation["requestBody"]["content"]) == ["application/json"]
        assert "400" in operation["responses"]
    components = schema["components"]["schemas"]
    assert set(components["Schedule"]["properties"]) == {
        *EDITABLE,
        "next_slot_at",
        "next_run_at",
        "last_slot_at",
        "alerts",
    }
    assert set(components["ScheduleSettingsRequest"]["properties"]) == set(EDITABLE)
    assert components["ScheduleSettingsRequest"].get("required", []) == []
    stored = components["StoredBackup"]["properties"]
    assert {"keep", "scheduled_for", "expires_at", "verification"} <= set(stored)
    assert set(components["Verification"]["properties"]) == {
        "status",
        "label",
        "seconds",
        "finished_at",
        "problems",
    }
