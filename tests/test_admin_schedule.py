"""Admin > Backup, automatic backups: the schedule shown and edited on the tenant's page, the
banner of open alerts, each stored backup's verification, slot and retention with its Keep /
Release button, and every tenant's alerts on the admin index for superusers; who may do what."""

import datetime as dt
import html
import re
import zoneinfo
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backup.models import Alert, Drill, Schedule, StoredBackup, Trigger
from backup.stored import backups
from backup.stored.alerts import detect_missed, open_alerts, raise_alert
from backup.stored.schedules import enqueue_due, schedule_of, update_schedule
from tenants.models import AuditLog, Tenant
from tests.backup_support import pin_next_slot, snapshot
from tests.test_admin_stored import login as stored_login
from tests.test_admin_stored import url

pytestmark = pytest.mark.django_db


def login(client: Client, tenant: Tenant | None = None, role: str = "owner", **user: Any) -> Any:
    """Owners by default here: the schedule is theirs to change."""
    return stored_login(client, tenant, role, **user)


def keep_url(backup: StoredBackup, tenant: Tenant | None = None) -> str:
    return url(tenant or backup.tenant, "backup_stored_keep", backup_id=backup.id)


def text(response: Any) -> str:
    return html.unescape(re.sub(r"\s+", " ", response.content.decode()))


def field_row(body: str, name: str) -> str:
    """The markup of one field of the schedule form: its label, errors and input."""
    form = body.index('id="backup-schedule-form"')
    start = body.index(f'<div class="form-row field-{name}">', form)
    end = body.find('<div class="form-row', start + 1)
    return body[start : end if end != -1 else body.index("</fieldset>", start)]


def row_of(body: str, backup: StoredBackup) -> str:
    """The backup's row in the list, with its second line (verification and retention)."""
    return re.search(
        rf'<tr id="backup-{backup.id}".*?</tr>(\s*<tr id="backup-{backup.id}-more".*?</tr>)?', body
    )[0]


def database() -> dict[str, list[dict[str, Any]]]:
    """Every row of the project, sessions left out (a login writes its own)."""
    rows = snapshot()
    del rows["sessions.Session"]
    return rows


def form_data(**changes: Any) -> dict[str, Any]:
    """The schedule form as a browser posts it: an unticked checkbox is not sent."""
    data = {
        "enabled": "on",
        "frequency": "weekly",
        "weekday": "wednesday",
        "time": "03:45",
        "timezone": "Europe/Berlin",
        "include_audit_logs": "on",
        "drill": "on",
        "keep_last": "5",
        "keep_monthly": "6",
        "max_age_days": "90",
        **changes,
    }
    return {name: value for name, value in data.items() if value is not None}


def made_backup(tenant: Tenant, run_jobs: Any) -> StoredBackup:
    """A stored backup that succeeded, made by the worker's code (in this process)."""
    with run_jobs():
        backup = backups.request_backup(tenant, user=None, trigger=Trigger.PAGE)
    backup.refresh_from_db()
    assert backup.status == StoredBackup.Status.SUCCEEDED, backup.error
    return backup


# -- the schedule --------------------------------------------------------------------------------


def test_the_page_shows_the_schedule_and_a_form_filled_with_it(client: Client, tenant: Tenant):
    login(client, tenant)
    schedule = update_schedule(
        tenant,
        {
            "frequency": "weekly",
            "weekday": "friday",
            "time": "23:15",
            "timezone": "Asia/Tokyo",
            "drill": False,
            "keep_last": 3,
            "keep_monthly": 4,
            "max_age_days": 200,
            "options": {"include_audit_logs": True},
        },
        user=None,
    )
    response = client.get(url(tenant))
    assert response.status_code == 200
    body = text(response)
    summary = re.search(r'<dl class="summary" id="backup-schedule-summary">.*?</dl>', body)[0]
    assert 'Automatic backups</dt><dd id="schedule-enabled">On' in summary
    assert "Weekly on Friday at 23:15, Asia/Tokyo time" in summary
    local = schedule.next_slot_at.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert local.strftime("%a %Y-%m-%d 23:15 Asia/Tokyo") in summary
    assert f"= {schedule.next_slot_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC" in summary
    assert "with audit logs, without deleted records" in summary
    assert 'id="schedule-drill">Off' in summary
    assert (
        "Keep the last 3 scheduled backups and the last of each of 4 months; none older than "
        "200 days" in summary
    )

    assert 'value="23:15"' in field_row(body, "time")
    assert 'value="Asia/Tokyo"' in field_row(body, "timezone")
    assert 'list="backup-time-zones"' in field_row(body, "timezone")
    assert '<option value="friday" selected>' in field_row(body, "weekday")
    assert '<option value="weekly" selected>' in field_row(body, "frequency")
    assert "checked" in field_row(body, "enabled")
    assert "checked" in field_row(body, "include_audit_logs")
    assert "checked" not in field_row(body, "include_deleted")
    assert "checked" not in field_row(body, "drill")
    assert 'value="3"' in field_row(body, "keep_last")
    assert '<option value="Europe/Berlin">' in body  # the time zones offered
    assert '<details id="backup-schedule-edit">' in body  # closed until there is an error


def test_a_disabled_schedule_says_there_is_no_next_backup(client: Client, tenant: Tenant):
    login(client, tenant)
    update_schedule(tenant, {"enabled": False}, user=None)
    body = text(client.get(url(tenant)))
    assert 'id="schedule-enabled">Off' in body
    assert "None: automatic backups are off." in body


def test_the_form_saves_the_schedule_and_the_change_is_audited(client: Client, tenant: Tenant):
    person = login(client, tenant)
    before = schedule_of(tenant)
    assert (before.frequency, before.drill) == ("daily", True)

    response = client.post(url(tenant, "backup_schedule"), form_data())
    assert response.status_code == 302
    assert response["Location"] == f"{url(tenant)}#backup-schedule"

    schedule = Schedule.objects.get(tenant=tenant)
    assert schedule.enabled and schedule.drill
    assert (schedule.frequency, schedule.weekday) == ("weekly", 2)
    assert (schedule.time, schedule.timezone) == (dt.time(3, 45), "Europe/Berlin")
    assert schedule.options == {
        "include_audit_logs": True,
        "include_deleted": False,
        "include_files": False,
    }
    assert (schedule.keep_last, schedule.keep_monthly, schedule.max_age_days) == (5, 6, 90)
    assert schedule.updated_by == person
    local = schedule.next_slot_at.astimezone(zoneinfo.ZoneInfo("Europe/Berlin"))
    assert (local.weekday(), local.strftime("%H:%M")) == (2, "03:45")

    entry = AuditLog.objects.get(tenant=tenant, action="backup.schedule.updated")
    assert entry.actor == person
    assert entry.details["before"]["frequency"] == "daily"
    assert entry.details["after"]["weekday"] == "wednesday"
    assert entry.details["after"]["time"] == "03:45"

    body = text(client.get(response["Location"]))
    assert f"Schedule saved. The next backup is due on {local:%Y-%m-%d at %H:%M} Europe/Berlin" in (
        body
    )
    assert "Weekly on Wednesday at 03:45, Europe/Berlin time" in body


def test_unticked_boxes_turn_things_off_and_a_daily_schedule_drops_its_day(
    client: Client, tenant: Tenant
):
    login(client, tenant)
    data = form_data(
        enabled=None, drill=None, include_audit_logs=None, frequency="daily", weekday="friday"
    )
    assert client.post(url(tenant, "backup_schedule"), data).status_code == 302
    schedule = Schedule.objects.get(tenant=tenant)
    assert (schedule.enabled, schedule.drill, schedule.weekday) == (False, False, None)
    assert schedule.options == {
        "include_audit_logs": False,
        "include_deleted": False,
        "include_files": False,
    }


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"timezone": "Mars/Olympus_Mons"},
            "timezone",
            "'Mars/Olympus_Mons' is not a known IANA time zone (e.g. Europe/Berlin, UTC).",
        ),
        (
            {"time": "25:00"},
            "time",
            "'25:00' is not a time of day as HH:MM (00:00 to 23:59).",
        ),
        (
            {"frequency": "weekly", "weekday": ""},
            "weekday",
            "A weekly schedule needs the day of the week (monday ... sunday).",
        ),
        ({"keep_last": "0"}, "keep_last", "Must be a whole number from 1 to 1000, not 0."),
        # What the form itself cannot parse never reaches the service.
        ({"max_age_days": "a year"}, "max_age_days", "Enter a whole number."),
    ],
)
def test_a_bad_setting_is_shown_beside_its_field_and_nothing_is_saved(
    client: Client, tenant: Tenant, changes: dict[str, str], field: str, message: str
) -> None:
    login(client, tenant)
    assert client.get(url(tenant)).status_code == 200  # the tenant's default schedule is made
    before = database()

    response = client.post(url(tenant, "backup_schedule"), form_data(**changes))
    assert response.status_code == 400
    body = text(response)
    row = field_row(body, field)
    assert 'class="errorlist' in row and message in row
    assert body.count(message) == 1  # beside its field only
    assert "Nothing was saved: please correct the error below." in body
    assert '<details open id="backup-schedule-edit">' in body
    # What was typed is kept, to be corrected.
    for name, value in changes.items():
        if value:
            assert f'value="{value}"' in field_row(body, name)
    # The rest of the page is all there.
    for part in ("backup-stats", "backup-stored-table", "backup-export-form", "backup-import-form"):
        assert f'id="{part}"' in body, part
    assert database() == before


def test_several_bad_settings_are_each_shown_beside_their_field(client: Client, tenant: Tenant):
    login(client, tenant)
    response = client.post(
        url(tenant, "backup_schedule"),
        form_data(time="7pm", timezone="Nowhere", keep_monthly="5000"),
    )
    assert response.status_code == 400
    body = text(response)
    assert "'7pm' is not a time of day" in field_row(body, "time")
    assert "'Nowhere' is not a known IANA time zone" in field_row(body, "timezone")
    assert "from 0 to 1200, not 5000" in field_row(body, "keep_monthly")
    assert "Nothing was saved: please correct the errors below." in body
    assert not AuditLog.objects.filter(action="backup.schedule.updated").exists()


def test_the_schedule_form_is_post_only(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    assert client.get(url(tenant, "backup_schedule")).status_code == 405


# -- alerts --------------------------------------------------------------------------------------


def test_the_banner_shows_open_alerts_until_a_good_scheduled_backup_resolves_them(
    client: Client, tenant: Tenant, run_jobs: Any, settings: Any
) -> None:
    settings.BACKUP_SCHEDULE_WINDOW_MINUTES = 0
    login(client, tenant)
    assert 'id="backup-alerts"' not in text(client.get(url(tenant)))

    update_schedule(tenant, {"drill": False}, user=None)
    Schedule.objects.filter(tenant=tenant).update(
        next_run_at=timezone.now() - dt.timedelta(hours=2)
    )
    assert detect_missed() == 1
    alert = Alert.objects.get(tenant=tenant)
    body = text(client.get(url(tenant)))
    banner = re.search(r'<div class="module" id="backup-alerts".*?</div>', body)[0]
    assert "Slot passed without a backup" in banner
    assert alert.message in banner
    assert f"since {alert.created_at:%Y-%m-%d %H:%M} UTC" in html.unescape(
        re.sub(r"<[^>]+>", "", banner)
    )

    with run_jobs():
        enqueue_due()  # catches the slot up: the backup succeeds
    assert not open_alerts(tenant).exists()
    assert 'id="backup-alerts"' not in text(client.get(url(tenant)))


def test_the_banner_shows_this_tenants_alerts_only(client: Client, tenant: Tenant, other: Tenant):
    login(client, tenant)
    raise_alert(other, Alert.Kind.BACKUP_FAILED, "x", "South Pit's backup failed: disk full.")
    assert 'id="backup-alerts"' not in text(client.get(url(tenant)))


# -- the stored backups: verification, slot, retention --------------------------------------------


def test_badges_say_whether_each_backup_was_verified(
    client: Client, tenant: Tenant, run_jobs: Any
) -> None:
    login(client, tenant)
    unverified, passed, failed, verifying = (made_backup(tenant, run_jobs) for _ in range(4))
    started = timezone.now() - dt.timedelta(minutes=5)
    Drill.objects.create(
        tenant=tenant,
        backup=passed,
        trigger=Trigger.SCHEDULE,
        status=Drill.Status.PASSED,
        started_at=started,
        finished_at=started + dt.timedelta(seconds=3.2),
    )
    Drill.objects.create(
        tenant=tenant,
        backup=failed,
        trigger=Trigger.SCHEDULE,
        status=Drill.Status.FAILED,
        started_at=started,
        finished_at=started + dt.timedelta(seconds=1),
        problems=["Table vehicle: 2 rows restored, the backup says 3."],
    )
    Drill.objects.create(
        tenant=tenant,
        backup=verifying,
        trigger=Trigger.SCHEDULE,
        status=Drill.Status.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        worker="elsewhere:1",
    )
    body = text(client.get(url(tenant)))
    assert "Verified in 3.2 s" in row_of(body, passed)
    failed_row = row_of(body, failed)
    assert "<summary>Verification failed</summary>" in failed_row
    assert "<li>Table vehicle: 2 rows restored, the backup says 3.</li>" in failed_row
    assert "Verifying" in row_of(body, verifying)
    assert "Not verified" in row_of(body, unverified)


def test_a_real_drill_shows_as_verified_with_its_time(
    client: Client, tenant: Tenant, run_jobs: Any
) -> None:
    from backup.stored.drills import request_drill

    login(client, tenant)
    backup = made_backup(tenant, run_jobs)
    with run_jobs():
        request_drill(backup)
    assert re.search(r"Verified in \d+\.\d s", row_of(text(client.get(url(tenant))), backup))


def test_a_scheduled_backup_shows_its_slot_and_when_it_expires(
    client: Client, tenant: Tenant, run_jobs: Any, settings: Any
) -> None:
    settings.BACKUP_SCHEDULE_WINDOW_MINUTES = 0
    login(client, tenant)
    pin_next_slot(
        update_schedule(tenant, {"time": "02:00", "timezone": "UTC", "drill": False}, user=None)
    )
    with run_jobs():
        enqueue_due(dt.datetime(2026, 12, 8, 2, 0, tzinfo=dt.UTC))
    backup = StoredBackup.objects.get(tenant=tenant)
    assert backup.status == StoredBackup.Status.SUCCEEDED, backup.error
    row = row_of(text(client.get(url(tenant))), backup)
    assert re.search(
        r"Schedule<br><span class=\"slot\">slot <time[^>]*>2026-12-08 02:00</time>", row
    )
    assert f'Expires <time datetime="{backup.expires_at.isoformat()}">' in row
    assert f"{backup.expires_at:%Y-%m-%d}</time>" in row


def test_keep_and_release_toggle_the_mark_and_are_audited(
    client: Client, tenant: Tenant, run_jobs: Any
) -> None:
    person = login(client, tenant, "admin")
    backup = made_backup(tenant, run_jobs)
    expires = backup.created_at + dt.timedelta(days=schedule_of(tenant).max_age_days)
    assert backup.expires_at == expires
    row = row_of(text(client.get(url(tenant))), backup)
    assert f"{expires:%Y-%m-%d}</time>" in row
    assert f'action="{keep_url(backup)}"' in row
    assert 'name="action" value="keep"' in row and "Release" not in row

    response = client.post(keep_url(backup), {"action": "keep"})
    assert response.status_code == 302
    assert response["Location"] == f"{url(tenant)}#backup-{backup.id}"
    backup.refresh_from_db()
    assert (backup.keep, backup.expires_at) == (True, None)
    kept = AuditLog.objects.get(tenant=tenant, action="backup.stored.kept")
    assert kept.actor == person and kept.details == {"backup": str(backup.id)}
    body = text(client.get(url(tenant)))
    assert "is kept until you release it" in body
    row = row_of(body, backup)
    assert "Kept" in row and "Expires" not in row
    assert 'name="action" value="release"' in row

    assert client.post(keep_url(backup), {"action": "release"}).status_code == 302
    backup.refresh_from_db()
    assert (backup.keep, backup.expires_at) == (False, expires)
    released = AuditLog.objects.get(tenant=tenant, action="backup.stored.released")
    assert released.actor == person
    assert f"released to the retention rules. It expires on {expires:%Y-%m-%d}." in text(
        client.get(url(tenant))
    )


def test_keep_without_a_valid_action_changes_nothing(
    client: Client, tenant: Tenant, run_jobs: Any
) -> None:
    login(client, tenant)
    backup = made_backup(tenant, run_jobs)
    before = database()
    for data in ({}, {"action": "forever"}):
        response = client.post(keep_url(backup), data)
        assert response.status_code == 302
    assert database() == before
    assert "Nothing was changed: the form said neither keep nor release." in text(
        client.get(url(tenant))
    )


# -- who may ---------------------------------------------------------------------------------------


def _posts(tenant: Tenant, backup: StoredBackup) -> list[tuple[str, dict[str, str]]]:
    return [
        (url(tenant, "backup_schedule"), form_data()),
        (keep_url(backup, tenant), {"action": "keep"}),
    ]


def test_a_member_is_refused(client: Client, tenant: Tenant, run_jobs: Any) -> None:
    backup = made_backup(tenant, run_jobs)
    schedule_of(tenant)
    login(client, tenant, "member")
    before = database()
    for target, data in _posts(tenant, backup):
        assert client.post(target, data).status_code == 403, target
    assert database() == before


def test_another_tenants_owner_learns_nothing(
    client: Client, tenant: Tenant, other: Tenant, run_jobs: Any
) -> None:
    backup = made_backup(tenant, run_jobs)
    schedule_of(tenant)
    schedule_of(other)
    login(client, other)
    before = database()
    for target, data in _posts(tenant, backup):
        assert client.post(target, data).status_code == 404, target
    # North's backup named under south, the tenant this owner does manage, is not found either.
    assert client.post(keep_url(backup, other), {"action": "keep"}).status_code == 404
    assert database() == before


def test_anonymous_is_sent_to_the_login(client: Client, tenant: Tenant, run_jobs: Any) -> None:
    backup = made_backup(tenant, run_jobs)
    schedule_of(tenant)
    before = database()
    for target, data in _posts(tenant, backup):
        response = client.post(target, data)
        assert response.status_code == 302, target
        assert response["Location"].startswith(reverse("admin:login") + "?next="), target
    assert database() == before


@pytest.mark.parametrize("who", ["admin", "superuser"])
def test_admins_and_superusers_may(client: Client, tenant: Tenant, run_jobs: Any, who: str) -> None:
    backup = made_backup(tenant, run_jobs)
    if who == "superuser":
        login(client, is_superuser=True)
    else:
        login(client, tenant, who)
    for target, data in _posts(tenant, backup):
        assert client.post(target, data).status_code == 302, target
    assert Schedule.objects.get(tenant=tenant).timezone == "Europe/Berlin"
    backup.refresh_from_db()
    assert backup.keep


# -- the admin index -------------------------------------------------------------------------------


def test_the_admin_index_lists_every_tenants_alerts_for_superusers_only(
    client: Client, tenant: Tenant, other: Tenant
) -> None:
    north = raise_alert(tenant, Alert.Kind.MISSED, "slot-1", "North Pit's slot passed.")
    south = raise_alert(other, Alert.Kind.DRILL_FAILED, "backup-1", "South Pit's drill failed.")
    raise_alert(other, Alert.Kind.BACKUP_FAILED, "backup-2", "An old failure.")
    Alert.objects.filter(key="backup-2").update(resolved_at=timezone.now())

    login(client, is_superuser=True)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    body = text(response)
    listed = re.search(r'<div class="module" id="backup-alerts">.*?</div>', body)[0]
    for alert, tenant_shown in ((north, tenant), (south, other)):
        assert alert.message in listed
        assert f'<a href="{url(tenant_shown)}">{tenant_shown.name}</a>' in listed
    assert "Restore drill failed" in listed and "Slot passed without a backup" in listed
    assert "An old failure." not in listed  # resolved
    assert listed.index("South Pit's drill failed.") < listed.index("North Pit's slot passed.")

    # Staff who are not superusers, even an owner of a tenant with alerts, do not see the list.
    client.logout()
    login(client, tenant, "owner")
    body = text(client.get(reverse("admin:index")))
    assert 'id="backup-alerts"' not in body and "North Pit's slot passed." not in body
    client.logout()
    login(client)
    body = text(client.get(reverse("admin:index")))
    assert 'id="backup-alerts"' not in body and "South Pit's drill failed." not in body


def test_the_admin_index_shows_no_alerts_module_when_all_is_well(client: Client, tenant: Tenant):
    login(client, is_superuser=True)
    body = text(client.get(reverse("admin:index")))
    assert 'id="backup-alerts"' not in body
    assert "Export and import" in body


def test_a_refused_form_makes_no_schedule_for_a_tenant_without_one(
    client: Client, tenant: Tenant
) -> None:
    login(client, tenant)
    before = database()
    response = client.post(url(tenant, "backup_schedule"), form_data(time="25:00"))
    assert response.status_code == 400
    body = text(response)
    assert "'25:00' is not a time of day" in field_row(body, "time")
    assert "Daily" in body  # the default schedule is shown, not saved
    assert database() == before


def test_opening_the_page_saves_no_schedule(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    before = database()
    assert client.get(url(tenant, "backup_tenant")).status_code == 200
    assert database() == before
