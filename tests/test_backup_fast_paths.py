"""The fast paths (PostgreSQL's COPY) and the portable paths give identical results.

`BACKUP_FAST_PATHS` switches the fast paths off; on SQLite both runs take the portable path.
"""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.test import override_settings

from tenants.models import AuditLog, WorkOrder

from . import factories as f
from .backup_support import export_bytes, populate

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
