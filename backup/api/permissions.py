"""Who may use a tenant's backup endpoints: `backup.access.access_to`, as HTTP statuses."""

import re
from typing import Any

from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from backup.access import Access, access_to
from tenants.models import Tenant

# Anything else cannot be a slug: answered without a query (a NUL byte would even make
# PostgreSQL fail).
SLUG_PATTERN = re.compile(r"[-a-zA-Z0-9_]{1,80}")


class ManagesTenantBackup(BasePermission):
    """Owners and admins of the tenant in the URL, and superusers.

    Anonymous: 401. Not a member, or no such tenant: 404, so that a tenant's existence is not
    revealed. A member without backup rights: 403. The tenant is left on `view.tenant`."""

    message = "Only the tenant's owners and admins may back up and restore it."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False  # DRF answers 401 with WWW-Authenticate
        slug = view.kwargs.get("tenant", "")
        tenant = Tenant.objects.filter(slug=slug).first() if SLUG_PATTERN.fullmatch(slug) else None
        access = Access.NONE if tenant is None else access_to(request.user, tenant)
        if access is Access.NONE:
            raise NotFound(f"No tenant '{slug}' that you can see.")
        view.tenant = tenant
        return access is Access.MANAGE
