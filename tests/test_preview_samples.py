"""A preview shows, per table, the first rows it would create, update (the fields that change,
old -> new) and delete, labelled by their natural key; the counts stay exact, and a secret's
value is never shown."""

import io

import pytest
from django.core.management import call_command

from backup.export import ExportOptions, export_tenant
from backup.restore import ImportOptions, Mode, preview_import
from tenants.models import IntegrationCredential, Part, Site, Vehicle

from .test_encryption import keypair

pytestmark = pytest.mark.django_db


def backup_of(tenant, **options) -> bytes:
    out = io.BytesIO()
    export_tenant(tenant, out, options=ExportOptions(**options))
    return out.getvalue()


def preview(data: bytes, tenant, mode: Mode, **options):
    return preview_import(
        io.BytesIO(data), tenant=tenant, options=ImportOptions(mode=mode, **options)
    )


def test_a_merge_preview_shows_the_rows_it_would_update_with_old_and_new(tenant):
    data = backup_of(tenant)
    vehicle = Vehicle.objects.filter(tenant=tenant, deleted_at=None).order_by("pk").first()
    Vehicle.objects.filter(pk=vehicle.pk).update(status="retired", fleet_number="HT-99")
    report = preview(data, tenant, Mode.MERGE)
    (update,) = report.samples["vehicle"]["update"]
    assert f"serial_number='{vehicle.serial_number}'" in update["row"]
    assert update["changes"] == {
        "status": ["retired", vehicle.status],
        "fleet_number": ["HT-99", vehicle.fleet_number],
    }
    assert report.tables["vehicle"].update == 1
    assert "site" not in report.samples  # nothing would change there


def test_a_merge_preview_shows_the_rows_it_would_create(tenant):
    data = backup_of(tenant)
    part = Part.objects.get(tenant=tenant, deleted_at=None)
    part.delete()
    report = preview(data, tenant, Mode.MERGE)
    (created,) = report.samples["part"]["create"]
    assert created.endswith(f"(part_number='{part.part_number}')")
    assert report.tables["part"].create == 1


def test_a_replace_preview_shows_the_rows_it_would_delete(tenant):
    data = backup_of(tenant)
    extra = Site.objects.create(tenant=tenant, name="Added since", kind="quarry")
    report = preview(data, tenant, Mode.REPLACE)
    sample = report.samples["site"]
    assert f"name='{extra.name}'" in sample["delete"]
    assert sample["create"] and sample["create"][0].startswith("row 1 (name=")
    assert report.tables["site"].delete == 2


def test_the_sample_is_bounded_and_the_counts_exact(tenant, settings):
    settings.BACKUP_PREVIEW_SAMPLE_ROWS = 2
    report = preview(backup_of(tenant), None, Mode.NEW_TENANT, new_tenant_slug="copy")
    readings = report.samples["meter_reading"]["create"]
    assert len(readings) == 2 and readings[0].startswith("row 1 ")
    assert report.tables["meter_reading"].create > 2


def test_a_secret_that_would_change_is_never_shown(tenant, tmp_path):
    identity, public = keypair(tmp_path)
    path = tmp_path / "backup.json.age"
    call_command(
        "export_tenant", tenant.slug, "-o", str(path), "--recipient", public, stdout=io.StringIO()
    )
    IntegrationCredential.objects.filter(tenant=tenant).update(secret="changed since")
    out = io.StringIO()
    call_command(
        "import_tenant",
        str(path),
        "--tenant",
        tenant.slug,
        "--identity",
        str(identity),
        "--preview",
        stdout=out,
    )
    assert "changed since" not in out.getvalue()
    assert "secret: '(secret: not shown)' -> '(secret: not shown)'" in out.getvalue()


def test_the_command_prints_the_sample(tenant, tmp_path):
    path = tmp_path / "backup.json"
    path.write_bytes(backup_of(tenant))
    vehicle = Vehicle.objects.filter(tenant=tenant, deleted_at=None).order_by("pk").first()
    Vehicle.objects.filter(pk=vehicle.pk).update(status="retired")
    out = io.StringIO()
    call_command("import_tenant", str(path), "--tenant", tenant.slug, "--preview", stdout=out)
    assert f"status: 'retired' -> '{vehicle.status}'" in out.getvalue()


def test_the_page_and_the_api_show_the_sample(client, tenant):
    from .test_admin_backup import login
    from .test_admin_backup import preview as page_preview
    from .test_api import client_for, member_of
    from .test_api import preview as api_preview

    data = backup_of(tenant)
    vehicle = Vehicle.objects.filter(tenant=tenant, deleted_at=None).order_by("pk").first()
    Vehicle.objects.filter(pk=vehicle.pk).update(status="retired")
    login(client, tenant)
    _pending, shown = page_preview(client, tenant, data)
    page = shown.content.decode()
    assert 'id="backup-samples"' in page and "<code>retired</code>" in page
    body = api_preview(client_for(member_of(tenant, "owner")), data).json()
    (update,) = body["preview"]["samples"]["vehicle"]["update"]
    assert update["changes"]["status"] == ["retired", vehicle.status]
