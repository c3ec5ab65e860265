"""Building tenants for backup tests, exporting them, and snapshotting the whole database."""

import datetime as dt
import io
from typing import Any

import orjson
from django.apps import apps
from django.utils import timezone

from backup.export import ExportOptions, export_tenant
from tenants.models import AuditLog, Tenant

from . import factories as f

SECRET = "s3cr3t-api-token-value"


def populate(tenant: Tenant, vehicles: int = 2) -> dict[str, Any]:
    """Rows in every tenant table, a secret, and soft-deleted rows with dependants."""
    owner = f.UserFactory()
    f.MembershipFactory(tenant=tenant, user=owner, role="owner")
    f.TenantSettingsFactory(tenant=tenant)
    site = f.SiteFactory(tenant=tenant)
    profile = f.ProfileFactory(tenant=tenant)
    f.ProfileComponentFactory(tenant=tenant, profile=profile)
    f.ProfileEventFactory(tenant=tenant, profile=profile)
    fleet = [f.VehicleFactory(tenant=tenant, site=site, profile=profile) for _ in range(vehicles)]
    for vehicle in fleet:
        component = f.ComponentFactory(tenant=tenant, vehicle=vehicle)
        f.ComponentEventFactory(tenant=tenant, component=component)
        for _ in range(3):
            f.MeterReadingFactory(tenant=tenant, vehicle=vehicle)
        f.MaintenanceLogFactory(tenant=tenant, vehicle=vehicle, work_order=None)
        f.ForecastFactory(tenant=tenant, vehicle=vehicle)
        f.DowntimeEventFactory(tenant=tenant, vehicle=vehicle, work_order=None)
        f.FuelTransactionFactory(tenant=tenant, vehicle=vehicle, site=site)
        f.NotificationFactory(tenant=tenant, vehicle=vehicle)
    work_order = f.WorkOrderFactory(tenant=tenant, vehicle=fleet[0], site=site)
    f.AttachmentFactory(tenant=tenant, work_order=work_order, vehicle=fleet[0])
    f.FinancialRecordFactory(tenant=tenant, vehicle=fleet[0], work_order=work_order)
    f.PartFactory(tenant=tenant, site=site)
    f.TCOScenarioFactory(tenant=tenant)
    f.IntegrationCredentialFactory(tenant=tenant, secret=SECRET)
    f.AuditLogFactory(tenant=tenant, actor=owner)

    now = timezone.now()
    deleted_vehicle = f.VehicleFactory(tenant=tenant, site=site, profile=None, deleted_at=now)
    f.MeterReadingFactory(tenant=tenant, vehicle=deleted_vehicle)
    deleted_order = f.WorkOrderFactory(tenant=tenant, vehicle=fleet[0], site=site, deleted_at=now)
    # An optional reference to a deleted row: kept, but written as null without the option.
    f.FinancialRecordFactory(tenant=tenant, vehicle=fleet[-1], work_order=deleted_order)
    f.PartFactory(tenant=tenant, site=site, deleted_at=now)
    f.ProfileFactory(tenant=tenant, deleted_at=now)
    return {
        "owner": owner,
        "site": site,
        "vehicles": fleet,
        "deleted_vehicle": deleted_vehicle,
        "deleted_order": deleted_order,
    }


def export_bytes(tenant: Tenant, **options: bool) -> bytes:
    out = io.BytesIO()
    export_tenant(tenant, out, options=ExportOptions(**options))
    return out.getvalue()


def parse(data: bytes) -> dict[str, Any]:
    """For assertions only: tests read small documents whole."""
    return orjson.loads(data)


def dump(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document)


def without_secrets(tenant_data: dict[str, Any]) -> dict[str, Any]:
    """A secret cannot come back from a file: after a restore it is flagged instead."""
    for row in tenant_data.get("integration_credential", []):
        row.pop("has_secret")
        row.pop("secret_needs_reentry")
    return tenant_data


def as_plain(tenant_data: dict[str, Any]) -> dict[str, Any]:
    """An encrypted backup's tenant data as a plain backup has it: each secret replaced by
    whether it was set."""
    for row in tenant_data.get("integration_credential", []):
        row["has_secret"] = bool(row.pop("secret"))
    return tenant_data


def snapshot(*, audit: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the project, ordered, to compare before and after."""
    result = {}
    for model in apps.get_models():
        if model is AuditLog and not audit:
            continue
        result[model._meta.label] = list(model.objects.order_by("pk").values())
    return result


def tenant_snapshot(tenant: Tenant) -> dict[str, list[dict[str, Any]]]:
    from backup.registry import registry

    return {
        spec.name: list(spec.model.objects.filter(tenant=tenant).order_by("pk").values())
        for spec in registry().tenant_tables
    }


# Schedules are planned from the real now; tests pin them to their first slot after this moment
# instead, so that they pass on any day.
EPOCH = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def pin_next_slot(schedule: Any) -> Any:
    """The schedule pointed at its first slot after EPOCH (its offset included)."""
    from backup.models import Schedule
    from backup.stored.schedules import rule_of

    rule = rule_of(schedule)
    slot = rule.next_slot(EPOCH)
    Schedule.objects.filter(pk=schedule.pk).update(
        next_slot_at=slot, next_run_at=slot + rule.offset
    )
    schedule.refresh_from_db()
    return schedule
