"""The fast paths (PostgreSQL's COPY) and the portable paths give identical results.

`BACKUP_FAST_PATHS` switches the fast paths off; on SQLite both runs take the portable path.
"""

import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.test import override_settings

from backup.errors import ValidationFailed
from backup.importer import ImportOptions, import_backup, preview_import
from backup.plan import Mode
from tenants.models import AuditLog, WorkOrder

from . import factories as f
from .backup_support import dump, export_bytes, parse, populate, tenant_snapshot

pytestmark = pytest.mark.django_db

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
    return tenant


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
    assert WorkOrder.objects.filter(tenant=tenant, description__startswith=AWKWARD).exists()


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
    data = dump(document)

    def replace():
        import_backup(io.BytesIO(data), tenant=tenant, options=ImportOptions(mode=Mode.REPLACE))
        rows = tenant_snapshot(tenant)
        del rows["audit_log"]  # each import adds its own entry
        return rows

    fast, portable = both_paths(replace)
    assert fast == portable
    assert fast["meter_reading"]


def test_problems_are_identical_on_both_paths(tenant):
    document = parse(export_bytes(tenant))
    rows = document["tenant_data"]
    rows["vehicle"][0]["id"] = "not-a-uuid"
    rows["vehicle"][1]["id"] = rows["vehicle"][1]["id"].replace("-", "")  # valid, unhyphenated
    rows["meter_reading"][0]["vehicle"] = "urn:uuid:" + rows["meter_reading"][0]["vehicle"]
    rows["meter_reading"][1]["value"] = "12.3.4"
    rows["meter_reading"][2]["read_at"] = "2026-13-01T00:00:00Z"
    rows["site"][0]["id"] = 42
    data = dump(document)

    def problems():
        with pytest.raises(ValidationFailed) as failed:
            preview_import(io.BytesIO(data), tenant=tenant, options=ImportOptions())
        return [p.as_dict() for p in failed.value.problems]

    fast, portable = both_paths(problems)
    assert fast == portable
    assert {p["field"] for p in fast} >= {"id", "value", "read_at"}
