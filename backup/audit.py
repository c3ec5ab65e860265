"""Audit entries for every backup operation."""

from collections.abc import Iterable
from typing import Any

from backup.db.bulk_rows import insert_rows
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


def record_many(entries: Iterable[tuple[Any, str, dict[str, Any]]]) -> int:
    """Many entries written by the system (no actor), each (tenant id, action, details), in a
    few statements: a scheduler's pass over a fleet. Returns how many."""
    rows = [
        {"tenant_id": tenant_id, "action": action, "details": details}
        for tenant_id, action, details in entries
    ]
    return len(insert_rows(AuditLog, rows))
