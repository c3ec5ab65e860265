"""Who may back up and restore which tenant: the one rule the API and the admin page share.

Owners and admins of a tenant may; members may see that the tenant exists but not act; users of
other tenants must not learn it exists. Superusers may act on every tenant.
"""

from enum import Enum
from typing import Any

from django.db.models import QuerySet

from backup.errors import NotPermitted
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


def sees_every_user(user: Any) -> bool:
    """Whether a backup imported by this user may name any account of the platform by email.
    A tenant's owner or admin may only name the tenant's members: an import must not tell them
    which other emails have an account here. `None` is the command line's operator."""
    return user is None or bool(getattr(user, "is_superuser", False))


def refuse_lost_privileges(user: Any, *, create_missing_master_data: bool) -> None:
    """Raise `NotPermitted` when `user` asks for what only a privileged user may, as the user's
    rights stand now: an upload previewed with a privilege is not imported once it is lost."""
    if create_missing_master_data and user is not None and not may_create_master_data(user):
        raise NotPermitted(
            "create_missing_master_data: master data is shared by all tenants, so only "
            "superusers may create it from a backup."
        )
