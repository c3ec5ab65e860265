"""The fast paths (PostgreSQL's COPY) and the portable paths give identical results.

`BACKUP_FAST_PATHS` switches the fast paths off; on SQLite both runs take the portable path.
"""

import datetime as dt
import gc
import io
import re
from decimal import Decimal
from typing import Any

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import override_settings

from backup.db import postgresql_export, sqlite_export
from backup.db.session import configure_session
from backup.errors import ExportFailed, ValidationFailed
from backup.export import export_tenant, iter_export
from backup.format.values import JSON_LEVELS
from backup.registry import registry
from backup.restore import ImportOptions, Mode, import_backup, preview_import
from tenants.models import AuditLog, MaintenanceLog, MeterReading, Tenant, Vehicle, WorkOrder

from . import factories as f
from .backup_support import dump, export_bytes, parse, populate, snapshot, tenant_snapshot

pytestmark = pytest.mark.django_db

# Each database's own JSON writer (each knows the database it serves).
DATABASE_JSON = (postgresql_export, sqlite_export)

AWKWARD = 'quote" back\\slash \\u0041 \x01ctrl\ttab\nnew line é 🚜 </script> \x7f'


@pytest.fixture
def tenant():
    tenant = f.TenantFactory(slug="north-pit")
    made = populate(tenant)
    site = f.SiteFactory(
        tenant=tenant, name=AWKWARD, address="", latitude=Decimal("0.000000"), longitude=None
    )
    f.WorkOrderFactory(
        tenant=tenant,
        vehicle=made["vehicles"][0],
        site=site,
        description=AWKWARD * 3,
        opened_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        estimated_cost=Decimal("-12.50"),
    )
    vehicle = made["vehicles"][0]
    vehicle.attributes = AWKWARD_JSON
    vehicle.save()
    return tenant


# PostgreSQL keeps JSON as jsonb (its own key order, its own spacing in text): both paths must
# write what Django reads back from it.
AWKWARD_JSON = {
    "zeta": [1, 2.5, -0.0, 1e-07, 12345678901234567, 1.5e-300, True, None],
    "a": {"nested": {"empty": {}, "list": []}, "text": AWKWARD},
    "é🚜": "",
    # Integers beyond a signed 64-bit one (the parser refused them) and an unsigned one (orjson
    # refuses them): JSON has no limit, nor has a JSON field.
    "counters": [2**63 + 5, 2**64 - 1, 2**64, -(2**63) - 1, 10**30],
}


def without_time(data: bytes) -> bytes:
    return re.sub(rb'"exported_at":"[^"]*"', b'"exported_at":""', data)


@pytest.mark.parametrize(
    "options",
    [{}, {"include_deleted": True}, {"include_deleted": True, "include_audit_logs": True}],
)
def test_export_is_byte_identical_on_both_paths(tenant, options):
    fast = export_bytes(tenant, **options)
    # An export records itself in the audit log, which the next one would then include.
    AuditLog.objects.filter(action="backup.export").delete()
    with override_settings(BACKUP_FAST_PATHS=False):
        portable = export_bytes(tenant, **options)
    assert without_time(fast) == without_time(portable)
    assert AWKWARD.encode()[:5] in fast
    # On either database the big tables really take the database's path.
    assert any(m.supports(registry().table("meter_reading")) for m in DATABASE_JSON)
    assert any(m.supports(registry().table("work_order")) for m in DATABASE_JSON)
    # A table with a JSON column too.
    assert any(m.supports(registry().table("vehicle")) for m in DATABASE_JSON)
    assert b'"attributes":{' in fast and b"12345678901234567" in fast
    assert WorkOrder.objects.filter(tenant=tenant, description__startswith=AWKWARD).exists()


def test_export_is_byte_identical_in_blocks_of_one_row_and_for_empty_tables(tenant, monkeypatch):
    # Blocks are cut at a size no test tenant reaches: cut after every row instead, and add a
    # tenant with no rows at all, so that every table of it is empty.
    monkeypatch.setattr(postgresql_export, "BLOCK_BYTES", 1)
    monkeypatch.setattr(sqlite_export, "FETCH_ROWS", 1)
    empty = f.TenantFactory(slug="empty-pit")
    for exported in (tenant, empty):
        fast = export_bytes(exported, include_deleted=True)
        AuditLog.objects.filter(action="backup.export").delete()
        with override_settings(BACKUP_FAST_PATHS=False):
            portable = export_bytes(exported, include_deleted=True)
        assert without_time(fast) == without_time(portable)
    assert b'"meter_reading":[\n]' in fast


def both_paths(run):
    """`run()` with the fast paths and without; both results."""
    fast = run()
    with override_settings(BACKUP_FAST_PATHS=False):
        portable = run()
    return fast, portable


@pytest.mark.parametrize("mode", [Mode.MERGE, Mode.REPLACE])
def test_preview_is_identical_on_both_paths(tenant, mode):
    data = export_bytes(tenant)
    fast, portable = both_paths(
        lambda: preview_import(io.BytesIO(data), tenant=tenant, options=ImportOptions(mode=mode))
    )
    assert fast.as_dict() == portable.as_dict()


def test_replace_writes_the_same_rows_on_both_paths(tenant):
    document = parse(export_bytes(tenant, include_deleted=True))
    vehicle = document["tenant_data"]["vehicle"][0]
    vehicle["id"] = vehicle["id"].upper()  # not canonical: still a valid UUID
    for reading in document["tenant_data"]["meter_reading"]:
        if reading["vehicle"] == vehicle["id"].lower():
            reading["vehicle"] = "{" + reading["vehicle"] + "}"
    # Valid values in forms no export writes: the fast path hands canonical text to PostgreSQL
    # and these to the portable decoders; the rows written must be the same.
    readings = document["tenant_data"]["meter_reading"]
    readings[0]["read_at"] = "2026-03-04T05:06:07.5+02:00"
    readings[1]["read_at"] = "2026-03-04T05:06:07Z"
    readings[0]["value"] = "0012.5"
    readings[1]["value"] = 7
    readings[2]["value"] = "-0.00"
    readings[3]["value"] = "1E+2"
    readings[4]["value"] = "9999999999.99"
    readings[5]["value"] = "1.5e1"
    vehicle["commissioned_on"] = "2024-02-29"
    data = dump(document)

    def replace():
        import_backup(io.BytesIO(data), tenant=tenant, options=ImportOptions(mode=Mode.REPLACE))
        rows = tenant_snapshot(tenant)
        del rows["audit_log"]  # each import adds its own entry
        return rows

    fast, portable = both_paths(replace)
    assert fast == portable
    assert fast["meter_reading"]


def test_json_values_come_back_exactly_on_both_paths(tenant):
    data = export_bytes(tenant)
    assert b"[9223372036854775813,18446744073709551615,18446744073709551616," in data

    def replace():
        import_backup(io.BytesIO(data), tenant=tenant, options=ImportOptions(mode=Mode.REPLACE))
        return Vehicle.objects.get(tenant=tenant, attributes__has_key="counters").attributes

    fast, portable = both_paths(replace)
    assert fast == portable == AWKWARD_JSON
    assert [type(n) for n in fast["zeta"][:6]] == [int, float, float, float, int, float]


def test_a_json_number_beyond_a_float_is_a_problem_of_its_row(tenant):
    document = parse(export_bytes(tenant))
    vehicle = document["tenant_data"]["vehicle"][0]
    vehicle["attributes"] = {"payload": [1, 2.0, 0.125]}
    data = dump(document).replace(b"[1,2.0,0.125]", b"[1,2.0,1e400]")
    assert b"1e400" in data
    before = snapshot(audit=False)  # a failed import is audited

    def problems():
        with pytest.raises(ValidationFailed) as failed:
            import_backup(io.BytesIO(data), tenant=tenant, options=ImportOptions(mode=Mode.REPLACE))
        return [p.as_dict() for p in failed.value.problems]

    fast, portable = both_paths(problems)
    assert fast == portable
    assert [(p["table"], p["field"], p["message"]) for p in fast] == [
        ("vehicle", "attributes", "1E+400 is too large a number for a JSON field")
    ]
    assert vehicle["serial_number"] in fast[0]["row"]
    assert snapshot(audit=False) == before


def nested(levels: int) -> list:
    """A JSON value of `levels` levels of lists, the innermost empty."""
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_a_json_value_as_deep_as_a_backup_holds_comes_back_on_both_paths(tenant):
    deepest = nested(JSON_LEVELS - 1)  # its row is the other level
    vehicle = Vehicle.objects.get(tenant=tenant, attributes__has_key="counters")
    vehicle.attributes = deepest
    vehicle.save()
    fast_file, portable_file = both_paths(lambda: export_bytes(tenant))
    assert without_time(fast_file) == without_time(portable_file)
    assert b"[" * (JSON_LEVELS - 1) + b"]" in fast_file

    def replace():
        import_backup(
            io.BytesIO(fast_file), tenant=tenant, options=ImportOptions(mode=Mode.REPLACE)
        )
        return Vehicle.objects.get(pk=vehicle.pk).attributes

    fast, portable = both_paths(replace)
    assert fast == portable == deepest


def test_a_json_value_deeper_than_a_backup_holds_stops_the_export_on_both_paths(tenant, tmp_path):
    vehicle = Vehicle.objects.get(tenant=tenant, attributes__has_key="counters")
    vehicle.attributes = nested(JSON_LEVELS)
    vehicle.save()
    wanted = f"Table 'vehicle': a JSON value is nested more than {JSON_LEVELS - 1} levels deep"

    def refused():
        with pytest.raises(ExportFailed) as failed:
            export_bytes(tenant)
        return failed.value.message

    fast, portable = both_paths(refused)
    assert fast == portable
    assert fast.startswith(wanted)
    # Nothing the failed exports left open (PostgreSQL's server-side cursor of the portable
    # path) fails the transaction when it is collected.
    gc.collect()
    assert Vehicle.objects.filter(pk=vehicle.pk).exists()
    # The command: a clear error, and the backup that was at the path is still there, whole.
    backups = tmp_path / "backups"
    backups.mkdir()
    target = backups / "north-pit.json.gz"
    target.write_bytes(b"yesterday's backup")
    with pytest.raises(CommandError) as caught:
        call_command("export_tenant", "north-pit", "-o", str(target), stdout=io.StringIO())
    assert caught.value.returncode == 1
    assert str(caught.value).startswith(wanted)
    assert target.read_bytes() == b"yesterday's backup"
    assert [p.name for p in backups.iterdir()] == [target.name]
    # Audited, as incomplete.
    exports = AuditLog.objects.filter(tenant=tenant, action="backup.export")
    assert {entry.details["outcome"] for entry in exports} == {"incomplete"}


def test_problems_are_identical_on_both_paths(tenant):
    document = parse(export_bytes(tenant))
    rows = document["tenant_data"]
    rows["vehicle"][0]["id"] = "not-a-uuid"
    rows["vehicle"][1]["id"] = rows["vehicle"][1]["id"].replace("-", "")  # valid, unhyphenated
    rows["meter_reading"][0]["vehicle"] = "urn:uuid:" + rows["meter_reading"][0]["vehicle"]
    rows["meter_reading"][1]["value"] = "12.3.4"
    rows["meter_reading"][2]["read_at"] = "2026-13-01T00:00:00Z"
    rows["site"][0]["id"] = 42
    # Canonical in shape but not valid: the fast path's patterns must not let them through.
    rows["meter_reading"][3]["value"] = "1.234"  # three places where two are allowed
    rows["meter_reading"][4]["value"] = "12345678901.5"  # eleven whole digits, ten allowed
    rows["meter_reading"][3]["read_at"] = "2026-02-30T00:00:00.000000Z"
    rows["meter_reading"][4]["read_at"] = "2026-01-01T24:00:00Z"
    rows["vehicle"][1]["commissioned_on"] = "2026-02-30"
    data = dump(document)

    def problems():
        with pytest.raises(ValidationFailed) as failed:
            preview_import(io.BytesIO(data), tenant=tenant, options=ImportOptions())
        return [p.as_dict() for p in failed.value.problems]

    fast, portable = both_paths(problems)
    assert fast == portable
    assert {p["field"] for p in fast} >= {"id", "value", "read_at", "commissioned_on"}
    assert len([p for p in fast if p["field"] in ("value", "read_at")]) == 6


@pytest.mark.django_db(transaction=True)  # the settings end with the real transaction
@override_settings(BACKUP_WORK_MEM="96MB")
def test_session_settings_last_only_for_the_transaction():
    def settings_now() -> tuple[str, str, str] | None:
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('work_mem'), current_setting('jit'), "
                "current_setting('parallel_tuple_cost')"
            )
            return cursor.fetchone()

    before = settings_now()
    with transaction.atomic():
        configure_session()
        inside = settings_now()
    assert settings_now() == before
    if connection.vendor == "postgresql":
        assert inside == ("96MB", "off", before[2])
        assert before != inside


@pytest.mark.django_db(transaction=True)  # an export sets its session up in its own transaction
def test_an_export_plans_rows_from_parallel_workers_as_free(tenant):
    def tuple_cost() -> str | None:
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('parallel_tuple_cost')")
            return cursor.fetchone()[0]

    during: set[str | None] = set()
    before = tuple_cost()
    export_tenant(tenant, io.BytesIO(), progress=lambda table, rows: during.add(tuple_cost()))
    assert tuple_cost() == before
    if connection.vendor == "postgresql":
        assert during == {"0"}
        assert before != "0"
    else:
        assert during == {None}


def test_export_writes_references_to_rows_outside_the_tenant_as_they_are(tenant):
    # The database allows a reference to another tenant's row, which no import makes; the fast
    # paths must write its id as the portable path does (on SQLite, the cache of written ids
    # holds only this tenant's rows).
    other = f.TenantFactory(slug="south-pit")
    stranger = f.VehicleFactory(tenant=other)
    foreign_order = f.WorkOrderFactory(tenant=other, vehicle=stranger)
    reading = MeterReading.objects.filter(tenant=tenant).order_by("pk").first()
    MeterReading.objects.filter(pk=reading.pk).update(vehicle=stranger)
    log = MaintenanceLog.objects.filter(tenant=tenant).order_by("pk").first()
    MaintenanceLog.objects.filter(pk=log.pk).update(work_order=foreign_order)
    fast, portable = both_paths(lambda: without_time(export_bytes(tenant, include_deleted=True)))
    assert fast == portable
    assert f'"vehicle":"{stranger.pk}"'.encode() in fast
    assert f'"work_order":"{foreign_order.pk}"'.encode() in fast


def test_an_export_stopped_halfway_leaves_nothing_behind(tenant, monkeypatch):
    # A streamed download the client gives up: the generator is closed in the middle of a table.
    monkeypatch.setattr(postgresql_export, "BLOCK_BYTES", 1)
    monkeypatch.setattr(sqlite_export, "FETCH_ROWS", 1)
    chunks = iter_export(tenant)
    for chunk in chunks:
        if b'"meter_reading":[' in chunk:
            break
    next(chunks)
    chunks.close()
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM sqlite_temp_master")
            assert cursor.fetchall() == []
    AuditLog.objects.filter(action="backup.export").delete()
    with override_settings(BACKUP_FAST_PATHS=False):
        portable = export_bytes(tenant)
    assert without_time(export_bytes(tenant)) == without_time(portable)
    if connection.vendor == "sqlite":  # nor does an export that ends
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM sqlite_temp_master")
            assert cursor.fetchall() == []


def test_export_writes_a_stored_value_outside_the_choices_as_it_is(tenant):
    # The database holds whatever was written to it; on PostgreSQL the choices only spare the
    # usual values their `to_json`.
    reading = MeterReading.objects.filter(tenant=tenant).order_by("pk").first()
    MeterReading.objects.filter(pk=reading.pk).update(meter_type='Odo "x" 1%')
    # Every reading, that of the deleted vehicle too, which might be the first.
    fast, portable = both_paths(lambda: without_time(export_bytes(tenant, include_deleted=True)))
    assert fast == portable
    assert b'"meter_type":"Odo \\"x\\" 1%"' in fast


def test_the_text_of_choices_in_sql_is_what_orjson_writes():
    choices = ("it's", "100%", "é 🚜", 'quote" \\')
    with connection.cursor() as cursor:
        for choice in choices:
            cursor.execute(f"SELECT {postgresql_export._literal(choice)}, %s", [1])
            assert cursor.fetchone()[0] == choice
        if connection.vendor == "postgresql":
            values = [*choices, "ODOMETER\n"]
            rows = ", ".join(["(%s)"] * len(values))
            choice_json = postgresql_export._choice("v.x", choices)
            cursor.execute(f"SELECT {choice_json} FROM (VALUES {rows}) AS v(x)", values)
            assert [r[0] for r in cursor.fetchall()] == [orjson.dumps(v).decode() for v in values]


class _OnlyOnce(io.RawIOBase):
    """A file that cannot be read twice (standard input, say): no direct load, which needs to
    read it again when it fails."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


def by_natural_key(tenant: Tenant) -> dict[str, dict[Any, dict[str, Any]]]:
    """The tenant's rows keyed by natural key, every id of the tenant's rows (its own and its
    references) replaced by the natural key of the row it names: the same data, whatever ids."""
    reg = registry()
    keys: dict[str, dict[Any, Any]] = {}
    result = {}
    for spec in reg.tenant_tables:
        refs = {f.column: f.target for f in spec.fields_of_kind("tenant_fk")}
        rows = {}
        keys[spec.name] = {}
        for row in spec.model.objects.filter(tenant=tenant).values():
            resolved = {
                column: keys[refs[column]].get(value) if column in refs else value
                for column, value in row.items()
                if column not in ("id", "tenant_id")
            }
            key = tuple(resolved[spec.field_map[name].column] for name in spec.natural_key) or (
                spec.name,
            )
            keys[spec.name][row["id"]] = key
            rows[key] = resolved
        result[spec.name] = rows
    return result


def test_a_new_tenant_is_the_same_through_the_direct_and_the_staged_paths(tenant):
    data = export_bytes(tenant, include_deleted=True)
    direct = import_backup(
        io.BytesIO(data), options=ImportOptions(mode=Mode.NEW_TENANT, new_tenant_slug="direct")
    )
    staged = import_backup(
        io.BufferedReader(_OnlyOnce(data)),
        options=ImportOptions(mode=Mode.NEW_TENANT, new_tenant_slug="staged"),
    )
    assert direct.applied and staged.applied
    first, second = (by_natural_key(Tenant.objects.get(slug=slug)) for slug in ("direct", "staged"))
    del first["audit_log"], second["audit_log"]  # each import's own entry
    assert first == second
    assert first["meter_reading"] and first["integration_credential"]
