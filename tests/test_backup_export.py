import gzip
import io
import re

import pytest
import zstandard
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connection, connections

from backup.export import iter_export
from backup.registry import registry
from backup.restore import preview_import
from tenants.models import AuditLog, MeterReading, Tenant

from . import factories as f
from .backup_support import SECRET, export_bytes, parse, populate

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant():
    tenant = f.TenantFactory(slug="north-pit", name="North Pit Mining")
    populate(tenant)
    return tenant


def test_document_has_the_sections_in_order(tenant):
    data = export_bytes(tenant)
    document = parse(data)
    assert list(document) == ["metadata", "schema", "master_data", "tenant_data", "statistics"]
    meta = document["metadata"]
    assert meta["format"] == "tenant-backup"
    assert meta["format_version"] == 2
    assert meta["secrets"] is False  # a plain backup: whether each secret was set, not it
    assert meta["tenant"] == {"id": str(tenant.pk), "name": tenant.name, "slug": "north-pit"}
    assert meta["options"] == {
        "include_audit_logs": False,
        "include_deleted": False,
        "include_files": False,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", meta["exported_at"])
    order = [t.name for t in registry().tenant_tables if t.name != "audit_log"]
    assert list(document["tenant_data"]) == order
    assert document["schema"]["tables"]["vehicle"]["key"] == ["serial_number"]
    assert "vehicle.status" in document["schema"]["enums"]
    assert document["statistics"] == {t: len(rows) for t, rows in document["tenant_data"].items()}
    assert all(document["tenant_data"][t] for t in order), "every table has rows"


def test_values_are_exact_and_typed(tenant):
    document = parse(export_bytes(tenant))
    reading = document["tenant_data"]["meter_reading"][0]
    stored = MeterReading.objects.get(pk=reading["id"])
    assert reading["value"] == f"{stored.value:.2f}"
    assert reading["read_at"].endswith("Z") and len(reading["read_at"]) == 27
    assert reading["vehicle"] == str(stored.vehicle_id)


def test_same_data_gives_the_same_bytes_apart_from_the_time(tenant):
    first = export_bytes(tenant, include_audit_logs=False)
    second = export_bytes(tenant, include_audit_logs=False)
    strip = re.compile(rb'"exported_at":"[^"]+"')
    assert strip.sub(b"", first) == strip.sub(b"", second)


def test_secrets_and_password_hashes_never_leave_the_database(tenant):
    data = export_bytes(tenant, include_audit_logs=True, include_deleted=True)
    assert SECRET.encode() not in data
    assert b"pbkdf2" not in data and b"password" not in data
    credential = parse(data)["tenant_data"]["integration_credential"][0]
    assert credential["has_secret"] is True and "secret" not in credential
    membership = parse(data)["tenant_data"]["membership"][0]
    assert "@" in membership["user"] and membership["role"] == "owner"


def test_master_data_holds_only_what_the_tenant_references(tenant):
    f.EquipmentModelFactory(name="Unreferenced 9000")
    document = parse(export_bytes(tenant))
    names = {row["name"] for row in document["master_data"]["equipment_model"]}
    assert "Unreferenced 9000" not in names
    referenced = {row["equipment_model"] for row in document["tenant_data"]["vehicle"]}
    assert referenced <= {row["id"] for row in document["master_data"]["equipment_model"]}
    oems = {row["id"] for row in document["master_data"]["oem"]}
    assert {row["oem"] for row in document["master_data"]["equipment_model"]} <= oems


def test_soft_deleted_rows_and_their_dependants_only_with_the_option(tenant):
    live = parse(export_bytes(tenant))["tenant_data"]
    everything = parse(export_bytes(tenant, include_deleted=True))["tenant_data"]
    for table in ("vehicle", "work_order", "part", "profile"):
        assert all(row["deleted_at"] is None for row in live[table]), table
        assert any(row["deleted_at"] for row in everything[table]), table
    # The deleted vehicle's reading goes with it; a live record's link to a deleted order is null.
    assert len(everything["meter_reading"]) == len(live["meter_reading"]) + 1
    assert len(everything["financial_record"]) == len(live["financial_record"])
    assert sum(r["work_order"] is None for r in live["financial_record"]) == 1 + sum(
        r["work_order"] is None for r in everything["financial_record"]
    )


def test_audit_logs_only_with_the_option_and_every_export_is_audited(tenant):
    assert "audit_log" not in parse(export_bytes(tenant))["tenant_data"]
    before = AuditLog.objects.filter(tenant=tenant, action="backup.export").count()
    document = parse(export_bytes(tenant, include_audit_logs=True))
    assert document["tenant_data"]["audit_log"]
    entries = AuditLog.objects.filter(tenant=tenant, action="backup.export")
    assert entries.count() == before + 1
    latest = entries.order_by("-created_at").first()
    assert latest.details["options"]["include_audit_logs"] is True
    assert latest.details["statistics"]["vehicle"] == len(document["tenant_data"]["vehicle"])


def test_command_writes_gzip_for_gz_paths_and_by_slug_or_id(tenant, tmp_path):
    path = tmp_path / "backup.json.gz"
    call_command("export_tenant", "north-pit", "-o", str(path))
    with gzip.open(path) as stream:
        assert parse(stream.read())["metadata"]["tenant"]["slug"] == "north-pit"
    plain = tmp_path / "backup.json"
    call_command("export_tenant", str(tenant.pk), "-o", str(plain), "--include-deleted")
    assert parse(plain.read_bytes())["metadata"]["options"]["include_deleted"] is True


def test_command_writes_zstd_for_zst_paths_which_import_reads_back(tenant, tmp_path):
    path = tmp_path / "backup.json.zst"
    call_command("export_tenant", "north-pit", "-o", str(path), stdout=io.StringIO())
    data = path.read_bytes()
    assert data[:4] == b"\x28\xb5\x2f\xfd"
    document = parse(zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read())
    assert document["metadata"]["tenant"]["slug"] == "north-pit"
    report = preview_import(path, tenant=tenant)
    assert report.totals().in_file == sum(len(rows) for rows in document["tenant_data"].values())
    assert report.totals().unchanged == report.totals().in_file


def test_command_writes_the_file_whole_or_says_why_not(tenant, tmp_path):
    backups = tmp_path / "backups"
    backups.mkdir()
    path = backups / "backup.json"
    call_command("export_tenant", "north-pit", "-o", str(path), stdout=io.StringIO())
    assert [p.name for p in backups.iterdir()] == ["backup.json"]  # no temporary file left
    assert path.stat().st_mode & 0o777 == 0o600  # tenant data: readable by its owner only
    missing = tmp_path / "no-such-dir" / "backup.json"
    with pytest.raises(CommandError) as caught:
        call_command("export_tenant", "north-pit", "-o", str(missing))
    assert str(caught.value) == f"Cannot write {missing}: No such file or directory."
    assert caught.value.returncode == 1


def test_backup_stats_counts_every_table(tenant, capsys):
    call_command("backup_stats", "north-pit")
    out = capsys.readouterr().out
    assert "meter_reading" in out and "total" in out
    assert f"{MeterReading.objects.filter(tenant=tenant).count():>10,}" in out


def without_time(data: bytes) -> bytes:
    return re.sub(rb'"exported_at":"[^"]*"', b'"exported_at":""', data)


def test_streamed_export_gives_the_same_document_plain_and_gzipped(tenant):
    plain = b"".join(iter_export(tenant))
    zipped = b"".join(iter_export(tenant, compress=True))
    assert zipped[:2] == b"\x1f\x8b"
    assert without_time(gzip.decompress(zipped)) == without_time(plain)
    assert without_time(plain) == without_time(export_bytes(tenant))
    assert AuditLog.objects.filter(tenant=tenant, action="backup.export").count() == 3


@pytest.mark.django_db(transaction=True)  # the export's own transaction, not the test's
def test_an_export_under_way_leaves_other_connections_free_to_write():
    # An export streams to the client in one transaction, for as long as the download takes.
    tenant = f.TenantFactory(slug="north-pit", name="North Pit")
    populate(tenant, vehicles=2)
    chunks = iter_export(tenant)
    first = next(chunks)
    assert connection.in_atomic_block  # the export's transaction is open
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with other.cursor() as cursor:  # autocommit: written and committed at once
            cursor.execute(
                f"UPDATE {other.ops.quote_name(Tenant._meta.db_table)} SET name = %s WHERE id = %s",
                ["Renamed", Tenant._meta.pk.get_db_prep_value(tenant.pk, other)],
            )
    finally:
        other.close()
    document = parse(first + b"".join(chunks))
    assert document["metadata"]["tenant"]["name"] == "North Pit"
    assert sum(document["statistics"].values()) > 0
    assert Tenant.objects.get(pk=tenant.pk).name == "Renamed"


def test_a_download_cut_off_is_audited_as_incomplete_with_the_rows_sent(tenant):
    total = sum(parse(export_bytes(tenant))["statistics"].values())
    AuditLog.objects.filter(tenant=tenant, action="backup.export").delete()
    chunks = iter_export(tenant)
    for chunk in chunks:
        if b'"tenant_data"' in chunk:
            break
    for _ in range(6):  # a few tables' rows
        next(chunks)
    chunks.close()  # what the server does when the client goes away
    (entry,) = AuditLog.objects.filter(tenant=tenant, action="backup.export")
    assert entry.details["outcome"] == "incomplete"
    assert entry.details["stopped_by"] == "the download was stopped"
    assert 0 < entry.details["rows_sent"] < total


def test_a_complete_download_is_audited_as_complete(tenant):
    AuditLog.objects.filter(tenant=tenant, action="backup.export").delete()
    b"".join(iter_export(tenant, compress=True))
    (entry,) = AuditLog.objects.filter(tenant=tenant, action="backup.export")
    assert entry.details["outcome"] == "complete" and "rows_sent" not in entry.details
