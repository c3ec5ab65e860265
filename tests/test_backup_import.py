import dataclasses
import gzip
import io
import sqlite3
import threading
import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from backup.db import writers as background_writer
from backup.db.dialect import dialect
from backup.errors import InvalidFile, Refused, ValidationFailed
from backup.registry import registry
from backup.restore import ImportOptions, Mode, import_backup, preview_import
from backup.restore.attempts import applies
from masterdata.models import OEM, EquipmentModel
from tenants.models import (
    AuditLog,
    FinancialRecord,
    IntegrationCredential,
    MeterReading,
    Site,
    Tenant,
    Vehicle,
)

from . import factories as f
from .backup_support import (
    SECRET,
    dump,
    export_bytes,
    parse,
    populate,
    snapshot,
    tenant_snapshot,
    without_secrets,
)

pytestmark = pytest.mark.django_db

MERGE = ImportOptions(mode=Mode.MERGE)
REPLACE = ImportOptions(mode=Mode.REPLACE)


@pytest.fixture
def tenant():
    tenant = f.TenantFactory(slug="north-pit")
    populate(tenant)
    return tenant


@pytest.fixture
def other():
    other = f.TenantFactory(slug="other")
    populate(other, vehicles=1)
    return other


@pytest.fixture
def many_copy_statements(monkeypatch):
    """A direct load in COPY statements of three rows (on SQLite, INSERTs of two), handed over
    two at a time through a queue of two batches: what a load of a million rows does, at the size
    of the test data."""
    monkeypatch.setattr(background_writer, "CHUNK_ROWS", 3)
    monkeypatch.setattr(background_writer, "BATCH_ROWS", 2)
    monkeypatch.setattr(background_writer, "QUEUED_BATCHES", 2)


def copy_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "backup-write"]


def run(data: bytes, tenant, options=MERGE):
    return import_backup(io.BytesIO(data), tenant=tenant, options=options)


def preview(data: bytes, tenant, options=MERGE):
    return preview_import(io.BytesIO(data), tenant=tenant, options=options)


@pytest.mark.usefixtures("many_copy_statements")
def test_replace_round_trip_gives_the_same_data(tenant, other):
    other_before = tenant_snapshot(other)
    first = parse(export_bytes(tenant, include_deleted=True))
    report = run(dump(first), tenant, REPLACE)
    assert report.applied
    assert report.tables["vehicle"].delete == report.tables["vehicle"].create
    second = parse(export_bytes(tenant, include_deleted=True))
    assert without_secrets(second["tenant_data"]) == without_secrets(first["tenant_data"])
    assert second["statistics"] == first["statistics"]
    assert tenant_snapshot(other) == other_before


def test_replace_restores_credentials_without_secret_and_flags_them(tenant):
    run(export_bytes(tenant), tenant, REPLACE)
    credential = IntegrationCredential.objects.get(tenant=tenant)
    assert credential.secret == "" and credential.secret_needs_reentry is True


def test_replace_removes_what_the_backup_does_not_have_but_keeps_the_audit_trail(tenant):
    data = export_bytes(tenant)  # without soft-deleted rows
    audit_before = AuditLog.objects.filter(tenant=tenant).count()
    run(data, tenant, REPLACE)
    assert not Vehicle.objects.filter(tenant=tenant, deleted_at__isnull=False).exists()
    assert AuditLog.objects.filter(tenant=tenant).count() == audit_before + 1


def test_merge_of_an_unchanged_backup_writes_nothing(tenant, other):
    data = export_bytes(tenant, include_deleted=True)
    report = preview(data, tenant)
    totals = report.totals()
    assert totals.unchanged == totals.in_file > 0
    assert totals.create == totals.update == totals.delete == 0
    before = snapshot(audit=False)
    audit_before = AuditLog.objects.count()
    run(data, tenant)
    assert snapshot(audit=False) == before
    assert AuditLog.objects.count() == audit_before + 1
    entry = AuditLog.objects.filter(action="backup.import").get()
    assert entry.details["mode"] == "merge" and entry.details["outcome"] == "applied"
    assert len(entry.details["sha256"]) == 64


def test_merge_of_a_backup_without_deleted_rows_keeps_references_to_them(tenant):
    # The export writes the financial record's reference to a deleted work order as null: that
    # null stands for "not in this backup", so merge leaves the reference alone.
    data = export_bytes(tenant)
    report = preview(data, tenant)
    totals = report.totals()
    assert totals.unchanged == totals.in_file > 0
    assert totals.create == totals.update == 0
    before = snapshot(audit=False)
    run(data, tenant)
    assert snapshot(audit=False) == before


def test_merge_still_clears_a_reference_to_a_live_row(tenant):
    document = parse(export_bytes(tenant))
    record = next(r for r in document["tenant_data"]["financial_record"] if r["work_order"])
    record["work_order"] = None
    report = run(dump(document), tenant)
    assert report.tables["financial_record"].update == 1
    assert FinancialRecord.objects.get(pk=record["id"]).work_order_id is None


def test_preview_writes_nothing_but_its_audit_entry(tenant):
    data = export_bytes(tenant)
    before = snapshot(audit=False)
    report = preview(data, tenant, REPLACE)
    assert report.totals().delete > 0 and not report.applied
    assert snapshot(audit=False) == before
    assert AuditLog.objects.filter(action="backup.preview").count() == 1


def test_merge_creates_updates_and_leaves_the_rest(tenant):
    document = parse(export_bytes(tenant))
    vehicles = document["tenant_data"]["vehicle"]
    changed, absent = vehicles[0], vehicles.pop()
    changed["fleet_number"] = "HT-999"
    new_site = dict(document["tenant_data"]["site"][0], id=str(uuid.uuid4()), name="New Pit")
    document["tenant_data"]["site"].append(new_site)
    document["tenant_data"]["meter_reading"] = [
        r for r in document["tenant_data"]["meter_reading"] if r["vehicle"] != absent["id"]
    ]
    document["statistics"] = {t: len(rows) for t, rows in document["tenant_data"].items()}

    report = run(dump(document), tenant)
    assert report.tables["vehicle"].update == 1
    assert report.tables["site"].create == 1
    assert Vehicle.objects.get(pk=changed["id"]).fleet_number == "HT-999"
    assert Vehicle.objects.filter(pk=absent["id"]).exists()
    assert tenant.pk == Vehicle.objects.get(pk=changed["id"]).tenant_id


def test_merge_matches_by_natural_key_and_remaps_references(tenant):
    document = parse(export_bytes(tenant))
    vehicle = document["tenant_data"]["vehicle"][0]
    file_id, real_id = str(uuid.uuid4()), vehicle["id"]
    vehicle["id"] = file_id
    readings = [r for r in document["tenant_data"]["meter_reading"] if r["vehicle"] == real_id]
    for reading in readings:
        reading["vehicle"] = file_id
    new_reading = dict(readings[0], id=str(uuid.uuid4()), read_at="2030-01-01T00:00:00.000000Z")
    document["tenant_data"]["meter_reading"].append(new_reading)
    document["statistics"]["meter_reading"] += 1

    report = run(dump(document), tenant)
    assert report.tables["vehicle"].unchanged == len(document["tenant_data"]["vehicle"])
    assert report.tables["meter_reading"].create == 1
    assert not Vehicle.objects.filter(pk=file_id).exists()
    assert MeterReading.objects.get(pk=new_reading["id"]).vehicle_id == uuid.UUID(real_id)


def test_merge_refuses_an_update_that_takes_another_rows_natural_key(tenant):
    document = parse(export_bytes(tenant))
    vehicles = document["tenant_data"]["vehicle"]
    taker, owner = vehicles[0], vehicles.pop(1)  # the owner stays as it is: merge leaves it
    taker["serial_number"] = owner["serial_number"]
    document["statistics"]["vehicle"] -= 1
    before = snapshot(audit=False)
    with pytest.raises(ValidationFailed) as caught:
        run(dump(document), tenant)
    assert [(p.table, p.field, p.message) for p in caught.value.problems] == [
        (
            "vehicle",
            "serial_number",
            f"the natural key already belongs to another row ({owner['id']}) of this tenant",
        )
    ]
    assert snapshot(audit=False) == before


def test_merge_refuses_two_rows_that_match_the_same_existing_row(tenant):
    document = parse(export_bytes(tenant))
    vehicles = document["tenant_data"]["vehicle"]
    twin = dict(vehicles[0], id=str(uuid.uuid4()))  # a new id: matched by its natural key
    vehicles.append(twin)
    document["statistics"]["vehicle"] += 1
    before = snapshot(audit=False)
    with pytest.raises(ValidationFailed) as caught:
        run(dump(document), tenant)
    messages = {(p.table, p.message) for p in caught.value.problems}
    assert (
        "vehicle",
        f"several rows of the file match the same existing row {vehicles[0]['id']}",
    ) in messages
    assert snapshot(audit=False) == before


def test_merge_with_deleted_rows_restores_their_state(tenant):
    data = export_bytes(tenant, include_deleted=True)
    deleted = Vehicle.objects.get(tenant=tenant, deleted_at__isnull=False)
    deleted.deleted_at = None
    deleted.save()
    report = run(data, tenant)
    assert report.tables["vehicle"].update == 1
    deleted.refresh_from_db()
    assert deleted.deleted_at is not None


def test_merge_keeps_existing_secrets(tenant):
    run(export_bytes(tenant), tenant)
    credential = IntegrationCredential.objects.get(tenant=tenant)
    assert credential.secret == SECRET and credential.secret_needs_reentry is False


@pytest.mark.usefixtures("many_copy_statements")
def test_new_tenant_restore_reproduces_the_data_under_new_ids(tenant, other):
    other_before = tenant_snapshot(other)
    data = export_bytes(tenant, include_deleted=True)
    original_before = tenant_snapshot(tenant)
    report = import_backup(
        io.BytesIO(data),
        options=ImportOptions(mode=Mode.NEW_TENANT, new_tenant_slug="north-pit-restored"),
    )
    restored = Tenant.objects.get(slug="north-pit-restored")
    assert report.tenant["slug"] == "north-pit-restored"
    copy = parse(export_bytes(restored, include_deleted=True))
    source = parse(data)
    assert copy["statistics"] == source["statistics"]
    old_ids = {row["id"] for rows in source["tenant_data"].values() for row in rows}
    new_ids = {row["id"] for rows in copy["tenant_data"].values() for row in rows}
    assert not old_ids & new_ids
    # The database made them: random version 4 UUIDs, one for each row.
    rows = sum(copy["statistics"].values())
    assert len(new_ids) == rows
    assert {uuid.UUID(i).version for i in new_ids} == {4}
    assert {uuid.UUID(i).variant for i in new_ids} == {uuid.RFC_4122}
    # Same rows once ids are replaced by what they point at.
    for table in ("vehicle", "meter_reading", "work_order", "financial_record"):
        assert _by_key(copy, table) == _by_key(source, table), table
    assert tenant_snapshot(tenant) == original_before
    assert tenant_snapshot(other) == other_before
    assert not copy_threads()


def test_new_tenant_restore_gives_audit_log_rows_new_ids_too(tenant):
    data = export_bytes(tenant, include_audit_logs=True)
    source_logs = {row["id"] for row in parse(data)["tenant_data"]["audit_log"]}
    report = import_backup(
        io.BytesIO(data),
        options=ImportOptions(mode=Mode.NEW_TENANT, new_tenant_slug="north-pit-restored"),
    )
    assert report.tables["audit_log"].create == len(source_logs) > 0
    restored = AuditLog.objects.filter(tenant__slug="north-pit-restored")
    copied = {str(pk) for pk in restored.values_list("pk", flat=True)}
    assert len(copied) == len(source_logs) + 1  # and the import's own entry
    assert not copied & source_logs
    assert AuditLog.objects.filter(pk__in=source_logs, tenant=tenant).count() == len(source_logs)


def _by_key(document, table):
    """Rows with every id replaced by the natural key of the row it identifies."""
    spec = registry().table(table)
    keys = {}
    for name, rows in document["tenant_data"].items():
        natural_key = registry().table(name).natural_key
        for row in rows:
            keys[row["id"]] = (name, *(row[k] for k in natural_key))
    result = []
    for row in document["tenant_data"][table]:
        plain = {k: v for k, v in row.items() if k != "id"}
        for fk in spec.fields_of_kind("tenant_fk"):
            plain[fk.name] = keys.get(row[fk.name])
        result.append(plain)
    return sorted(result, key=repr)


def test_a_backup_of_another_tenant_is_refused(tenant, other):
    data = export_bytes(other)
    before = snapshot()
    with pytest.raises(Refused) as caught:
        run(data, tenant, REPLACE)
    assert "other" in caught.value.message and "north-pit" in caught.value.message
    assert snapshot(audit=False) == {k: v for k, v in before.items() if k != "tenants.AuditLog"}


def test_references_to_another_tenants_rows_are_refused(tenant, other):
    document = parse(export_bytes(tenant))
    foreign_vehicle = Vehicle.objects.filter(tenant=other).first()
    document["tenant_data"]["meter_reading"][0]["vehicle"] = str(foreign_vehicle.pk)
    before = snapshot(audit=False)
    with pytest.raises(ValidationFailed) as caught:
        run(dump(document), tenant)
    problem = caught.value.problems[0]
    assert problem.table == "meter_reading" and problem.field == "vehicle"
    assert str(foreign_vehicle.pk) in problem.message and "does not exist" in problem.message
    assert snapshot(audit=False) == before


def test_ids_of_another_tenants_rows_are_refused(tenant, other):
    document = parse(export_bytes(tenant))
    foreign_site = other_site = f.SiteFactory(tenant=other, name="Their pit")
    row = dict(document["tenant_data"]["site"][0], id=str(foreign_site.pk), name="Taken id")
    document["tenant_data"]["site"].append(row)
    document["statistics"]["site"] += 1
    other_before = tenant_snapshot(other)
    for options in (MERGE, REPLACE):
        with pytest.raises(ValidationFailed) as caught:
            run(dump(document), tenant, options)
        assert any("outside this tenant" in p.message for p in caught.value.problems)
    assert tenant_snapshot(other) == other_before
    other_site.refresh_from_db()
    assert other_site.name == "Their pit"


def test_every_kind_of_problem_in_a_row_names_its_row_and_field(tenant):
    document = parse(export_bytes(tenant))
    data = document["tenant_data"]
    vehicle, credential = data["vehicle"][0], data["integration_credential"][0]
    vehicle["serial_number"] = None
    vehicle["colour"] = "yellow"
    del vehicle["fleet_number"]  # not required: its default
    del vehicle["site"]
    vehicle["purchase_price"] = "a lot"
    credential["has_secret"] = "yes"
    data["tco_scenario"].append("a scenario")
    document["statistics"]["tco_scenario"] += 1
    data["membership"][0]["user"] = "nobody@example.com"
    # Two forecasts of one vehicle and day whose activity is unknown: rows with a problem are
    # left out of the natural-key check, so no "appears twice" besides.
    for forecast in data["forecast"][:2]:
        forecast.update(activity=99999, vehicle=data["forecast"][0]["vehicle"], due_on="2030-01-01")
    before = snapshot(audit=False)
    for options in (MERGE, REPLACE):
        with pytest.raises(ValidationFailed) as caught:
            run(dump(document), tenant, options)
        found = [(p.table, p.row.split(" (")[0], p.field, p.message) for p in caught.value.problems]
        assert found == [
            ("integration_credential", "row 1", "has_secret", "expected true or false"),
            ("membership", "row 1", "user", "no user with email 'nobody@example.com' here"),
            ("tco_scenario", "row 2", "", "a row must be a JSON object"),
            ("vehicle", "row 1", "colour", "unknown field"),
            ("vehicle", "row 1", "site", "required field missing"),
            ("vehicle", "row 1", "serial_number", "must not be null"),
            ("vehicle", "row 1", "purchase_price", "'a lot' is not a decimal number"),
            *(
                (
                    "forecast",
                    f"row {n}",
                    "activity",
                    "refers to work_activity 99999, which is not in master_data",
                )
                for n in (1, 2)
            ),
        ]
    assert snapshot(audit=False) == before


def test_a_problem_in_the_last_table_leaves_everything_unchanged(tenant):
    document = parse(export_bytes(tenant))
    last = registry().tenant_tables[-1].name
    document["tenant_data"][last][0]["id"] = "not-a-uuid"
    before = snapshot(audit=False)
    for options in (MERGE, REPLACE):
        with pytest.raises(ValidationFailed) as caught:
            run(dump(document), tenant, options)
        assert caught.value.problems[0].table == last
    assert snapshot(audit=False) == before


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_a_row_or_value_longer_than_the_limit_is_refused_as_it_is_read(tenant, settings, compress):
    # A gzip file of a few KB can hold a string of gigabytes: the reader stops at the limit.
    # (It reads 64 KB at a time, so a limit well above that is exact to within a read.)
    settings.BACKUP_MAX_ROW_BYTES = 200_000
    document = parse(export_bytes(tenant))
    readings = document["tenant_data"]["meter_reading"]
    readings += [
        dict(readings[0], id=str(uuid.uuid4()), read_at=f"2020-01-01T00:{i // 60:02}:{i % 60:02}Z")
        for i in range(3_000)
    ]
    document["statistics"]["meter_reading"] = len(readings)
    assert len(dump(document)) > 3 * 200_000  # a file larger than the limit is read

    def grow(table, index, **fields):
        return lambda d: d["tenant_data"][table][index].update(fields)

    cases = {
        "tenant_data.vehicle row 1": grow("vehicle", 0, serial_number="S" * 300_000),
        "tenant_data.meter_reading row 2": grow(
            "meter_reading", 1, **{f"extra{i}": i for i in range(30_000)}
        ),
        "section 'metadata'": lambda d: d["metadata"].update(note=["x"] * 100_000),
    }
    before = snapshot(audit=False)
    for where, change in cases.items():
        broken = parse(dump(document))
        change(broken)
        data = dump(broken)
        if compress:
            data = gzip.compress(data)
        for options in (MERGE, REPLACE):
            with pytest.raises(InvalidFile) as caught:
                run(data, tenant, options)
            assert caught.value.message == (
                "The file has more than 200,000 bytes in one row or value "
                f"(BACKUP_MAX_ROW_BYTES), in {where}."
            )
    assert snapshot(audit=False) == before
    assert preview(dump(document), tenant).totals().in_file > 3_000


def test_missing_master_data_is_listed_by_name_or_created_when_asked(tenant):
    document = parse(export_bytes(tenant))
    vehicle = document["tenant_data"]["vehicle"][0]
    masters = document["master_data"]
    model = next(m for m in masters["equipment_model"] if m["id"] == vehicle["equipment_model"])
    oem = next(o for o in masters["oem"] if o["id"] == model["oem"])
    oem["name"], model["name"] = "Imaginary Machines", "IM-1"
    with pytest.raises(ValidationFailed) as caught:
        run(dump(document), tenant)
    messages = [p.message for p in caught.value.problems]
    assert any("OEM 'Imaginary Machines' does not exist" in m for m in messages)
    assert any("equipment model 'Imaginary Machines' 'IM-1'" in m for m in messages)
    assert not OEM.objects.filter(name="Imaginary Machines").exists()

    report = run(dump(document), tenant, ImportOptions(create_missing_master_data=True))
    assert report.master_data["oem"]["create"] == 1
    created = EquipmentModel.objects.get(name="IM-1", oem__name="Imaginary Machines")
    assert Vehicle.objects.get(pk=vehicle["id"]).equipment_model == created


@pytest.mark.skipif(connection.vendor != "postgresql", reason="advisory locks are PostgreSQL's")
def test_a_second_import_of_the_same_tenant_waits_then_fails_clearly(tenant, settings):
    import psycopg

    settings.BACKUP_IMPORT_LOCK_WAIT_SECONDS = 1
    data = export_bytes(tenant)
    key = int.from_bytes(tenant.pk.bytes[:8], "big", signed=True)
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params["dbname"] = connection.settings_dict["NAME"]
    with psycopg.connect(**params, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [key])
        with pytest.raises(Refused, match="Another import of tenant 'north-pit' is running"):
            run(data, tenant)


def _duplicate_id(document, other):
    readings = document["tenant_data"]["meter_reading"]
    readings.append(dict(readings[0], read_at="2030-01-01T00:00:00.000000Z"))
    document["statistics"]["meter_reading"] += 1


def _other_tenants_id(document, other):
    taken = MeterReading.objects.filter(tenant=other).first()
    document["tenant_data"]["meter_reading"][-1]["id"] = str(taken.pk)


def _natural_key_twice(document, other):
    sites = document["tenant_data"]["site"]
    sites.append(dict(sites[0], id=str(uuid.uuid4())))
    document["statistics"]["site"] += 1


def _duplicate_id_and_a_missing_reference(document, other):
    # Both found by planning, only the reference while the duplicate is left to the constraint.
    _duplicate_id(document, other)
    document["tenant_data"]["forecast"][0]["vehicle"] = str(uuid.uuid4())


def _missing_reference(document, other):
    document["tenant_data"]["meter_reading"][-1]["vehicle"] = str(uuid.uuid4())


def _reference_to_another_tenants_row(document, other):
    theirs = Vehicle.objects.filter(tenant=other).first()
    document["tenant_data"]["meter_reading"][0]["vehicle"] = str(theirs.pk)


def _reference_to_a_table_not_in_the_file(document, other):
    # The referring rows are loaded, the vehicles deleted and never loaded again.
    del document["tenant_data"]["vehicle"]
    del document["statistics"]["vehicle"]


def _bad_value_in_the_last_row(document, other):
    document["tenant_data"]["meter_reading"][-1]["value"] = "lots"


def _wrong_statistics(document, other):
    document["statistics"]["site"] += 1


def _unknown_table(document, other):
    document["tenant_data"]["spaceship"] = [{"id": str(uuid.uuid4())}]


def _missing_master_data(document, other):
    document["master_data"]["oem"][0]["name"] = "Imaginary Machines"


@pytest.mark.parametrize(
    "break_it",
    [
        _duplicate_id,
        _other_tenants_id,
        _natural_key_twice,
        _duplicate_id_and_a_missing_reference,
        _missing_reference,
        _reference_to_another_tenants_row,
        _reference_to_a_table_not_in_the_file,
        _bad_value_in_the_last_row,
        _wrong_statistics,
        _unknown_table,
        _missing_master_data,
    ],
)
@pytest.mark.usefixtures("many_copy_statements")
def test_a_replace_reports_what_its_preview_reports(tenant, other, break_it):
    # Applied, a replace trusts the file first (on PostgreSQL it loads straight into the tenant
    # tables, elsewhere it leaves some checks to the unique constraints) and checks everything
    # again when anything is wrong: the problems must be the preview's, in the same order.
    document = parse(export_bytes(tenant, include_deleted=True))
    break_it(document, other)
    failures = AuditLog.objects.filter(action="backup.import", details__outcome="failed")
    _applied_problems_are_the_previews(dump(document), tenant, REPLACE)
    assert failures.count() == 1  # the attempt that was rolled back left no entry


def _applied_problems_are_the_previews(data: bytes, tenant, options) -> None:
    """The import fails with the preview's problems, in the same order, and changes nothing."""
    with pytest.raises(ValidationFailed) as previewed:
        preview(data, tenant, options)
    before = snapshot(audit=False)
    with pytest.raises(ValidationFailed) as applied:
        run(data, tenant, options)
    assert [p.as_dict() for p in applied.value.problems] == [
        p.as_dict() for p in previewed.value.problems
    ]
    assert applied.value.problems
    assert snapshot(audit=False) == before
    assert not copy_threads()  # a load stopped half-way stops its thread too


NEW_TENANT = ImportOptions(mode=Mode.NEW_TENANT, new_tenant_slug="north-pit-restored")


@pytest.mark.parametrize(
    "break_it",
    [
        _duplicate_id,
        _missing_reference,
        _reference_to_another_tenants_row,
        _bad_value_in_the_last_row,
        _wrong_statistics,
    ],
)
@pytest.mark.usefixtures("many_copy_statements")
def test_a_new_tenant_restore_reports_what_its_preview_reports(tenant, other, break_it):
    document = parse(export_bytes(tenant, include_deleted=True, include_audit_logs=True))
    break_it(document, other)
    _applied_problems_are_the_previews(dump(document), None, NEW_TENANT)
    assert not Tenant.objects.filter(slug="north-pit-restored").exists()


def test_new_tenant_ids_that_differ_only_in_their_version_bits_still_restore(tenant):
    # Their new ids, computed from the old ones, would be the same: the restore goes through
    # staging tables, where each row gets a random id.
    document = parse(export_bytes(tenant))
    sites = document["tenant_data"]["site"]
    twin = uuid.UUID(sites[0]["id"])
    twin = uuid.UUID(int=twin.int ^ (0x1000 << 64))  # another version, the same other bits
    sites.append(dict(sites[0], id=str(twin), name="Twin pit"))
    document["statistics"]["site"] += 1
    report = run(dump(document), None, NEW_TENANT)
    assert report.tables["site"].create == len(sites)
    restored = Tenant.objects.get(slug="north-pit-restored")
    assert Site.objects.filter(tenant=restored).count() == len(sites)


class _Unseekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self.data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _staged_tables(queries) -> set[str]:
    made = (q["sql"] for q in queries if q["sql"].startswith("CREATE TEMPORARY TABLE"))
    return {sql.split('"')[1].removeprefix("_stage_") for sql in made}


def test_replace_and_new_tenant_load_straight_into_the_tenant_tables(tenant):
    data = export_bytes(tenant, include_deleted=True, include_audit_logs=True)
    with CaptureQueriesContext(connection) as applied:
        report = run(data, tenant, REPLACE)
    assert report.applied and report.tables["meter_reading"].create
    assert report.tables["audit_log"].unchanged == report.tables["audit_log"].in_file > 0
    with CaptureQueriesContext(connection) as restored:
        run(data, None, NEW_TENANT)
    # Only the table a replace merges is staged; a new tenant stages none.
    assert _staged_tables(applied.captured_queries) == {"audit_log"}
    assert _staged_tables(restored.captured_queries) == set()


@pytest.mark.parametrize("fast", [True, False])
def test_a_replace_empties_a_table_the_file_does_not_have(tenant, other, settings, fast):
    # Loaded straight, each table's rows are deleted as the file's rows for it arrive (on
    # SQLite): a table the file lacks is emptied all the same, and another tenant's rows stay.
    settings.BACKUP_FAST_PATHS = fast
    reg = registry()
    name = next(
        s.name
        for s in reversed(reg.tenant_tables)
        if not reg.is_referenced(s.name) and s.model.objects.filter(tenant=tenant).exists()
    )
    model = reg.table(name).model
    document = parse(export_bytes(tenant, include_deleted=True))
    del document["tenant_data"][name], document["statistics"][name]
    others = tenant_snapshot(other)
    before = model.objects.filter(tenant=tenant).count()
    report = run(dump(document), tenant, REPLACE)
    assert report.tables[name].delete == before > 0 and report.tables[name].in_file == 0
    assert not model.objects.filter(tenant=tenant).exists()
    assert tenant_snapshot(other) == others
    after = parse(export_bytes(tenant, include_deleted=True))
    assert name not in after["tenant_data"] or after["tenant_data"][name] == []
    kept = document["tenant_data"]
    assert without_secrets({t: after["tenant_data"][t] for t in kept}) == without_secrets(kept)


@pytest.mark.parametrize("small", [False, True])
def test_rows_written_in_the_background_are_written_checked_or_stopped(tenant, monkeypatch, small):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE copied (n integer PRIMARY KEY, m integer)")
    limit = sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER
    sqlite = connection.vendor == "sqlite"
    before = connection.connection.getlimit(limit) if sqlite else None
    if small:
        # Batches of 7 rows and, on SQLite, 10 parameters a statement: INSERTs of 5 rows.
        monkeypatch.setattr(background_writer, "BATCH_ROWS", 7)
        if sqlite:
            connection.connection.setlimit(limit, 10)
    writer = dialect().background_writer()
    try:
        _background_writer_cases(writer)
    finally:
        writer.abort()  # never a thread left holding the connection, whatever failed
        if sqlite:
            connection.connection.setlimit(limit, before)


def _background_writer_cases(writer: background_writer.BackgroundWriter) -> None:
    def rows() -> list[tuple[int, int]]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT n, m FROM copied ORDER BY n")
            return cursor.fetchall()

    first = [("INSERT INTO copied (n, m) VALUES (%s, %s)", [-1, 0])]
    written = writer.write('"copied"', ["n", "m"], ((n, n * 2) for n in range(2500)), first=first)
    assert written == 2500
    # Until it is finished, a query fails instead of waiting for the connection for ever.
    with pytest.raises(RuntimeError, match="busy with a background write"):
        Tenant.objects.count()
    writer.finish()
    assert not copy_threads()
    assert rows() == [(-1, 0), *((n, n * 2) for n in range(2500))]
    # A key refused is Django's error, raised when finishing.
    with pytest.raises(IntegrityError), transaction.atomic():
        writer.write('"copied"', ["n", "m"], [(3000, 0), (5, 0)])
        writer.finish()
    assert len(rows()) == 2501
    # After a failure the writer writes again.
    assert writer.write('"copied"', ["n", "m"], [(2500, 1)]) == 1
    writer.finish()
    assert rows()[-1] == (2500, 1)
    # Stopped half-way, nothing more is written once the savepoint is rolled back.
    with transaction.atomic():
        writer.write('"copied"', ["n", "m"], ((n, 0) for n in range(3000, 3100)))
        writer.abort()
        transaction.set_rollback(True)
    assert not copy_threads()
    assert len(rows()) == 2502


def test_only_tables_whose_constraints_check_what_staging_checks_load_straight(settings):
    reg = registry()
    site = reg.table("site")
    # A nullable natural-key column: its nulls never clash in the constraint, but do in the
    # staging path's check of keys in the file.
    name = dataclasses.replace(site.field_map["name"], null=True)
    nullable = dataclasses.replace(
        site, fields=tuple(name if f.name == "name" else f for f in site.fields)
    )
    changed = dataclasses.replace(
        reg, tenant_tables=tuple(nullable if t is site else t for t in reg.tenant_tables)
    )
    assert applies(reg, Mode.REPLACE, True)
    assert applies(reg, Mode.NEW_TENANT, True)
    assert not applies(changed, Mode.REPLACE, True)
    assert not applies(reg, Mode.REPLACE, False)  # a preview
    assert not applies(reg, Mode.MERGE, True)
    settings.BACKUP_FAST_PATHS = False
    assert not applies(reg, Mode.REPLACE, True)


def test_a_source_that_cannot_be_read_twice_is_replaced_through_staging_tables(tenant, other):
    data = export_bytes(tenant, include_deleted=True)
    rewound = run(data, tenant, REPLACE)
    with CaptureQueriesContext(connection) as applied:
        report = import_backup(_Unseekable(data), tenant=tenant, options=REPLACE)
    assert "meter_reading" in _staged_tables(applied.captured_queries)
    assert report.applied and report.tables == rewound.tables
    after = parse(export_bytes(tenant, include_deleted=True))["tenant_data"]
    assert without_secrets(after) == without_secrets(parse(data)["tenant_data"])

    document = parse(data)
    _reference_to_another_tenants_row(document, other)
    broken = dump(document)
    with pytest.raises(ValidationFailed) as previewed:
        preview(broken, tenant, REPLACE)
    with pytest.raises(ValidationFailed) as applied_broken:
        import_backup(_Unseekable(broken), tenant=tenant, options=REPLACE)
    assert applied_broken.value.problems == previewed.value.problems


def test_an_applied_replace_leaves_duplicate_checks_to_the_constraints(tenant):
    data = export_bytes(tenant, include_deleted=True, include_audit_logs=True)
    with CaptureQueriesContext(connection) as applied:
        run(data, tenant, REPLACE)
    with CaptureQueriesContext(connection) as previewed:
        preview(data, tenant, REPLACE)

    def duplicate_checks(queries):
        return [q["sql"] for q in queries if "HAVING COUNT(*) > 1" in q["sql"]]

    # Only the audit log, which a replace does not delete, is still checked for duplicates.
    applied_checks = duplicate_checks(applied.captured_queries)
    assert applied_checks
    assert all("_stage_audit_log" in sql for sql in applied_checks)
    assert len(duplicate_checks(previewed.captured_queries)) > 20
