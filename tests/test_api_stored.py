"""The API of stored backups and restores: jobs made by a worker (here: run in the test process
inside `run_jobs()`), listed, deleted, downloaded through signed links, restored after a
preview and a confirmation; access by role, tenant isolation, errors."""

import datetime as dt
import hashlib
import io
import re
import time
import uuid

import pytest
import zstandard
from django.core import mail, signing
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.validation import validate_schema
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from backup.models import Restore, StoredBackup
from backup.statistics import tenant_statistics
from backup.stored import links
from tenants.models import AuditLog, MeterReading, Tenant, Vehicle

from . import factories as f
from .backup_support import dump, export_bytes, parse, snapshot, tenant_snapshot
from .backup_support import without_secrets as no_secrets
from .factories.auth import PASSWORD
from .test_api import client_for, member_of

pytestmark = pytest.mark.django_db

SITE = "https://backups.example.com"


@pytest.fixture(autouse=True)
def _fresh_throttles(settings):
    settings.BACKUP_SITE_URL = SITE
    cache.clear()  # throttle history lives in the default cache
    yield
    cache.clear()


@pytest.fixture
def owner(tenant):
    return member_of(tenant, "owner")


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def session_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def api(owner):
    return client_for(owner)


def url(name: str, id=None, slug: str = "north-pit") -> str:
    kwargs = {"tenant": slug} if id is None else {"tenant": slug, "id": str(id)}
    return reverse(f"backup-api:{name}", kwargs=kwargs)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"code", "message", "details"}
    assert body["code"] == code, body
    assert body["message"]
    return body


def data_of(tenant) -> dict:
    """The tenant's data, but its audit trail, which every request adds to."""
    data = tenant_snapshot(tenant)
    data.pop("audit_log")
    return data


def actions(tenant, prefix: str = "backup.") -> list[str]:
    return list(
        AuditLog.objects.filter(tenant=tenant, action__startswith=prefix)
        .order_by("created_at")
        .values_list("action", flat=True)
    )


def create_backup(client, run_jobs, slug: str = "north-pit", **options) -> StoredBackup:
    with run_jobs():
        response = client.post(url("backups", slug=slug), options, format="json")
    assert response.status_code == 202, response.content
    return StoredBackup.objects.get(pk=response.json()["id"])


@pytest.fixture
def backup(api, tenant, run_jobs):
    made = create_backup(api, run_jobs)
    assert made.status == StoredBackup.Status.SUCCEEDED, made.error
    return made


def stored_file(backup_dir, backup: StoredBackup):
    return backup_dir / backup.storage_name


def decompress(data: bytes) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    return reader.read()


def download(client, link: str, **extra):
    response = client.get(link, **extra)
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return response, content


def issue_link(client, backup: StoredBackup, **body) -> str:
    response = client.post(url("backup-download-link", backup.id), body, format="json")
    assert response.status_code == 200, response.content
    return response.json()["url"]


def restore_of(response) -> Restore:
    assert response.status_code == 202, response.content
    return Restore.objects.get(pk=response.json()["id"])


# Creating and following a backup -------------------------------------------------------------


def test_create_answers_202_and_the_backup_waits_in_the_queue(api, tenant, owner):
    response = api.post(url("backups"), {"include_deleted": True}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {"id", "status", "url"}
    assert body["status"] == "queued"
    assert body["url"] == f"http://testserver/api/v1/tenants/north-pit/backups/{body['id']}/"
    assert response["Location"] == body["url"]
    made = StoredBackup.objects.get(pk=body["id"])
    assert (made.tenant, made.trigger, made.created_by) == (tenant, "api", owner)
    assert made.options == {
        "include_audit_logs": False,
        "include_deleted": True,
        "include_files": False,
    }
    # Nothing ran: no worker took it (jobs run only inside `run_jobs()` here).
    state = api.get(body["url"]).json()
    assert state["status"] == "queued" and state["size"] is None and state["sha256"] == ""
    assert state["progress"] == {"done": 0, "total": 0, "percent": None, "table": ""}
    assert actions(tenant, "backup.stored.") == ["backup.stored.created"]
    assert mail.outbox == []


def test_backup_made_by_the_worker_succeeds(api, tenant, owner, run_jobs, backup_dir):
    made = create_backup(api, run_jobs)
    state = api.get(url("backup", made.id)).json()
    assert state["status"] == "succeeded", state["error"]
    data = stored_file(backup_dir, made).read_bytes()
    document = parse(decompress(data))
    assert state["rows"] == {table: len(rows) for table, rows in document["tenant_data"].items()}
    assert state["total_rows"] == sum(state["rows"].values()) > 0
    assert state["size"] == len(data)
    assert state["sha256"] == hashlib.sha256(data).hexdigest()
    assert state["progress"]["percent"] == 100
    assert state["created_by"] == owner.email and state["trigger"] == "api"
    assert state["started_at"] and state["finished_at"] and state["error"] == ""
    assert document["metadata"]["tenant"]["slug"] == "north-pit"
    assert actions(tenant, "backup.stored.") == ["backup.stored.created", "backup.stored.finished"]
    finished = AuditLog.objects.get(action="backup.stored.finished")
    assert finished.actor == owner
    assert finished.details["rows"] == state["total_rows"]
    assert finished.details["size"] == state["size"]


def test_the_user_gets_one_email_with_the_page_link(api, tenant, owner, run_jobs):
    create_backup(api, run_jobs)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [owner.email]
    assert "North Pit" in message.subject and "ready" in message.subject
    assert f"{SITE}/admin/backup/?tenant={tenant.pk}" in message.body


def test_list_is_newest_first_with_every_field(api, tenant, owner, run_jobs):
    first = create_backup(api, run_jobs)
    second = api.post(url("backups"), {}, format="json").json()["id"]  # left queued
    StoredBackup.objects.filter(pk=first.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=1)
    )
    scheduled = StoredBackup.objects.create(
        tenant=tenant, trigger="schedule", created_by=None, status="failed", error="disk full"
    )
    StoredBackup.objects.filter(pk=scheduled.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=2)
    )
    response = api.get(url("backups"))
    assert response.status_code == 200
    items = response.json()
    assert [item["id"] for item in items] == [second, str(first.id), str(scheduled.id)]
    fields = {
        "id",
        "created_at",
        "created_by",
        "trigger",
        "status",
        "options",
        "format_version",
        "rows",
        "total_rows",
        "size",
        "sha256",
        "encrypted",
        "progress",
        "started_at",
        "finished_at",
        "expires_at",
        "scheduled_for",
        "keep",
        "verification",
        "error",
    }
    assert all(set(item) == fields for item in items)
    assert [item["status"] for item in items] == ["queued", "succeeded", "failed"]
    assert items[1]["size"] == first.size and items[1]["total_rows"] == first.total_rows
    assert items[1]["created_by"] == owner.email and items[1]["encrypted"] is False
    assert items[2]["created_by"] is None and items[2]["error"] == "disk full"
    assert set(items[0]["progress"]) == {"done", "total", "percent", "table"}


def test_list_of_a_tenant_without_backups_is_empty(api, tenant, other, run_jobs):
    create_backup(client_for(f.UserFactory(is_superuser=True)), run_jobs, slug="south-pit")
    assert api.get(url("backups")).json() == []


# Deleting ------------------------------------------------------------------------------------


def test_delete_removes_the_file_and_the_record(api, tenant, owner, backup, backup_dir):
    path = stored_file(backup_dir, backup)
    assert path.exists()
    response = api.delete(url("backup", backup.id))
    assert response.status_code == 204
    assert not path.exists()
    assert not StoredBackup.objects.filter(pk=backup.pk).exists()
    deleted = AuditLog.objects.get(action="backup.stored.deleted")
    assert deleted.actor == owner and deleted.details["sha256"] == backup.sha256
    assert_error(api.get(url("backup", backup.id)), 404, "not_found")


@pytest.mark.parametrize("status", ["queued", "running"])
def test_an_active_backup_cannot_be_deleted(api, tenant, status):
    made = StoredBackup.objects.get(pk=api.post(url("backups")).json()["id"])
    StoredBackup.objects.filter(pk=made.pk).update(status=status)
    before = snapshot()
    body = assert_error(api.delete(url("backup", made.id)), 409, "job_active")
    assert status in body["message"]
    assert snapshot() == before


def test_a_failed_backup_can_be_deleted(api, tenant):
    failed = StoredBackup.objects.create(tenant=tenant, trigger="api", status="failed", error="x")
    assert api.delete(url("backup", failed.id)).status_code == 204
    assert not StoredBackup.objects.filter(pk=failed.pk).exists()


# Daily limit ---------------------------------------------------------------------------------


def test_daily_limit_answers_429_saying_when(api, tenant, settings):
    settings.BACKUP_DAILY_LIMIT = 2
    for trigger in ("schedule", "before_restore"):  # these do not count
        StoredBackup.objects.create(tenant=tenant, trigger=trigger, status="succeeded")
    for _ in range(2):
        assert api.post(url("backups")).status_code == 202
    before = snapshot()
    response = api.post(url("backups"), {}, format="json")
    body = assert_error(response, 429, "daily_limit_reached")
    retry_after = int(response["Retry-After"])
    assert 24 * 3600 - 120 < retry_after <= 24 * 3600 + 1
    assert body["details"] == {"retry_after": retry_after}
    assert "BACKUP_DAILY_LIMIT = 2" in body["message"]
    frees_at = timezone.now() + dt.timedelta(seconds=retry_after)
    when = re.search(r"from (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", body["message"])
    assert when, body["message"]
    stated = dt.datetime.strptime(when.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=dt.UTC)
    assert abs((stated - frees_at).total_seconds()) < 120
    assert snapshot() == before
    # Another tenant has its own limit.
    elsewhere = f.TenantFactory(slug="south-pit")
    assert (
        client_for(member_of(elsewhere, "owner")).post(url("backups", slug="south-pit")).status_code
        == 202
    )


def test_backups_older_than_a_day_do_not_count(api, tenant, settings):
    settings.BACKUP_DAILY_LIMIT = 1
    old = StoredBackup.objects.create(tenant=tenant, trigger="api", status="succeeded")
    StoredBackup.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - dt.timedelta(days=1, minutes=1)
    )
    assert api.post(url("backups")).status_code == 202
    assert_error(api.post(url("backups")), 429, "daily_limit_reached")


# Download links ------------------------------------------------------------------------------


@pytest.mark.parametrize("password", [None, "", "wrong password"])
def test_session_must_send_the_right_password(tenant, owner, backup, password):
    client = session_client(owner)
    body = {} if password is None else {"password": password}
    before = AuditLog.objects.filter(action="backup.stored.link_issued").count()
    response = client.post(url("backup-download-link", backup.id), body, format="json")
    message = assert_error(response, 403, "password_required")["message"]
    assert "password" in message
    assert ("wrong" in message) == bool(password)
    assert AuditLog.objects.filter(action="backup.stored.link_issued").count() == before
    refused = AuditLog.objects.filter(action="backup.stored.link_refused").last()
    assert refused.actor == owner


def test_session_with_the_password_gets_a_link_that_downloads(tenant, owner, backup):
    client = session_client(owner)
    response = client.post(
        url("backup-download-link", backup.id), {"password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"url", "expires_at"}
    prefix = f"http://testserver/api/v1/tenants/north-pit/backups/{backup.id}/download/?token="
    assert body["url"].startswith(prefix)
    expires_at = dt.datetime.fromisoformat(body["expires_at"])
    expected = timezone.now() + dt.timedelta(seconds=600)
    assert abs((expires_at - expected).total_seconds()) < 60
    download_response, data = download(client, body["url"])
    assert download_response.status_code == 200
    assert hashlib.sha256(data).hexdigest() == backup.sha256


def test_token_client_needs_no_password(tenant, owner, backup):
    client = token_client(owner)
    link = issue_link(client, backup)
    response, data = download(client, link)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zstd"
    assert response["Cache-Control"] == "no-store"
    stamp = backup.created_at.astimezone(dt.UTC).strftime("%Y%m%d-%H%M%S")
    assert re.fullmatch(r"\d{8}-\d{6}", stamp)
    assert response["Content-Disposition"] == f'attachment; filename="north-pit-{stamp}.json.zst"'
    assert int(response["Content-Length"]) == len(data) == backup.size
    assert hashlib.sha256(data).hexdigest() == backup.sha256
    document = parse(decompress(data))
    assert document["metadata"]["tenant"]["slug"] == "north-pit"
    assert no_secrets(document["tenant_data"]) == no_secrets(
        parse(export_bytes(tenant))["tenant_data"]
    )
    issued = AuditLog.objects.get(action="backup.stored.link_issued")
    downloaded = AuditLog.objects.get(action="backup.stored.downloaded")
    assert issued.actor == downloaded.actor == owner
    assert downloaded.details["backup"] == str(backup.id)


def test_download_whatever_the_client_accepts(api, tenant, backup):
    link = issue_link(api, backup)
    response, data = download(api, link, HTTP_ACCEPT="application/zstd")
    assert response.status_code == 200
    assert hashlib.sha256(data).hexdigest() == backup.sha256


def test_link_for_a_backup_without_a_file_is_refused(api, tenant):
    failed = StoredBackup.objects.create(tenant=tenant, trigger="api", status="failed", error="x")
    response = api.post(url("backup-download-link", failed.id), {}, format="json")
    assert_error(response, 409, "not_restorable")
    assert not AuditLog.objects.filter(action="backup.stored.link_issued").exists()


class _SignedAt(signing.TimestampSigner):
    """Signs as `django.core.signing.dumps` does, at another time."""

    def __init__(self, *, seconds_ago: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seconds_ago = seconds_ago

    def timestamp(self) -> str:
        return signing.b62_encode(int(time.time()) - self.seconds_ago)


def signed_link(backup: StoredBackup, user, *, seconds_ago: int) -> str:
    token = _SignedAt(salt=links.SALT, seconds_ago=seconds_ago).sign_object(
        {"backup": str(backup.id), "user": user.pk}
    )
    return url("backup-download", backup.id) + "?token=" + token


def assert_refused(client, link: str, words: str) -> None:
    before = AuditLog.objects.filter(action="backup.stored.downloaded").count()
    response, _ = download(client, link)
    body = assert_error(response, 403, "link_refused")
    assert words in body["message"], body["message"]
    assert AuditLog.objects.filter(action="backup.stored.downloaded").count() == before


def test_tampered_link_is_refused(api, tenant, backup):
    link = issue_link(api, backup)
    last = link[-1]
    assert_refused(api, link[:-1] + ("A" if last != "A" else "B"), "altered")
    assert_refused(api, link[:-5], "altered")
    assert_refused(api, url("backup-download", backup.id) + "?token=x", "altered")


def test_expired_link_is_refused(api, owner, tenant, backup, settings):
    settings.BACKUP_DOWNLOAD_LINK_SECONDS = 60
    # The same token signed a little earlier still works: only its age refuses it.
    response, _ = download(api, signed_link(backup, owner, seconds_ago=30))
    assert response.status_code == 200
    assert_refused(api, signed_link(backup, owner, seconds_ago=61), "expired")


def test_another_users_link_is_refused(api, tenant, backup):
    colleague = client_for(member_of(tenant, "admin"))
    link = issue_link(colleague, backup)
    assert_refused(api, link, "another user")
    response, _ = download(colleague, link)
    assert response.status_code == 200


def test_link_for_another_backup_is_refused(api, tenant, backup, run_jobs):
    second = create_backup(api, run_jobs)
    token = issue_link(api, backup).split("?token=")[1]
    assert_refused(api, url("backup-download", second.id) + "?token=" + token, "another backup")


def test_download_without_a_token_names_the_field(api, tenant, backup):
    body = assert_error(api.get(url("backup-download", backup.id)), 400, "invalid_request")
    assert list(body["details"]) == ["token"]
    link = issue_link(api, backup)
    response, _ = download(api, link + "&token=x")
    assert_error(response, 400, "ambiguous_request")


def test_a_file_missing_from_storage_is_a_storage_error(api, tenant, backup, backup_dir):
    link = issue_link(api, backup)
    stored_file(backup_dir, backup).unlink()
    response, _ = download(api, link)
    assert_error(response, 503, "storage_failed")


# Restores ------------------------------------------------------------------------------------


def preview_of(api, restore: Restore) -> dict:
    state = api.get(url("restore", restore.id)).json()
    assert state["status"] == "awaiting_confirmation", state
    return state


def test_merge_restore_previews_then_imports_after_confirmation(
    api, tenant, owner, backup, run_jobs
):
    reading = MeterReading.objects.filter(tenant=tenant, vehicle__deleted_at__isnull=True).first()
    reading_id = reading.pk
    reading.delete()
    before = data_of(tenant)
    rows_before = {
        table: len(rows)
        for table, rows in parse(export_bytes(tenant, include_deleted=True))["tenant_data"].items()
    }
    with run_jobs():
        response = api.post(url("backup-restore", backup.id), {"mode": "merge"}, format="json")
    restore = restore_of(response)
    body = response.json()
    assert body["status"] == "previewing"  # as it was when answered
    assert body["url"] == f"http://testserver/api/v1/tenants/north-pit/restores/{restore.id}/"
    state = preview_of(api, restore)
    assert state["mode"] == "merge" and state["backup"] == str(backup.id)
    assert state["upload"] is False and state["undo"] is True and state["report"] is None
    assert state["preview"]["applied"] is False
    assert state["preview"]["totals"]["create"] == 1
    assert any("undone" in notice for notice in state["preview"]["notices"])
    assert data_of(tenant) == before  # a preview writes nothing

    with run_jobs():
        confirmed = api.post(url("restore-confirm", restore.id), {}, format="json")
    assert confirmed.status_code == 202, confirmed.content
    assert confirmed.json()["status"] == "importing"
    state = api.get(url("restore", restore.id)).json()
    assert state["status"] == "succeeded", state["error"]
    assert state["report"]["applied"] is True
    assert state["report"]["tables"]["meter_reading"]["create"] == 1
    assert MeterReading.objects.filter(pk=reading_id).exists()
    undo = StoredBackup.objects.get(pk=state["undo_backup"])
    assert (undo.trigger, undo.status) == ("before_restore", "succeeded")
    assert undo.rows == rows_before
    assert undo.id in [uuid.UUID(item["id"]) for item in api.get(url("backups")).json()]
    assert actions(tenant, "backup.restore.") == [
        "backup.restore.requested",
        "backup.restore.confirmed",
        "backup.restore.finished",
    ]
    finished = AuditLog.objects.get(action="backup.restore.finished")
    assert finished.actor == owner and finished.details["undo_backup"] == str(undo.id)


def test_replace_needs_the_tenant_name_typed(api, tenant, backup, run_jobs):
    data = export_bytes(tenant)
    Vehicle.objects.filter(tenant=tenant).update(fleet_number="changed")
    with run_jobs():
        restore = restore_of(
            api.post(url("backup-restore", backup.id), {"mode": "replace"}, format="json")
        )
    preview_of(api, restore)
    before = data_of(tenant)
    for confirmation in (None, "", "South Pit", "north pit"):
        body = {} if confirmation is None else {"confirmation": confirmation}
        with run_jobs():
            response = api.post(url("restore-confirm", restore.id), body, format="json")
        message = assert_error(response, 400, "confirmation_required")["message"]
        assert "North Pit" in message
        assert data_of(tenant) == before
        assert api.get(url("restore", restore.id)).json()["status"] == "awaiting_confirmation"
    with run_jobs():
        response = api.post(
            url("restore-confirm", restore.id), {"confirmation": "North Pit"}, format="json"
        )
    assert response.status_code == 202, response.content
    state = api.get(url("restore", restore.id)).json()
    assert state["status"] == "succeeded", state["error"]
    assert state["report"]["mode"] == "replace"
    restored = no_secrets(parse(export_bytes(tenant))["tenant_data"])
    assert restored == no_secrets(parse(data)["tenant_data"])
    undo = StoredBackup.objects.get(pk=state["undo_backup"])
    assert undo.trigger == "before_restore"


def test_new_tenant_restore(api, tenant, backup, run_jobs):
    fields = {
        "mode": "new_tenant",
        "new_tenant_slug": "north-pit-copy",
        "new_tenant_name": "North Pit (copy)",
    }
    with run_jobs():
        restore = restore_of(api.post(url("backup-restore", backup.id), fields, format="json"))
    state = preview_of(api, restore)
    assert state["undo"] is False
    assert state["preview"]["tenant"]["slug"] == "north-pit-copy"
    assert not Tenant.objects.filter(slug="north-pit-copy").exists()
    with run_jobs():
        assert api.post(url("restore-confirm", restore.id)).status_code == 202
    state = api.get(url("restore", restore.id)).json()
    assert state["status"] == "succeeded", state["error"]
    assert state["undo_backup"] is None
    copy = Tenant.objects.get(slug="north-pit-copy")
    assert copy.name == "North Pit (copy)"
    assert tenant_statistics(copy)["vehicle"] == state["report"]["tables"]["vehicle"]["create"] > 0


def test_restore_without_undo(api, tenant, backup, run_jobs):
    with run_jobs():
        response = api.post(
            url("backup-restore", backup.id), {"mode": "merge", "undo": False}, format="json"
        )
    restore = restore_of(response)
    with run_jobs():
        api.post(url("restore-confirm", restore.id))
    state = api.get(url("restore", restore.id)).json()
    assert state["status"] == "succeeded" and state["undo_backup"] is None
    assert not StoredBackup.objects.filter(trigger="before_restore").exists()


@pytest.mark.parametrize("status", ["failed", "queued", "running"])
def test_a_backup_that_did_not_succeed_cannot_be_restored(api, tenant, status):
    made = StoredBackup.objects.create(tenant=tenant, trigger="api", status=status)
    before = snapshot()
    response = api.post(url("backup-restore", made.id), {"mode": "merge"}, format="json")
    body = assert_error(response, 409, "not_restorable")
    assert status in body["message"]
    assert snapshot() == before


def test_restore_of_an_upload(api, tenant, run_jobs, upload_dir):
    data = zstandard.ZstdCompressor().compress(export_bytes(tenant))
    reading = MeterReading.objects.filter(tenant=tenant, vehicle__deleted_at__isnull=True).first()
    reading_id = reading.pk
    reading.delete()
    upload = SimpleUploadedFile("north.json.zst", data, content_type="application/zstd")
    with run_jobs():
        response = api.post(url("restores"), {"file": upload, "mode": "merge"}, format="multipart")
    restore = restore_of(response)
    state = preview_of(api, restore)
    assert state["upload"] is True and state["backup"] is None
    assert state["preview"]["totals"]["create"] == 1
    assert list(upload_dir.iterdir())  # kept until the import
    with run_jobs():
        assert api.post(url("restore-confirm", restore.id)).status_code == 202
    state = api.get(url("restore", restore.id)).json()
    assert state["status"] == "succeeded", state["error"]
    assert state["report"]["tables"]["meter_reading"]["create"] == 1
    assert MeterReading.objects.filter(pk=reading_id).exists()
    assert list(upload_dir.iterdir()) == []


def test_restore_whose_preview_fails_says_why(api, tenant, other, run_jobs):
    upload = SimpleUploadedFile("south.json", export_bytes(other))
    before = data_of(tenant)
    with run_jobs():
        restore = restore_of(
            api.post(url("restores"), {"file": upload, "mode": "merge"}, format="multipart")
        )
    state = api.get(url("restore", restore.id)).json()
    assert state["status"] == "failed"
    assert "South Pit" in state["error"]
    assert state["error_details"]["code"] == "refused"
    assert state["preview"] is None
    assert data_of(tenant) == before
    assert_error(api.post(url("restore-confirm", restore.id)), 409, "job_active")
    assert "backup.restore.failed" in actions(tenant, "backup.restore.")


def test_restore_of_an_invalid_upload_lists_the_problems(api, tenant, run_jobs):
    document = parse(export_bytes(tenant))
    document["tenant_data"]["vehicle"][0]["status"] = "flying"
    upload = SimpleUploadedFile("bad.json", dump(document))
    with run_jobs():
        restore = restore_of(
            api.post(url("restores"), {"file": upload, "mode": "merge"}, format="multipart")
        )
    state = api.get(url("restore", restore.id)).json()
    assert state["status"] == "failed"
    assert state["error_details"]["code"] == "validation_failed"
    assert [p["field"] for p in state["error_details"]["problems"]] == ["status"]


def test_cancel_a_restore_awaiting_confirmation(api, tenant, backup, run_jobs):
    with run_jobs():
        restore = restore_of(
            api.post(url("backup-restore", backup.id), {"mode": "merge"}, format="json")
        )
    preview_of(api, restore)
    response = api.post(url("restore-cancel", restore.id))
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert_error(api.post(url("restore-cancel", restore.id)), 409, "job_active")
    assert_error(api.post(url("restore-confirm", restore.id)), 409, "job_active")
    assert "backup.restore.cancelled" in actions(tenant, "backup.restore.")


def test_a_restore_still_previewing_cannot_be_confirmed(api, tenant, backup):
    restore = restore_of(
        api.post(url("backup-restore", backup.id), {"mode": "merge"}, format="json")
    )
    body = assert_error(api.post(url("restore-confirm", restore.id)), 409, "job_active")
    assert "previewing" in body["message"]
    assert api.get(url("restore", restore.id)).json()["status"] == "previewing"


def test_restores_are_listed_newest_first(api, tenant, backup):
    first = restore_of(api.post(url("backup-restore", backup.id), {"mode": "merge"}))
    Restore.objects.filter(pk=first.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))
    second = restore_of(api.post(url("backup-restore", backup.id), {"mode": "replace"}))
    items = api.get(url("restores")).json()
    assert [item["id"] for item in items] == [str(second.id), str(first.id)]
    assert [item["mode"] for item in items] == ["replace", "merge"]


# Bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"mode": "overwrite"}, "mode"),
        ({}, "mode"),
        ({"mode": "new_tenant"}, "new_tenant_slug"),
        ({"mode": "new_tenant", "new_tenant_slug": "not a slug"}, "new_tenant_slug"),
        ({"mode": "merge", "new_tenant_slug": "copy"}, "new_tenant_slug"),
        ({"mode": "merge", "undo": "perhaps"}, "undo"),
    ],
)
def test_bad_restore_fields_are_named(api, tenant, backup, fields, field):
    upload = SimpleUploadedFile("b.json", export_bytes(tenant))
    before = snapshot()
    response = api.post(url("backup-restore", backup.id), fields, format="json")
    body = assert_error(response, 400, "invalid_request")
    assert list(body["details"]) == [field]
    assert field in body["message"]
    response = api.post(url("restores"), {"file": upload, **fields}, format="multipart")
    assert list(assert_error(response, 400, "invalid_request")["details"]) == [field]
    assert snapshot() == before


def test_bad_backup_option_is_named(api, tenant):
    response = api.post(url("backups"), {"include_deleted": "perhaps"}, format="json")
    body = assert_error(response, 400, "invalid_request")
    assert list(body["details"]) == ["include_deleted"]
    assert not StoredBackup.objects.exists()


def test_upload_restore_without_a_file_names_it(api, tenant):
    response = api.post(url("restores"), {"mode": "merge"}, format="multipart")
    assert list(assert_error(response, 400, "invalid_request")["details"]) == ["file"]
    assert_error(
        api.post(url("restores"), {"mode": "merge"}, format="json"), 415, "unsupported_media_type"
    )


def test_upload_restore_over_the_limit_gets_413(api, tenant, settings, upload_dir):
    settings.BACKUP_UPLOAD_MAX_BYTES = 1000
    upload = SimpleUploadedFile("b.json", export_bytes(tenant))
    before = snapshot()
    response = api.post(url("restores"), {"file": upload, "mode": "merge"}, format="multipart")
    body = assert_error(response, 413, "upload_too_large")
    assert "at most 1,000 bytes" in body["message"]
    assert snapshot() == before
    assert not upload_dir.exists()


def test_upload_restore_with_a_part_sent_twice_is_ambiguous(api, tenant):
    data = export_bytes(tenant)
    response = api.post(
        url("restores"),
        {
            "file": [SimpleUploadedFile("a.json", data), SimpleUploadedFile("b.json", data)],
            "mode": "merge",
        },
        format="multipart",
    )
    assert_error(response, 400, "ambiguous_request")
    assert not Restore.objects.exists()


def test_only_superusers_may_create_missing_master_data(api, tenant, backup):
    fields = {"mode": "merge", "create_missing_master_data": True}
    response = api.post(url("backup-restore", backup.id), fields, format="json")
    assert "superusers" in assert_error(response, 403, "permission_denied")["message"]
    assert not Restore.objects.exists()
    root = client_for(f.UserFactory(is_superuser=True))
    assert root.post(url("backup-restore", backup.id), fields, format="json").status_code == 202


# Unknown and other tenants' ids ---------------------------------------------------------------

BACKUP_ENDPOINTS = [
    ("backup", "get"),
    ("backup", "delete"),
    ("backup-download-link", "post"),
    ("backup-download", "get"),
    ("backup-restore", "post"),
]
RESTORE_ENDPOINTS = [("restore", "get"), ("restore-confirm", "post"), ("restore-cancel", "post")]


def request(client, name: str, method: str, id):
    target = url(name, id)
    if name == "backup-download":
        target += "?token=x"
    if name == "backup-restore":
        return client.post(target, {"mode": "merge"}, format="json")
    return getattr(client, method)(target)


@pytest.mark.parametrize(("name", "method"), BACKUP_ENDPOINTS + RESTORE_ENDPOINTS)
@pytest.mark.parametrize("id", ["unknown", "malformed", "number", "other tenant's"])
def test_unknown_and_other_tenants_ids_are_not_found(api, tenant, other, name, method, id):
    kind = StoredBackup if (name, method) in BACKUP_ENDPOINTS else Restore
    if id == "other tenant's":
        theirs = StoredBackup.objects.create(tenant=other, trigger="api", status="succeeded")
        if kind is Restore:
            theirs = Restore.objects.create(
                tenant=other,
                backup=theirs,
                trigger="api",
                mode="merge",
                status="awaiting_confirmation",
            )
        value = theirs.id
    else:
        value = {"unknown": uuid.uuid4(), "malformed": "not-a-uuid", "number": "12"}[id]
    before = snapshot()
    body = assert_error(request(api, name, method, value), 404, "not_found")
    assert str(value) in body["message"]
    assert snapshot() == before


# Access --------------------------------------------------------------------------------------

SUCCESS = {
    ("backups", "get"): 200,
    ("backups", "post"): 202,
    ("backup", "get"): 200,
    ("backup", "delete"): 204,
    ("backup-download-link", "post"): 200,
    ("backup-download", "get"): 200,
    ("backup-restore", "post"): 202,
    ("restores", "get"): 200,
    ("restores", "post"): 202,
    ("restore", "get"): 200,
    ("restore-confirm", "post"): 202,
    ("restore-cancel", "post"): 200,
}


@pytest.fixture
def jobs(tenant, backup):
    """A backup that succeeded and a restore of it awaiting confirmation."""
    restore = Restore.objects.create(
        tenant=tenant,
        backup=backup,
        trigger="api",
        mode="merge",
        status="awaiting_confirmation",
        created_by=backup.created_by,
    )
    return backup, restore, export_bytes(tenant)


def call(client, name: str, method: str, jobs, slug: str = "north-pit"):
    """Each endpoint with a request that passes validation, so access decides the answer."""
    backup, restore, data = jobs
    if name in ("backups", "restores") and method == "get":
        return client.get(url(name, slug=slug))
    if name == "backups":
        return client.post(url(name, slug=slug), {}, format="json")
    if name == "restores":
        upload = SimpleUploadedFile("b.json", data)
        return client.post(
            url(name, slug=slug), {"file": upload, "mode": "merge"}, format="multipart"
        )
    id = backup.id if name.startswith("backup") else restore.id
    target = url(name, id, slug=slug)
    if name == "backup-download":
        response = client.post(url("backup-download-link", id, slug=slug), {}, format="json")
        token = response.json()["url"].split("?token=")[1] if response.status_code == 200 else "x"
        return download(client, f"{target}?token={token}")[0]
    if name == "backup-restore":
        return client.post(target, {"mode": "merge"}, format="json")
    return getattr(client, method)(target)


@pytest.mark.parametrize(("name", "method"), list(SUCCESS))
@pytest.mark.parametrize("role", ["owner", "admin", "superuser"])
def test_owners_admins_and_superusers_may(tenant, jobs, name, method, role):
    user = (
        f.UserFactory(is_superuser=True, is_staff=True)
        if role == "superuser"
        else member_of(tenant, role)
    )
    response = call(client_for(user), name, method, jobs)
    assert response.status_code == SUCCESS[name, method], response.content


@pytest.mark.parametrize(("name", "method"), list(SUCCESS))
def test_members_get_403(tenant, jobs, name, method):
    client = client_for(member_of(tenant, "member"))
    before = snapshot()
    response = call(client, name, method, jobs)
    assert_error(response, 403, "permission_denied")
    assert snapshot() == before


@pytest.mark.parametrize(("name", "method"), list(SUCCESS))
def test_users_of_another_tenant_get_404(tenant, other, jobs, name, method):
    client = client_for(member_of(other, "owner"))
    before = snapshot()
    response = call(client, name, method, jobs)
    body = assert_error(response, 404, "not_found")
    assert "north-pit" in body["message"]
    assert snapshot() == before


@pytest.mark.parametrize(("name", "method"), list(SUCCESS))
def test_anonymous_gets_401(tenant, jobs, name, method):
    before = snapshot()
    response = call(client_for(), name, method, jobs)
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"
    assert snapshot() == before


def test_superuser_reaches_another_tenants_backups_through_its_slug(tenant, other, run_jobs):
    root = client_for(f.UserFactory(is_superuser=True))
    theirs = create_backup(root, run_jobs, slug="south-pit")
    assert root.get(url("backup", theirs.id, slug="south-pit")).status_code == 200
    # Through the wrong tenant's URL, it is still not found.
    assert_error(root.get(url("backup", theirs.id)), 404, "not_found")


# Throttling ----------------------------------------------------------------------------------


def test_creating_backups_and_links_share_the_export_throttle(api, tenant, backup, settings):
    settings.BACKUP_THROTTLE_RATES = {
        "export_per_user": "3/minute",
        "export_per_tenant": "100/minute",
        "import_per_user": "1/minute",
        "import_per_tenant": "100/minute",
    }
    cache.clear()  # the backup of the fixture was counted
    assert api.post(url("backups")).status_code == 202
    assert api.post(url("backup-download-link", backup.id)).status_code == 200
    assert api.post(url("backups")).status_code == 202
    response = api.post(url("backup-download-link", backup.id))
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    # Reading is not counted, and restores are counted apart.
    for _ in range(3):
        assert api.get(url("backups")).status_code == 200
        assert api.get(url("backup", backup.id)).status_code == 200
    assert api.post(url("backup-restore", backup.id), {"mode": "merge"}).status_code == 202
    assert_error(api.post(url("backup-restore", backup.id), {"mode": "merge"}), 429, "throttled")


# Schema --------------------------------------------------------------------------------------


def test_schema_documents_every_stored_backup_endpoint(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    prefix = "/api/v1/tenants/{tenant}/"
    operations = {
        (path.removeprefix(prefix), method)
        for path, item in schema["paths"].items()
        for method in item
        if not path.startswith(prefix + "backup/")
    }
    assert operations == {
        ("backups/", "get"),
        ("backups/", "post"),
        ("backups/{id}/", "get"),
        ("backups/{id}/", "delete"),
        ("backups/{id}/", "patch"),
        ("backups/{id}/download-link/", "post"),
        ("backups/{id}/download/", "get"),
        ("backups/{id}/restore/", "post"),
        ("restores/", "get"),
        ("restores/", "post"),
        ("restores/{id}/", "get"),
        ("restores/{id}/confirm/", "post"),
        ("restores/{id}/cancel/", "post"),
        ("backup-schedule/", "get"),
        ("backup-schedule/", "put"),
        ("backup-schedule/", "patch"),
    }
    error = "#/components/schemas/Error"
    for path, item in schema["paths"].items():
        if path.startswith(prefix + "backup/"):
            continue
        for method, operation in item.items():
            responses = operation["responses"]
            for code in ("401", "403", "404"):
                content = responses[code]["content"]["application/json"]["schema"]
                assert content["$ref"] == error, (path, method, code)
            assert operation["description"] and operation["summary"]
            if method == "post" and not path.endswith("cancel/"):
                assert operation["requestBody"]["content"], (path, method)
    paths = schema["paths"]
    upload = paths[prefix + "restores/"]["post"]["requestBody"]["content"]
    assert list(upload) == ["multipart/form-data"]
    download_ok = paths[prefix + "backups/{id}/download/"]["get"]["responses"]["200"]
    assert list(download_ok["content"]) == ["application/zstd"]
    created = paths[prefix + "backups/"]["post"]["responses"]
    assert created["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/JobAccepted")
    assert "429" in created
