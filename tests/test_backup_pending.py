"""The pending-upload service: an upload kept in storage between its preview and its import."""

import datetime as dt
import gzip
import os

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from backup import uploads as pending
from backup.errors import ConfirmationRequired, InvalidFile, UploadNotFound
from backup.restore import ImportOptions, Mode
from tenants.models import MeterReading, Tenant, Vehicle

from . import factories as f
from .backup_support import export_bytes, snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(tenant):
    user = f.UserFactory()
    f.MembershipFactory(tenant=tenant, user=user, role="owner")
    return user


def upload(data: bytes, name: str = "backup.json") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def files_in(location) -> list[str]:
    return sorted(os.listdir(location)) if location.exists() else []


def test_storage_points_at_the_test_directory(upload_dir):
    assert pending.upload_storage().location == str(upload_dir)


def test_preview_keeps_the_upload_and_its_record(tenant, user, upload_dir):
    data = export_bytes(tenant)
    kept, report = pending.preview_upload(
        upload(data), tenant=tenant, user=user, options=ImportOptions(mode=Mode.MERGE)
    )
    assert files_in(upload_dir) == sorted([kept.id + ".backup", kept.id + ".json"])
    assert (upload_dir / (kept.id + ".backup")).read_bytes() == data
    assert not report.applied
    assert report.totals().unchanged > 0 and report.totals().create == 0
    assert kept.tenant_id == str(tenant.pk) and kept.user_id == user.pk
    assert kept.mode == "merge" and kept.size == len(data)
    expires = dt.datetime.fromisoformat(kept.expires_at)
    assert dt.timedelta(minutes=59) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=1)


def test_import_applies_and_removes_the_upload(tenant, user, upload_dir):
    data = export_bytes(tenant)
    reading = MeterReading.objects.filter(tenant=tenant, vehicle__deleted_at__isnull=True).first()
    reading_id = reading.pk
    reading.delete()
    kept, report = pending.preview_upload(
        upload(data), tenant=tenant, user=user, options=ImportOptions(mode=Mode.MERGE)
    )
    assert report.tables["meter_reading"].create == 1 and not report.applied
    assert not MeterReading.objects.filter(pk=reading_id).exists()
    result = pending.import_pending(kept.id, tenant=tenant, user=user)
    assert result.applied and result.tables["meter_reading"].create == 1
    assert MeterReading.objects.filter(pk=reading_id).exists()
    assert files_in(upload_dir) == []
    with pytest.raises(UploadNotFound):
        pending.import_pending(kept.id, tenant=tenant, user=user)


def test_a_file_that_cannot_be_read_is_not_kept(tenant, user, upload_dir):
    with pytest.raises(InvalidFile):
        pending.preview_upload(
            upload(b"not json at all"),
            tenant=tenant,
            user=user,
            options=ImportOptions(mode=Mode.MERGE),
        )
    assert files_in(upload_dir) == []


def test_upload_is_bound_to_its_tenant_and_user(tenant, user):
    kept, _ = pending.preview_upload(
        upload(export_bytes(tenant)), tenant=tenant, user=user, options=ImportOptions()
    )
    colleague = f.UserFactory()
    f.MembershipFactory(tenant=tenant, user=colleague, role="admin")
    other = f.TenantFactory()
    with pytest.raises(UploadNotFound):
        pending.get_pending(kept.id, tenant=tenant, user=colleague)
    with pytest.raises(UploadNotFound):
        pending.get_pending(kept.id, tenant=other, user=user)
    assert pending.get_pending(kept.id, tenant=tenant, user=user) == kept


@pytest.mark.parametrize("bad_id", ["", "short", "../../etc/passwd-xxxxxxxxxxxxxxxxx", "x" * 65])
def test_malformed_ids_are_not_found(tenant, user, bad_id):
    with pytest.raises(UploadNotFound):
        pending.get_pending(bad_id, tenant=tenant, user=user)


def test_expired_upload_is_not_found_and_removed(settings, tenant, user, upload_dir):
    settings.BACKUP_UPLOAD_TTL_SECONDS = 0
    kept, _ = pending.preview_upload(
        upload(export_bytes(tenant)), tenant=tenant, user=user, options=ImportOptions()
    )
    with pytest.raises(UploadNotFound):
        pending.import_pending(kept.id, tenant=tenant, user=user)
    assert files_in(upload_dir) == []


def test_purge_removes_only_expired_uploads(settings, tenant, user, upload_dir):
    old, _ = pending.preview_upload(
        upload(export_bytes(tenant)), tenant=tenant, user=user, options=ImportOptions()
    )
    fresh, _ = pending.preview_upload(
        upload(export_bytes(tenant)), tenant=tenant, user=user, options=ImportOptions()
    )
    two_hours_ago = (dt.datetime.now() - dt.timedelta(hours=2)).timestamp()
    for suffix in (".backup", ".json"):
        os.utime(upload_dir / (old.id + suffix), (two_hours_ago, two_hours_ago))
    assert pending.purge_expired() == 1
    assert files_in(upload_dir) == sorted([fresh.id + ".backup", fresh.id + ".json"])


def test_purge_without_any_upload_yet(upload_dir):
    assert not upload_dir.exists()
    assert pending.purge_expired() == 0


def test_replace_needs_the_tenant_name_and_keeps_the_upload_until_then(tenant, user, upload_dir):
    kept, _ = pending.preview_upload(
        upload(export_bytes(tenant)),
        tenant=tenant,
        user=user,
        options=ImportOptions(mode=Mode.REPLACE),
    )
    before = snapshot(audit=False)
    for wrong in ("", "north pit", "Other"):
        with pytest.raises(ConfirmationRequired):
            pending.import_pending(kept.id, tenant=tenant, user=user, confirmation=wrong)
    assert snapshot(audit=False) == before
    assert len(files_in(upload_dir)) == 2
    report = pending.import_pending(kept.id, tenant=tenant, user=user, confirmation="North Pit")
    assert report.applied and report.mode == Mode.REPLACE
    assert files_in(upload_dir) == []


def test_new_tenant_restore_from_storage(tenant, user):
    kept, report = pending.preview_upload(
        upload(export_bytes(tenant)),
        tenant=tenant,
        user=user,
        options=ImportOptions(
            mode=Mode.NEW_TENANT, new_tenant_slug="north-pit-copy", new_tenant_name="Copy"
        ),
    )
    assert not Tenant.objects.filter(slug="north-pit-copy").exists()
    assert report.tenant["slug"] == "north-pit-copy"
    result = pending.import_pending(kept.id, tenant=tenant, user=user)
    copy = Tenant.objects.get(slug="north-pit-copy")
    assert result.tenant["id"] == str(copy.pk) and copy.name == "Copy"
    assert Vehicle.objects.filter(tenant=copy).count() == result.tables["vehicle"].create > 0


def test_gzip_upload(tenant, user):
    data = gzip.compress(export_bytes(tenant))
    kept, report = pending.preview_upload(
        ContentFile(data, name="b.json.gz"), tenant=tenant, user=user, options=ImportOptions()
    )
    assert kept.filename == "b.json.gz" and report.totals().unchanged > 0


def test_an_unexpected_failure_of_the_preview_leaves_nothing(tenant, user, upload_dir, monkeypatch):
    def broken_preview(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(pending, "preview_import", broken_preview)
    with pytest.raises(RuntimeError):
        pending.preview_upload(
            upload(export_bytes(tenant)), tenant=tenant, user=user, options=ImportOptions()
        )
    assert files_in(upload_dir) == []


def test_purge_command_removes_expired_uploads(tenant, user, upload_dir):
    from io import StringIO

    from django.core.management import call_command

    old, _ = pending.preview_upload(
        upload(export_bytes(tenant)), tenant=tenant, user=user, options=ImportOptions()
    )
    two_hours_ago = (dt.datetime.now() - dt.timedelta(hours=2)).timestamp()
    for suffix in (".backup", ".json"):
        os.utime(upload_dir / (old.id + suffix), (two_hours_ago, two_hours_ago))
    out = StringIO()
    call_command("purge_backup_uploads", stdout=out)
    assert "Removed 1 expired upload(s)" in out.getvalue()
    assert files_in(upload_dir) == []
