"""Record counts of a tenant, per table (what the stats panel and `backup_stats` show)."""

import uuid

from backup.errors import Refused
from backup.registry import registry
from tenants.models import Tenant


def tenant_statistics(tenant: Tenant) -> dict[str, int]:
    return {
        spec.name: spec.model.objects.filter(tenant=tenant).count()
        for spec in registry().tenant_tables
    }


def find_tenant(reference: str) -> Tenant:
    """A tenant by slug or by id, as operators type it."""
    tenant = Tenant.objects.filter(slug=reference).first()
    if tenant is None:
        try:
            tenant = Tenant.objects.filter(pk=uuid.UUID(reference)).first()
        except ValueError:  # not a UUID either: simply no such tenant
            tenant = None
    if tenant is None:
        raise Refused(f"No tenant with slug or id '{reference}'.")
    return tenant
