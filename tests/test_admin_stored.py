"""Admin > Backup, stored backups: the list, create, download behind the password, delete, and
restores of a stored backup through their preview, confirmation and result; who may do what."""

import hashlib
import html
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from backup.models import Restore, StoredBackup, Trigger
from backup.restore import ImportOptions
from backup.statistics import tenant_statistics
from backup.stored import backups, restores
from backup.stored.storage import backup_storage
from tenants.models import AuditLog, Tenant
from tests import factories as f
from tests.backup_support import export_bytes, populate, snapshot, tenant_snapshot
from tests.factories.auth import PASSWORD

pytestmark = pytest.mark.django_db

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
EMPTY = "No stored backups yet: Create backup makes one in the background."


@pytest.fixture
def tenant() -> Tenant:
    tenant = f.TenantFactory(name="North Quarry", slug="north")
    populate(tenant)
    return tenant


def login(client: Client, tenant: Tenant | None = None, role: str = "admin", **user: Any) -> Any:
    person = f.UserFactory(is_staff=True, **user)
    if tenant is not None:
        f.MembershipFactory(tenant=tenant, user=person, role=role)
    client.force_login(person)
    return person


def url(tenant: Tenant, name: str = "backup_tenant", **kwargs: Any) -> str:
    return reverse(f"admin:{name}", kwargs={"slug": tenant.slug, **kwargs})


def backup_url(backup: StoredBackup, action: str, tenant: Tenant | None = None) -> str:
    return url(tenant or backup.tenant, f"backup_stored_{action}", backup_id=backup.id)


def restore_url(restore: Restore, action: str = "", tenant: Tenant | None = None) -> str:
    name = f"backup_restore_{action}" if action else "backup_restore"
    return url(tenant or restore.tenant, name, restore_id=restore.id)


def text(response: Any) -> str:
    return html.unescape(re.sub(r"\s+", " ", response.content.decode()))


def refreshes(response: Any) -> str | None:
    """Where the page's <meta http-equiv="refresh"> sends the browser, or None."""
    found = re.search(
        r'<meta http-equiv="refresh" content="(\d+); url=([^"]+)">', response.content.decode()
    )
    return found and found[2]


def made_backup(tenant: Tenant, user: Any, run_jobs: Any, **options: bool) -> StoredBackup:
    """A stored backup that succeeded, made by the worker's code (in this process)."""
    with run_jobs():
        backup = backups.request_backup(tenant, user=user, trigger=Trigger.PAGE)
    backup.refresh_from_db()
    assert backup.status == StoredBackup.Status.SUCCEEDED, backup.error
    return backup


def stored_files() -> list[str]:
    found = []
    storage = backup_storage()
    try:
        folders, _files = storage.listdir("")
    except FileNotFoundError:
        return []
    for folder in folders:
        found += [f"{folder}/{name}" for name in storage.listdir(folder)[1]]
    return found


def counts(tenant: Tenant) -> dict[str, int]:
    return {k: v for k, v in tenant_statistics(tenant).items() if k != "audit_log" and v}


def data_of(tenant: Tenant) -> dict[str, list[dict[str, Any]]]:
    """`tenant_snapshot` but the audit log, which records the restores asked for and done."""
    rows = tenant_snapshot(tenant)
    del rows["audit_log"]
    return rows


def database() -> dict[str, list[dict[str, Any]]]:
    """Everything but the audit log (refusals are audited) and the sessions."""
    rows = snapshot(audit=False)
    del rows["sessions.Session"]
    return rows


# -- the list and Create backup ----------------------------------------------------------------


def test_empty_list_says_how_to_make_one(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    response = client.get(url(tenant))
    assert response.status_code == 200
    body = text(response)
    assert EMPTY in body
    assert 'value="Create backup"' in body
    assert f'formaction="{url(tenant, "backup_stored_create")}"' in body
    assert refreshes(response) is None


def test_create_queues_a_backup_then_the_worker_makes_it(
    client: Client, tenant: Tenant, run_jobs: Any
) -> None:
    person = login(client, tenant)
    with run_jobs():
        response = client.post(url(tenant, "backup_stored_create"), {"include_audit_logs": "on"})
        assert response.status_code == 302 and response["Location"] == url(tenant)
        backup = StoredBackup.objects.get(tenant=tenant)
        assert backup.status == StoredBackup.Status.QUEUED
        assert (backup.trigger, backup.created_by) == (Trigger.PAGE, person)
        assert backup.options == {
            "include_audit_logs": True,
            "include_deleted": False,
            "include_files": False,
        }
        queued = client.get(url(tenant))
        body = text(queued)
        assert "Backup queued" in body
        row = re.search(rf'<tr id="backup-{backup.id}".*?</tr>', body)[0]
        assert "Queued" in row and "<progress></progress>" in row and "waiting for a worker" in row
        assert "Download" not in row and "Delete" not in row  # nothing to act on yet
        assert EMPTY not in body
        assert refreshes(queued) == url(tenant)  # reloads itself while the job is not done

    backup.refresh_from_db()
    assert backup.status == StoredBackup.Status.SUCCEEDED, backup.error
    done = client.get(url(tenant))
    assert refreshes(done) is None
    row = re.search(rf'<tr id="backup-{backup.id}".*?</tr>', text(done))[0]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells[0].startswith(f'<time datetime="{backup.created_at.isoformat()}')
    assert re.fullmatch(r"[\d.]+\s(bytes|KB)", cells[1].replace("\xa0", " "))
    assert cells[2] == str(backup.total_rows) and backup.total_rows > 0
    assert cells[3] == "Admin page"
    assert cells[4] == person.email
    assert cells[5] == "Succeeded"
    for action in ("download", "restore", "delete"):
        assert backup_url(backup, action) in cells[6]


def test_running_backup_shows_its_progress(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    StoredBackup.objects.create(
        tenant=tenant,
        trigger=Trigger.API,
        status=StoredBackup.Status.RUNNING,
        progress_done=30,
        progress_total=120,
        progress_table="meter_reading",
    )
    response = client.get(url(tenant))
    body = text(response)
    assert '<progress value="30" max="120">25 %</progress>' in body
    assert "25 % (30 of 120 rows, meter_reading)" in body
    assert refreshes(response) == url(tenant)


def test_failed_backup_shows_its_error_and_may_only_be_deleted(
    client: Client, tenant: Tenant
) -> None:
    login(client, tenant)
    backup = StoredBackup.objects.create(
        tenant=tenant,
        trigger=Trigger.SCHEDULE,
        status=StoredBackup.Status.FAILED,
        error="The backup storage refused the file: disk full.",
    )
    body = text(client.get(url(tenant)))
    row = re.search(rf'<tr id="backup-{backup.id}".*?</tr>', body)[0]
    assert "Failed: The backup storage refused the file: disk full." in row
    assert "Schedule" in row and "<td>—</td>" in row  # no person made it
    assert backup_url(backup, "delete") in row
    assert backup_url(backup, "download") not in row and backup_url(backup, "restore") not in row


def test_daily_limit_is_explained(client: Client, tenant: Tenant, settings: Any) -> None:
    settings.BACKUP_DAILY_LIMIT = 1
    login(client, tenant)
    assert client.post(url(tenant, "backup_stored_create")).status_code == 302
    before = database()
    response = client.post(url(tenant, "backup_stored_create"))
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 24 * 3600
    error = re.search(r'<p class="errornote" id="backup-create-error">(.*?)</p>', text(response))
    assert error is not None
    assert (
        "made 1 backups in the last 24 hours, the most allowed (BACKUP_DAILY_LIMIT = 1)"
        in (error[1])
    )
    assert "the next one can be made from" in error[1]
    assert refreshes(response) is None  # the message stays on screen
    assert database() == before


def test_create_is_post_only(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    assert client.get(url(tenant, "backup_stored_create")).status_code == 405
    assert not StoredBackup.objects.exists()


def test_email_link_opens_the_tenant_page(client: Client, tenant: Tenant, run_jobs: Any) -> None:
    person = login(client, tenant)
    with run_jobs():
        client.post(url(tenant, "backup_stored_create"))
    (message,) = mail.outbox
    assert message.to == [person.email]
    link = re.search(r"https?://\S+", message.body)[0]
    assert urlsplit(link).query == f"tenant={tenant.pk}"
    response = client.get(f"{urlsplit(link).path}?{urlsplit(link).query}")
    assert response.status_code == 302 and response["Location"] == url(tenant)


def test_tenant_chosen_by_id_for_a_superuser(client: Client, tenant: Tenant) -> None:
    f.TenantFactory()  # a superuser without ?tenant= would choose among two
    login(client, is_superuser=True)
    response = client.get(reverse("admin:backup"), {"tenant": str(tenant.pk)})
    assert response.status_code == 302 and response["Location"] == url(tenant)
    assert client.get(reverse("admin:backup")).status_code == 200  # the picker, as before
    for wrong in ("not-an-id", "00000000-0000-0000-0000-000000000000"):
        assert client.get(reverse("admin:backup"), {"tenant": wrong}).status_code == 404


def test_tenant_chosen_by_id_keeps_tenants_apart(client: Client, tenant: Tenant) -> None:
    other = f.TenantFactory()
    login(client, other)
    assert client.get(reverse("admin:backup"), {"tenant": str(tenant.pk)}).status_code == 404
    login(client, tenant, "member")
    assert client.get(reverse("admin:backup"), {"tenant": str(tenant.pk)}).status_code == 403
    client.logout()
    response = client.get(reverse("admin:backup"), {"tenant": str(tenant.pk)})
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


# -- download ----------------------------------------------------------------------------------


def test_download_asks_for_the_password_first(client: Client, tenant: Tenant, run_jobs: Any):
    person = login(client, tenant)
    backup = made_backup(tenant, person, run_jobs)
    form = client.get(backup_url(backup, "download"))
    assert form.status_code == 200
    assert 'type="password" name="password"' in text(form)

    refused = client.post(backup_url(backup, "download"), {"password": "not my password"})
    assert refused.status_code == 400 and "Location" not in refused
    assert "The password is wrong." in text(refused)
    assert "token=" not in text(refused)
    assert AuditLog.objects.filter(action="backup.stored.link_refused").count() == 1
    empty = client.post(backup_url(backup, "download"), {"password": ""})
    assert empty.status_code == 400 and "This field is required." in text(empty)
    assert not AuditLog.objects.filter(action="backup.stored.link_issued").exists()

    response = client.post(backup_url(backup, "download"), {"password": PASSWORD})
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == reverse(
        "backup-api:backup-download", kwargs={"tenant": tenant.slug, "id": backup.id}
    )
    assert re.fullmatch(r"token=[\w.:%-]+", location.query)
    download = client.get(response["Location"])
    assert download.status_code == 200
    data = b"".join(download.streaming_content)
    assert data.startswith(ZSTD_MAGIC)
    assert len(data) == backup.size and hashlib.sha256(data).hexdigest() == backup.sha256
    assert AuditLog.objects.filter(action="backup.stored.downloaded").count() == 1


def test_backup_without_a_file_cannot_be_downloaded(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    backup = StoredBackup.objects.create(
        tenant=tenant, trigger=Trigger.PAGE, status=StoredBackup.Status.FAILED, error="disk full"
    )
    response = client.post(backup_url(backup, "download"), {"password": PASSWORD})
    assert response.status_code == 409
    assert "it has no file to download" in text(response)


# -- delete ------------------------------------------------------------------------------------


def test_delete_asks_then_removes_the_file(client: Client, tenant: Tenant, run_jobs: Any) -> None:
    person = login(client, tenant)
    backup = made_backup(tenant, person, run_jobs)
    assert stored_files() == [backup.storage_name]
    confirm = client.get(backup_url(backup, "delete"))
    assert confirm.status_code == 200
    assert "Are you sure you want to delete this backup?" in text(confirm)
    assert StoredBackup.objects.filter(pk=backup.pk).exists()  # asking deletes nothing

    response = client.post(backup_url(backup, "delete"))
    assert response.status_code == 302 and response["Location"] == url(tenant)
    assert not StoredBackup.objects.filter(pk=backup.pk).exists()
    assert stored_files() == []
    page = client.get(url(tenant))
    assert "was deleted" in text(page) and EMPTY in text(page)


def test_queued_backup_cannot_be_deleted(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    client.post(url(tenant, "backup_stored_create"))  # no worker runs: it stays queued
    backup = StoredBackup.objects.get()
    assert "it can be deleted once it has finished" in text(
        client.get(backup_url(backup, "delete"))
    )
    before = database()
    response = client.post(backup_url(backup, "delete"))
    assert response.status_code == 409
    assert "wait until it has finished" in text(response)
    assert database() == before


# -- restore -----------------------------------------------------------------------------------


def test_restore_form_offers_the_modes_and_the_undo(
    client: Client, tenant: Tenant, run_jobs: Any
) -> None:
    person = login(client, tenant)
    backup = made_backup(tenant, person, run_jobs)
    body = text(client.get(backup_url(backup, "restore")))
    for mode in ("merge", "replace", "new_tenant"):
        assert f'name="mode" value="{mode}"' in body
    assert re.search(r'<input type="checkbox" name="undo"[^>]* checked', body)
    assert "Store a backup of the current data first (undo)" in body
    assert "create_missing_master_data" not in body  # superusers only


def test_superuser_may_create_missing_master_data(
    client: Client, tenant: Tenant, run_jobs: Any
) -> None:
    person = login(client, is_superuser=True)
    backup = made_backup(tenant, person, run_jobs)
    assert 'name="create_missing_master_data"' in text(client.get(backup_url(backup, "restore")))
    with run_jobs():
        client.post(
            backup_url(backup, "restore"), {"mode": "merge", "create_missing_master_data": "on"}
        )
    restore = Restore.objects.get()
    assert restore.options["create_missing_master_data"] is True
    assert restore.status == Restore.Status.AWAITING_CONFIRMATION, restore.error


def test_result_of_an_upload_is_not_lost_to_a_reload(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    client.post(url(tenant, "backup_stored_create"))  # stays queued: the page would reload
    assert refreshes(client.get(url(tenant))) == url(tenant)
    file = SimpleUploadedFile("backup.json", export_bytes(tenant), "application/json")
    response = client.post(url(tenant, "backup_import"), {"file": file, "mode": "merge"})
    pending_id = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    client.get(response["Location"])  # the preview, which the confirmation needs to have seen
    response = client.post(url(tenant, "backup_import_confirm"), {"pending_id": pending_id})
    assert response.status_code == 302 and response["Location"] == url(tenant)
    shown = client.get(url(tenant))
    assert "Import done (merge)" in text(shown)
    assert refreshes(shown) is None  # the result is shown once: a reload would take it away
    assert refreshes(client.get(url(tenant))) == url(tenant)


def test_restore_as_new_tenant_end_to_end(client: Client, tenant: Tenant, run_jobs: Any) -> None:
    person = login(client, tenant)
    backup = made_backup(tenant, person, run_jobs)
    source = data_of(tenant)
    with run_jobs():
        response = client.post(
            backup_url(backup, "restore"),
            {"mode": "new_tenant", "new_tenant_slug": "north-copy", "new_tenant_name": "North 2"},
        )
        assert response.status_code == 302
        restore = Restore.objects.get()
        assert response["Location"] == restore_url(restore)
        assert (restore.trigger, restore.backup, restore.undo) == (Trigger.PAGE, backup, False)
        previewing = client.get(response["Location"])
        assert "Preview: checking the backup" in text(previewing)
        assert "<progress" in text(previewing)
        assert refreshes(previewing) == restore_url(restore)

    preview = client.get(restore_url(restore))
    body = text(preview)
    assert refreshes(preview) is None
    assert 'id="backup-preview-table"' in body
    totals = re.search(r'<tr class="total">(.*?)</tr>', body)[1]
    in_file, create = (int(n) for n in re.findall(r'<td class="count">(\d+)</td>', totals)[:2])
    assert in_file == create == backup.total_rows
    assert 'value="Create north-copy"' in body
    assert not Tenant.objects.filter(slug="north-copy").exists()  # nothing written yet

    with run_jobs():
        response = client.post(restore_url(restore, "confirm"), {"confirmation": ""})
        assert response.status_code == 302 and response["Location"] == restore_url(restore)
        importing = client.get(restore_url(restore))
        assert "Importing" in text(importing) and refreshes(importing) == restore_url(restore)

    restore.refresh_from_db()
    assert restore.status == Restore.Status.SUCCEEDED, restore.error
    copy = Tenant.objects.get(slug="north-copy")
    assert copy.name == "North 2"
    assert counts(copy) == {table: rows for table, rows in backup.rows.items() if rows}
    assert data_of(tenant) == source  # the source is left as it was
    result = text(client.get(restore_url(restore)))
    assert "Restored as new tenant North 2 (north-copy)" in result
    assert url(copy) in result  # the new tenant's page: the admin is a member there too
    listed = text(client.get(url(tenant)))
    assert re.search(rf'<tr id="restore-{restore.id}".*?Succeeded', listed)


def test_replace_needs_the_tenant_name_typed(client: Client, tenant: Tenant, run_jobs: Any):
    person = login(client, tenant, "owner")
    backup = made_backup(tenant, person, run_jobs)
    f.VehicleFactory(tenant=tenant)  # something the replace takes away
    with run_jobs():
        client.post(backup_url(backup, "restore"), {"mode": "replace", "undo": "on"})
    restore = Restore.objects.get()
    assert restore.status == Restore.Status.AWAITING_CONFIRMATION, restore.error
    listed = text(client.get(url(tenant)))  # where the email's link leads
    row = re.search(rf'<tr id="restore-{restore.id}".*?</tr>', listed)[0]
    assert "Awaiting confirmation" in row and "see the preview and confirm" in row
    assert restore_url(restore) in row
    body = text(client.get(restore_url(restore)))
    assert "Replace deletes the current data of North Quarry" in body
    assert "so that this restore can be undone by restoring that backup" in body  # the notice
    assert "A backup of the current data is stored first" in body

    before, backups_before = tenant_snapshot(tenant), StoredBackup.objects.count()
    with run_jobs():
        response = client.post(restore_url(restore, "confirm"), {"confirmation": "north"})
    assert response.status_code == 400
    assert "type the tenant's name exactly to confirm" in text(response)
    restore.refresh_from_db()
    assert restore.status == Restore.Status.AWAITING_CONFIRMATION
    assert tenant_snapshot(tenant) == before
    assert StoredBackup.objects.count() == backups_before  # no undo backup either

    with run_jobs():
        response = client.post(restore_url(restore, "confirm"), {"confirmation": "North Quarry"})
        assert response.status_code == 302
    restore.refresh_from_db()
    assert restore.status == Restore.Status.SUCCEEDED, restore.error
    assert counts(tenant) == {table: rows for table, rows in backup.rows.items() if rows}
    undo = restore.undo_backup
    assert undo.trigger == Trigger.BEFORE_RESTORE and undo.status == StoredBackup.Status.SUCCEEDED
    result = text(client.get(restore_url(restore)))
    assert "Restore done (replace)" in result or "Import done (replace)" in result
    assert "The data as it was before is kept in the stored backup of" in result
    assert "Before restore" in text(client.get(url(tenant)))


def test_merge_without_undo_stores_no_backup_first(
    client: Client, tenant: Tenant, run_jobs: Any
) -> None:
    person = login(client, tenant)
    backup = made_backup(tenant, person, run_jobs)
    with run_jobs():
        client.post(backup_url(backup, "restore"), {"mode": "merge"})  # undo left unchecked
    restore = Restore.objects.get()
    assert restore.undo is False
    assert "can be undone" not in text(client.get(restore_url(restore)))
    with run_jobs():
        client.post(restore_url(restore, "confirm"))
    restore.refresh_from_db()
    assert restore.status == Restore.Status.SUCCEEDED and restore.undo_backup is None
    assert StoredBackup.objects.count() == 1


def test_cancel_drops_the_restore(client: Client, tenant: Tenant, run_jobs: Any) -> None:
    person = login(client, tenant)
    backup = made_backup(tenant, person, run_jobs)
    with run_jobs():
        client.post(backup_url(backup, "restore"), {"mode": "replace", "undo": "on"})
    restore = Restore.objects.get()
    before = data_of(tenant)
    response = client.post(restore_url(restore, "cancel"))
    assert response.status_code == 302 and response["Location"] == url(tenant)
    restore.refresh_from_db()
    assert restore.status == Restore.Status.CANCELLED
    assert "Restore cancelled; nothing was changed." in text(client.get(url(tenant)))
    assert data_of(tenant) == before
    # Cancelled: it can be neither confirmed nor cancelled again.
    response = client.post(restore_url(restore, "confirm"), {"confirmation": "North Quarry"})
    assert response.status_code == 409 and "only a restore awaiting confirmation" in text(response)
    assert client.post(restore_url(restore, "cancel")).status_code == 409
    assert data_of(tenant) == before


def test_failed_restore_shows_why(client: Client, tenant: Tenant, run_jobs: Any) -> None:
    person = login(client, tenant)
    backup = made_backup(tenant, person, run_jobs)
    with run_jobs():
        client.post(backup_url(backup, "restore"), {"mode": "new_tenant", "new_tenant_slug": "x1"})
        f.TenantFactory(slug="x1")  # taken before the worker previews the restore
    restore = Restore.objects.get()
    assert restore.status == Restore.Status.FAILED
    response = client.get(restore_url(restore))
    body = text(response)
    assert "Nothing was imported" in body and "Nothing was written to the tenant." in body
    assert "A tenant with slug 'x1' already exists" in body
    assert refreshes(response) is None
    assert 'id="backup-confirm-form"' not in body


def test_restore_form_errors_name_the_field(client: Client, tenant: Tenant, run_jobs: Any):
    person = login(client, tenant)
    backup = made_backup(tenant, person, run_jobs)
    before = database()
    response = client.post(backup_url(backup, "restore"), {"mode": "new_tenant"})
    assert response.status_code == 400
    assert "A restore as new tenant needs a slug." in text(response)
    response = client.post(
        backup_url(backup, "restore"), {"mode": "new_tenant", "new_tenant_slug": "NORTH"}
    )
    assert response.status_code == 400
    assert "A tenant with slug 'NORTH' already exists (ignoring case)." in text(response)
    assert database() == before


def test_failed_backup_cannot_be_restored(client: Client, tenant: Tenant) -> None:
    login(client, tenant)
    backup = StoredBackup.objects.create(
        tenant=tenant, trigger=Trigger.PAGE, status=StoredBackup.Status.FAILED, error="disk full"
    )
    before = database()
    response = client.post(backup_url(backup, "restore"), {"mode": "merge"})
    assert response.status_code == 409
    assert "only a backup that succeeded can be restored" in text(response)
    assert database() == before


# -- access ------------------------------------------------------------------------------------


def _actions(backup: StoredBackup, restore: Restore) -> list[tuple[str, str, dict[str, str]]]:
    """Every new page and action: (method, url, data)."""
    tenant = backup.tenant
    return [
        ("post", url(tenant, "backup_stored_create"), {}),
        ("get", backup_url(backup, "download"), {}),
        ("post", backup_url(backup, "download"), {"password": PASSWORD}),
        ("get", backup_url(backup, "restore"), {}),
        ("post", backup_url(backup, "restore"), {"mode": "merge"}),
        ("get", restore_url(restore), {}),
        ("post", restore_url(restore, "confirm"), {"confirmation": ""}),
        ("post", restore_url(restore, "cancel"), {}),
        ("get", backup_url(backup, "delete"), {}),
        ("post", backup_url(backup, "delete"), {}),  # last: the backup is gone after it
    ]


@pytest.fixture
def jobs(tenant: Tenant, run_jobs: Any) -> tuple[StoredBackup, Restore]:
    """A stored backup and a restore of it awaiting its confirmation."""
    owner = f.UserFactory()
    backup = made_backup(tenant, owner, run_jobs)
    with run_jobs():
        restore = restores.request_restore(
            tenant, user=owner, trigger=Trigger.PAGE, options=ImportOptions(), backup=backup
        )
    restore.refresh_from_db()
    assert restore.status == Restore.Status.AWAITING_CONFIRMATION, restore.error
    return backup, restore


def test_anonymous_is_sent_to_the_login(client: Client, jobs: Any) -> None:
    before = database()
    for method, target, data in _actions(*jobs):
        response = getattr(client, method)(target, data)
        assert response.status_code == 302, target
        assert response["Location"].startswith(reverse("admin:login") + "?next="), target
    assert database() == before


def test_member_is_refused(client: Client, tenant: Tenant, jobs: Any) -> None:
    login(client, tenant, "member")
    before = database()
    for method, target, data in _actions(*jobs):
        assert getattr(client, method)(target, data).status_code == 403, target
    assert database() == before


@pytest.mark.parametrize("membership", ["other tenant's admin", "no tenant"])
def test_staff_of_another_tenant_learns_nothing(
    client: Client, tenant: Tenant, jobs: Any, membership: str
) -> None:
    login(client, f.TenantFactory() if membership == "other tenant's admin" else None)
    before = database()
    for method, target, data in _actions(*jobs):
        assert getattr(client, method)(target, data).status_code == 404, target
    assert database() == before


@pytest.mark.parametrize("who", ["owner", "admin", "superuser"])
def test_owners_admins_and_superusers_may(
    client: Client, tenant: Tenant, jobs: Any, who: str
) -> None:
    if who == "superuser":
        login(client, is_superuser=True)
    else:
        login(client, tenant, who)
    backup, restore = jobs
    expected = {
        ("post", url(tenant, "backup_stored_create")): 302,
        ("post", backup_url(backup, "download")): 302,
        ("post", backup_url(backup, "delete")): 302,
        ("post", backup_url(backup, "restore")): 302,
        ("post", restore_url(restore, "confirm")): 302,
        # Confirmed just before: the cancel comes too late.
        ("post", restore_url(restore, "cancel")): 409,
    }
    for method, target, data in _actions(backup, restore):
        status = getattr(client, method)(target, data).status_code
        assert status == expected.get((method, target), 200), target


def test_another_tenants_ids_are_not_found(client: Client, tenant: Tenant, jobs: Any) -> None:
    backup, restore = jobs
    other = f.TenantFactory(slug="south")
    login(client, other)  # an admin of south, naming north's backup and restore under south
    before = database()
    for method, target, data in _actions(backup, restore):
        if target == url(tenant, "backup_stored_create"):
            continue
        target = target.replace(f"/{tenant.slug}/", f"/{other.slug}/")
        response = getattr(client, method)(target, data)
        assert response.status_code == 404, target
    for wrong in ("not-an-id", "00000000-0000-0000-0000-000000000000"):
        assert client.get(url(other, "backup_stored_download", backup_id=wrong)).status_code == 404
        assert client.get(url(other, "backup_restore", restore_id=wrong)).status_code == 404
    assert database() == before
