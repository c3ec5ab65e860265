"""Audit entries for every backup operation."""

from typing import Any

from tenants.models import AuditLog, Tenant


def record(tenant: Tenant, action: str, *, actor: Any = None, details: dict[str, Any]) -> AuditLog:
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditLog.objects.create(
        tenant=tenant,
        actor=user,
        actor_email=getattr(user, "email", "") or "",
        action=action,
        details=details,
    )
