"""Every type of value, tried as a hostile file would: each value JSON can carry is either
stored as the file means it, or a problem naming its table, row and field, in every mode, with
the database unchanged, and the same on SQLite and PostgreSQL (CI runs both)."""

import io
from typing import Any

import orjson
import pytest

from backup.errors import ValidationFailed
from backup.export import export_tenant
from backup.restore import ImportOptions, Mode, import_backup
from tenants.models import Tenant

from .backup_support import snapshot
from .broken_backups import _doc, _set

pytestmark = pytest.mark.django_db

VEHICLE = "tenant_data.vehicle.0."
READING = "tenant_data.meter_reading.0."
SITE = "tenant_data.site.0."

REFUSED = [
    (SITE + "name", "a" * 121, "at most 120 allowed"),
    (SITE + "name", 12, "expected a string"),
    (VEHICLE + "status", "ACTIVE", "not one of"),
    (VEHICLE + "status", " active", "not one of"),
    (VEHICLE + "purchase_price", "NaN", "not a finite number"),
    (VEHICLE + "purchase_price", "-Infinity", "not a finite number"),
    (VEHICLE + "purchase_price", "1_000", "not a decimal number"),
    (VEHICLE + "purchase_price", " 12", "not a decimal number"),
    (VEHICLE + "purchase_price", "\u0661\u0662", "not a decimal number"),  # Arabic-Indic digits
    (VEHICLE + "purchase_price", "0.001", "no more than 2 decimal places"),
    (VEHICLE + "purchase_price", "1E+400", "no more than"),
    (VEHICLE + "purchase_price", 12.5, "expected a decimal written as a string"),
    (VEHICLE + "commissioned_on", "0000-01-01", "not a valid date"),
    (VEHICLE + "commissioned_on", "10000-01-01", "not a valid date"),
    (VEHICLE + "commissioned_on", "2026-02-30", "not a valid date"),
    (VEHICLE + "commissioned_on", "20260105", "not a valid date"),
    (VEHICLE + "commissioned_on", "2026-W01-1", "not a valid date"),
    (READING + "read_at", "2026-10-31T23:00:00", "has no time zone"),
    (READING + "read_at", "2026-10-31 23:00:00Z", "not a valid ISO-8601 datetime"),
    (READING + "read_at", "20261031T230000Z", "not a valid ISO-8601 datetime"),
    (READING + "read_at", "2026-10-31T24:00:00Z", "not a valid ISO-8601 datetime"),
    (READING + "read_at", "2026-10-31T23:59:60Z", "not a valid ISO-8601 datetime"),
    (READING + "read_at", "2026-10-31T23:00:00.0000001Z", "more than the six decimals"),
    (READING + "read_at", "0001-01-01T00:00:00+01:00", "outside the years 1 to 9999"),
    (READING + "read_at", "9999-12-31T23:59:59-01:00", "outside the years 1 to 9999"),
    (READING + "id", "not-a-uuid", "not a valid UUID"),
    (VEHICLE + "is_leased", 1, "expected true or false"),
    (VEHICLE + "is_leased", "true", "expected true or false"),
    (VEHICLE + "is_leased", None, "must not be null"),
    (VEHICLE + "attributes", {"text": "nul\u0000"}, "NUL character"),
    (VEHICLE + "equipment_model", 2**63, "outside the range"),
    (VEHICLE + "equipment_model", "3", "expected the id of a master-data row"),
    ("master_data.equipment_model.0.rated_power_kw", 2**31, "outside the range 0 to 2147483647"),
    ("master_data.equipment_model.0.rated_power_kw", -1, "outside the range 0 to 2147483647"),
    ("master_data.oem.0.id", 2**63, "outside the range"),
]

# Accepted: (path, value in the file, value the export writes back).
STORED = [
    (SITE + "name", "😀" * 120, "😀" * 120),  # characters, not bytes
    (SITE + "name", "\u2028line", "\u2028line"),
    (VEHICLE + "purchase_price", "1e5", "100000.00"),
    (VEHICLE + "purchase_price", "-0", "0.00"),
    (VEHICLE + "commissioned_on", "0001-01-01", "0001-01-01"),
    (VEHICLE + "commissioned_on", "9999-12-31", "9999-12-31"),
    (READING + "read_at", "2026-10-31T23:00:00+05:00", "2026-10-31T18:00:00.000000Z"),
    (READING + "read_at", "2026-10-31T23:00:00.5Z", "2026-10-31T23:00:00.500000Z"),
    (READING + "read_at", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z"),
    (READING + "read_at", "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
    (
        READING + "id",
        "2DA08F60-5C74-4E83-B12E-7C6E4B3FB003",
        "2da08f60-5c74-4e83-b12e-7c6e4b3fb003",
    ),
    (VEHICLE + "attributes", {"neg0": -0.0, "max": 1e308}, {"neg0": -0.0, "max": 1e308}),
    (VEHICLE + "attributes", [1, "two", None], [1, "two", None]),
]

MODES = [Mode.MERGE, Mode.REPLACE, Mode.NEW_TENANT]


def _import(data: bytes, tenant: Tenant, mode: Mode) -> Any:
    return import_backup(
        io.BytesIO(data),
        tenant=None if mode == Mode.NEW_TENANT else tenant,
        options=ImportOptions(
            mode=mode,
            new_tenant_slug="hostile-copy" if mode == Mode.NEW_TENANT else "",
            create_missing_master_data=True,
        ),
    )


@pytest.mark.parametrize(("path", "value", "message"), REFUSED, ids=lambda v: repr(v)[:40])
def test_a_value_no_database_stores_as_it_is_is_a_problem_of_its_row(
    corpus_tenant, path, value, message
):
    data = _doc(_set(path, value))
    section, table, _position, field = path.split(".")
    before = snapshot(audit=False)
    for mode in MODES:
        with pytest.raises(ValidationFailed) as failed:
            _import(data, corpus_tenant, mode)
        problem = next(p for p in failed.value.problems if p.field == field)
        assert problem.table == table and message in problem.message, problem
        assert problem.row.startswith("row 1") or section == "tenant_data"
    assert snapshot(audit=False) == before


@pytest.mark.parametrize(("path", "value", "written"), STORED, ids=lambda v: repr(v)[:40])
def test_a_value_the_format_accepts_is_stored_as_the_file_means_it(
    corpus_tenant, path, value, written
):
    data = _doc(_set(path, value))
    _section, table, position, field = path.split(".")
    wanted = orjson.loads(data)["tenant_data"][table][int(position)]["id"].lower()
    for mode in MODES:
        report = _import(data, corpus_tenant, mode)
        out = io.BytesIO()
        export_tenant(Tenant.objects.get(pk=report.tenant["id"]), out)
        rows = orjson.loads(out.getvalue())["tenant_data"][table]
        if mode == Mode.NEW_TENANT:  # new ids: the row is the one with the value
            assert field == "id" or written in [row[field] for row in rows], mode
            Tenant.objects.filter(slug="hostile-copy").delete()
        else:
            (row,) = [row for row in rows if row["id"] == wanted]
            assert row[field] == written, mode
