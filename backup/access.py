"""Who may back up and restore which tenant: the one rule the API and the admin page share.

Owners and admins of a tenant may; members may see that the tenant exists but not act; users of
other tenants must not learn it exists. Superusers may act on every tenant.
"""

from enum import Enum
from typing import Any

from django.db.models import QuerySet

from tenants.models import Membership, Tenant

MANAGER_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN)


class Access(Enum):
    NONE = "none"  # not a member: the tenant is not revealed (404)
    MEMBER = "member"  # a member without backup rights (403)
    MANAGE = "manage"


def access_to(user: Any, tenant: Tenant) -> Access:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Access.NONE
    if user.is_superuser:
        return Access.MANAGE
    role = (
        Membership.objects.filter(tenant=tenant, user=user).values_list("role", flat=True).first()
    )
    if role is None:
        return Access.NONE
    return Access.MANAGE if role in MANAGER_ROLES else Access.MEMBER


def managed_tenants(user: Any) -> QuerySet[Tenant]:
    """The tenants whose backups this user may manage, by name."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Tenant.objects.none()
    tenants = Tenant.objects.order_by("name")
    if user.is_superuser:
        return tenants
    return tenants.filter(
        pk__in=Membership.objects.filter(user=user, role__in=MANAGER_ROLES).values("tenant")
    )


def may_create_master_data(user: Any) -> bool:
    """Master data is shared by every tenant: only superusers may add to it from a backup."""
    return bool(getattr(user, "is_superuser", False))
