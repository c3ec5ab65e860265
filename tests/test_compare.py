"""compare_backup: a backup against a tenant's data, and two backups, matched as a merge matches
rows (by id, then natural key); per table the rows only on one side and those that differ, with
old -> new for the first few; exit 0 when identical, 1 when not, 3/4 for unreadable files."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from backup.compare import compare_backups, compare_with_tenant
from backup.errors import Refused
from backup.export import ExportOptions, export_tenant
from backup.models import Drill, Trigger
from backup.stored.backups import make_backup_now
from backup.stored.drills import request_drill
from tenants.models import AuditLog, IntegrationCredential, MeterReading, Part, Site, Vehicle

from .backup_support import snapshot
from .test_encryption import keypair

pytestmark = pytest.mark.django_db


def backup_of(tenant, **options) -> bytes:
    out = io.BytesIO()
    export_tenant(tenant, out, options=ExportOptions(**options))
    return out.getvalue()


def written(tmp_path, data: bytes, name: str = "backup.json"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_fresh_backup_is_identical_to_its_tenant(tenant):
    data = backup_of(tenant)
    comparison = compare_with_tenant(io.BytesIO(data), tenant)
    assert comparison.identical, comparison.as_dict()
    assert comparison.totals().same == sum(
        spec_rows for spec_rows in json.loads(data)["statistics"].values()
    )


def test_changes_after_the_backup_are_listed_with_old_and_new(tenant):
    data = backup_of(tenant)
    vehicle = Vehicle.objects.filter(tenant=tenant, deleted_at=None).order_by("pk").first()
    Vehicle.objects.filter(pk=vehicle.pk).update(status="retired")
    added = Site.objects.create(tenant=tenant, name="Added since", kind="quarry")
    part = Part.objects.filter(tenant=tenant, deleted_at=None).first()
    part.delete()
    comparison = compare_with_tenant(io.BytesIO(data), tenant)
    assert not comparison.identical
    v = comparison.tables["vehicle"]
    assert (v.differ, v.only_old, v.only_new) == (1, 0, 0)
    (row,) = v.sample_differ
    assert f"serial_number='{vehicle.serial_number}'" in row["row"]
    assert row["changes"] == {"status": ["retired", vehicle.status]}
    s = comparison.tables["site"]
    assert (s.differ, s.only_old, s.only_new) == (0, 1, 0)
    assert s.sample_only_old == [f"name='{added.name}'"]
    p = comparison.tables["part"]
    assert (p.differ, p.only_old, p.only_new) == (0, 0, 1)
    assert p.sample_only_new[0].endswith(f"(part_number='{part.part_number}')")


def test_two_backups_compare(tenant, tmp_path):
    first = written(tmp_path, backup_of(tenant), "first.json")
    # One the backups carry: a soft-deleted vehicle's readings are left out with it.
    MeterReading.objects.filter(tenant=tenant, vehicle__deleted_at=None).first().delete()
    Site.objects.create(tenant=tenant, name="Added since", kind="quarry")
    second = written(tmp_path, backup_of(tenant), "second.json")
    comparison = compare_backups(first, second)
    assert comparison.tables["meter_reading"].only_old == 1
    assert comparison.tables["site"].only_new == 1
    assert comparison.totals().differ == 0
    assert compare_backups(first, first).identical


def test_the_command_exits_0_when_identical_and_1_when_not(tenant, tmp_path):
    path = written(tmp_path, backup_of(tenant))
    out = io.StringIO()
    call_command("compare_backup", str(path), "--tenant", tenant.slug, stdout=out)
    assert "Identical" in out.getvalue()
    Site.objects.create(tenant=tenant, name="Added since", kind="quarry")
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("compare_backup", str(path), "--tenant", tenant.slug, stdout=out)
    assert raised.value.returncode == 1
    assert "site: only old name='Added since'" in out.getvalue()


def test_with_the_audit_trail_entries_written_since_are_not_differences(tenant):
    data = backup_of(tenant, include_audit_logs=True)
    comparison = compare_with_tenant(io.BytesIO(data), tenant)
    trail = comparison.tables["audit_log"]
    assert trail.written_since >= 1  # the export's own entry
    assert comparison.identical, comparison.as_dict()
    # An entry the backup has that the tenant lost is a difference.
    AuditLog.objects.filter(tenant=tenant, action="backup.export").delete()
    older = AuditLog.objects.filter(tenant=tenant).order_by("created_at").first()
    older.delete()
    assert compare_with_tenant(io.BytesIO(data), tenant).tables["audit_log"].only_new == 1


def test_without_the_audit_trail_it_is_not_compared(tenant):
    comparison = compare_with_tenant(io.BytesIO(backup_of(tenant)), tenant)
    assert "audit_log" in comparison.not_compared
    assert "audit_log" not in comparison.tables


def test_soft_deleted_rows_count_only_when_the_backup_has_them(tenant):
    assert Vehicle.objects.filter(tenant=tenant).exclude(deleted_at=None).exists()
    assert compare_with_tenant(io.BytesIO(backup_of(tenant)), tenant).identical
    full = backup_of(tenant, include_deleted=True)
    assert compare_with_tenant(io.BytesIO(full), tenant).identical
    # Two backups made differently differ by the soft-deleted rows.
    alive = backup_of(tenant)
    comparison = compare_backups(io.BytesIO(full), io.BytesIO(alive))
    assert (
        comparison.tables["vehicle"].only_old
        == Vehicle.objects.filter(tenant=tenant).exclude(deleted_at=None).count()
    )


def test_a_row_recreated_under_a_new_id_is_matched_by_natural_key(tenant):
    first = backup_of(tenant)
    part = Part.objects.filter(tenant=tenant, deleted_at=None).first()
    part.delete()
    Part.objects.create(
        tenant=tenant, part_number=part.part_number, name="Renamed", unit_cost=part.unit_cost
    )
    second = backup_of(tenant)
    comparison = compare_backups(io.BytesIO(first), io.BytesIO(second))
    p = comparison.tables["part"]
    assert (p.differ, p.only_old, p.only_new) == (1, 0, 0)
    assert p.sample_differ[0]["changes"]["name"] == [part.name, "Renamed"]
    with_tenant = compare_with_tenant(io.BytesIO(first), tenant).tables["part"]
    assert (with_tenant.differ, with_tenant.only_old, with_tenant.only_new) == (1, 0, 0)


def test_secrets_are_compared_and_never_shown(tenant, tmp_path):
    identity, public = keypair(tmp_path)
    path = tmp_path / "backup.json.age"
    call_command(
        "export_tenant", tenant.slug, "-o", str(path), "--recipient", public, stdout=io.StringIO()
    )
    args = ["compare_backup", str(path), "--tenant", tenant.slug, "--identity", str(identity)]
    call_command(*args, stdout=io.StringIO())
    IntegrationCredential.objects.filter(tenant=tenant).update(secret="changed since")
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command(*args, "--json", stdout=out)
    assert raised.value.returncode == 1
    assert "changed since" not in out.getvalue()
    (row,) = json.loads(out.getvalue())["tables"]["integration_credential"]["sample_differ"]
    assert row["changes"] == {"secret": ["(secret: not shown)", "(secret: not shown)"]}


def test_a_backup_of_another_tenant_is_refused(tenant, other):
    with pytest.raises(Refused, match="only backups of one tenant are compared"):
        compare_with_tenant(io.BytesIO(backup_of(other)), tenant)
    with pytest.raises(Refused, match="only backups of one tenant are compared"):
        compare_backups(io.BytesIO(backup_of(tenant)), io.BytesIO(backup_of(other)))


def test_a_crafted_backup_naming_another_tenants_rows_sees_none_of_them(tenant, other):
    document = json.loads(backup_of(tenant))
    theirs = Vehicle.objects.filter(tenant=other, deleted_at=None).first()
    row = dict(document["tenant_data"]["vehicle"][0])
    row.update(id=str(theirs.pk), serial_number=theirs.serial_number)
    document["tenant_data"]["vehicle"].append(row)
    document["statistics"]["vehicle"] += 1
    comparison = compare_with_tenant(io.BytesIO(json.dumps(document).encode()), tenant)
    v = comparison.tables["vehicle"]
    # Their row is not this tenant's: only in the file, labelled by what the file says.
    assert (v.only_new, v.differ, v.only_old) == (1, 0, 0)
    assert theirs.serial_number in v.sample_only_new[0]
    shown = json.dumps(comparison.as_dict())
    other_vehicles = Vehicle.objects.filter(tenant=other).exclude(pk=theirs.pk)
    assert not any(str(v.pk) in shown or v.serial_number in shown for v in other_vehicles)


def test_unreadable_and_refused_files_exit_3_and_4_and_change_nothing(tenant, tmp_path):
    before = snapshot()
    garbage = written(tmp_path, b"not json at all", "garbage.json")
    with pytest.raises(CommandError) as raised:
        call_command("compare_backup", str(garbage), "--tenant", tenant.slug)
    assert raised.value.returncode == 3
    document = json.loads(backup_of(tenant))
    document["tenant_data"]["vehicle"][0]["status"] = "flying"
    broken = written(tmp_path, json.dumps(document).encode(), "broken.json")
    before = snapshot()
    err = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("compare_backup", str(broken), "--tenant", tenant.slug, stderr=err)
    assert raised.value.returncode == 4
    assert "vehicle row 1" in err.getvalue() and "status" in err.getvalue()
    with pytest.raises(CommandError) as raised:
        call_command("compare_backup", str(broken), str(broken))
    assert raised.value.returncode == 4
    assert snapshot() == before


def test_a_comparison_with_a_tenant_is_audited(tenant):
    data = backup_of(tenant)
    Site.objects.create(tenant=tenant, name="Added since", kind="quarry")
    compare_with_tenant(io.BytesIO(data), tenant)
    entry = AuditLog.objects.filter(tenant=tenant, action="backup.compare").get()
    assert entry.details["identical"] is False
    assert entry.details["tables"]["site"]["only_old"] == 1


def test_wrong_arguments_are_refused(tenant, tmp_path):
    path = str(written(tmp_path, backup_of(tenant)))
    for args in ([path], [path, path, "--tenant", tenant.slug], [path, path, path]):
        with pytest.raises(CommandError) as raised:
            call_command("compare_backup", *args)
        assert raised.value.returncode == 2


# Restore drills compare the restored tenant with the file ----------------------------------


def drilled(tenant, run_jobs, **options):
    backup = make_backup_now(
        tenant, user=None, trigger=Trigger.COMMAND, options=ExportOptions(**options)
    )
    with run_jobs():
        drill = request_drill(backup)
    drill.refresh_from_db()
    return drill


def test_a_drill_of_a_full_encrypted_backup_finds_the_restore_identical(
    tenant, run_jobs, settings, tmp_path
):
    identity, public = keypair(tmp_path, "deployment")
    settings.BACKUP_AGE_RECIPIENTS = [public]
    settings.BACKUP_AGE_IDENTITY_FILE = str(identity)
    drill = drilled(tenant, run_jobs, include_audit_logs=True, include_deleted=True)
    assert drill.status == Drill.Status.PASSED, drill.problems
    assert drill.restored["integration_credential"] >= 1


def _mangle_site_codes_on_insert() -> None:
    """A database that changes what it is given (a trigger someone left): the restore's rows
    are not the backup's."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION mangle() RETURNS trigger AS $$ BEGIN NEW.code := 'XX'; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER mangle BEFORE INSERT ON tenants_site "
                "FOR EACH ROW EXECUTE FUNCTION mangle()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER mangle AFTER INSERT ON tenants_site BEGIN "
                "UPDATE tenants_site SET code = 'XX' WHERE id = NEW.id; END"
            )


def test_a_drill_whose_restored_rows_differ_from_the_file_fails_naming_table_and_row(
    tenant, run_jobs
):
    site = Site.objects.filter(tenant=tenant).order_by("name").first()
    backup_rows = Site.objects.filter(tenant=tenant).count()
    _mangle_site_codes_on_insert()
    drill = drilled(tenant, run_jobs)
    assert drill.status == Drill.Status.FAILED
    (problem,) = drill.problems
    assert problem.startswith(
        f"Table site: the restore differs from the backup: 0 of its rows missing, 0 rows it "
        f"does not have, {backup_rows} rows different (first: differs row "
    )
    assert "in code)." in problem
    assert site.code != "XX"
