"""Audit entries for every backup operation."""

from collections.abc import Iterable
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


def record_many(entries: Iterable[tuple[Tenant, str, dict[str, Any]]]) -> int:
    """Many entries written by the system (no actor) in one statement per thousand: a
    scheduler's pass or a prune over a fleet. Returns how many."""
    rows = [
        AuditLog(tenant=tenant, action=action, details=details)
        for tenant, action, details in entries
    ]
    AuditLog.objects.bulk_create(rows, batch_size=1000)
    return len(rows)
