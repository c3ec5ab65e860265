"""Record counts of a tenant, per table (what the stats panel and `backup_stats` show)."""

from tenants.models import Tenant

from .errors import Refused
from .tables import registry


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
            tenant = Tenant.objects.filter(pk=reference).first()
        except Exception:
            tenant = None
    if tenant is None:
        raise Refused(f"No tenant with slug or id '{reference}'.")
    return tenant
