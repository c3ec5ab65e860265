"""Admin for tenants and their data, built to stay usable with millions of rows per table."""

from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from .models import (
    Attachment,
    AuditLog,
    Component,
    ComponentEvent,
    DowntimeEvent,
    FinancialRecord,
    Forecast,
    FuelTransaction,
    IntegrationCredential,
    MaintenanceLog,
    Membership,
    MeterReading,
    Notification,
    Part,
    Profile,
    ProfileComponent,
    ProfileEvent,
    Site,
    TCOScenario,
    Tenant,
    TenantSettings,
    Vehicle,
    WorkOrder,
)

# Lets the changelist tell live rows from soft-deleted ones.
DELETED = ("deleted_at", admin.EmptyFieldListFilter)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


class TenantScopedAdmin(admin.ModelAdmin):
    """Defaults for every tenant-scoped table.

    Subclasses list `tenant` first in `list_filter` and `list_select_related`. Every foreign key
    is an autocomplete widget: a plain <select> would load every vehicle or work order of every
    tenant into the form.
    """

    list_filter: tuple[Any, ...] = ("tenant",)
    list_select_related: tuple[str, ...] = ("tenant",)
    # The second COUNT(*) over the unfiltered table is the slow query on the big tables.
    show_full_result_count = False
    list_per_page = 50

    def __init__(self, model: type[models.Model], admin_site: admin.AdminSite) -> None:
        super().__init__(model, admin_site)
        if not self.autocomplete_fields:
            # Set on the instance, which is what Django's admin system checks inspect.
            self.autocomplete_fields = tuple(f.name for f in model._meta.fields if f.many_to_one)

    def get_ordering(self, request: HttpRequest) -> Sequence[str]:
        # Autocomplete paginates `get_queryset()` too, so it needs a stable order; the primary
        # key is indexed on every table, however big.
        return self.ordering or self.model._meta.ordering or ("-pk",)


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ("user", "tenant", "role", "joined_at")
    list_filter = ("tenant", "role")
    list_select_related = ("tenant", "user")
    search_fields = ("user__username", "user__email")


@admin.register(TenantSettings)
class TenantSettingsAdmin(TenantScopedAdmin):
    list_display = ("tenant", "currency", "timezone", "distance_unit", "forecasting_enabled")
    list_filter = ("tenant", "forecasting_enabled")
    search_fields = ("tenant__name",)


@admin.register(Site)
class SiteAdmin(TenantScopedAdmin):
    list_display = ("name", "code", "kind", "tenant", "is_active")
    list_filter = ("tenant", "kind", "is_active")
    ordering = ("name",)
    search_fields = ("name", "code")


class IntegrationCredentialForm(forms.ModelForm):
    # Never sent back to the browser; an empty field keeps the stored secret.
    secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="API key or password. Leave empty to keep the stored one.",
    )

    class Meta:
        model = IntegrationCredential
        fields = (
            "tenant",
            "provider",
            "name",
            "endpoint_url",
            "username",
            "secret",
            "secret_needs_reentry",
            "is_active",
            "last_used_at",
            "config",
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("secret"):
            # Typing the secret in is the re-entry a restore asked for.
            cleaned["secret_needs_reentry"] = False
        elif not self.instance._state.adding:
            cleaned["secret"] = self.instance.secret
        return cleaned


@admin.register(IntegrationCredential)
class IntegrationCredentialAdmin(TenantScopedAdmin):
    form = IntegrationCredentialForm
    list_display = (
        "name",
        "provider",
        "tenant",
        "is_active",
        "secret_needs_reentry",
        "last_used_at",
    )
    list_filter = ("tenant", "provider", "is_active", "secret_needs_reentry")
    search_fields = ("name", "username", "endpoint_url")


@admin.register(AuditLog)
class AuditLogAdmin(TenantScopedAdmin):
    list_display = ("created_at", "action", "actor_email", "tenant", "imported_at", "imported_by")
    list_filter = ("tenant", ("imported_at", admin.EmptyFieldListFilter))
    list_select_related = ("tenant",)
    search_fields = ("action", "actor_email")


@admin.register(Profile)
class ProfileAdmin(TenantScopedAdmin):
    list_display = ("name", "equipment_model", "tenant", "is_default", "deleted_at")
    list_filter = ("tenant", "is_default", DELETED)
    ordering = ("name",)
    # EquipmentModel's __str__ reads its OEM's name.
    list_select_related = ("tenant", "equipment_model__oem")
    search_fields = ("name",)


@admin.register(ProfileComponent)
class ProfileComponentAdmin(TenantScopedAdmin):
    list_display = (
        "profile",
        "component",
        "position",
        "quantity",
        "replacement_interval_hours",
        "tenant",
    )
    list_select_related = ("tenant", "profile", "component", "position")
    search_fields = ("profile__name", "component__code", "component__name")


@admin.register(ProfileEvent)
class ProfileEventAdmin(TenantScopedAdmin):
    list_display = (
        "name",
        "profile",
        "activity",
        "interval_hours",
        "interval_days",
        "estimated_cost",
        "tenant",
    )
    list_filter = ("tenant", "activity")
    list_select_related = ("tenant", "profile", "activity")
    search_fields = ("name", "profile__name")


# Vehicles are searched by exact fleet or serial number on the big tables: a join on an exact
# value uses the vehicle FK index, where `icontains` would scan every row.
VEHICLE_SEARCH = ("=vehicle__fleet_number", "=vehicle__serial_number")


@admin.register(Vehicle)
class VehicleAdmin(TenantScopedAdmin):
    list_display = (
        "fleet_number",
        "serial_number",
        "equipment_model",
        "site",
        "status",
        "engine_hours",
        "tenant",
    )
    list_filter = ("tenant", "status", "is_leased", DELETED)
    ordering = ("fleet_number", "serial_number")
    list_select_related = ("tenant", "site", "equipment_model__oem")
    search_fields = ("fleet_number", "serial_number")


@admin.register(Component)
class ComponentAdmin(TenantScopedAdmin):
    list_display = (
        "serial_number",
        "catalog_item",
        "vehicle",
        "position",
        "status",
        "installed_at",
        "tenant",
    )
    list_filter = ("tenant", "status")
    list_select_related = ("tenant", "vehicle", "catalog_item", "position")
    search_fields = ("serial_number", "=catalog_item__code", *VEHICLE_SEARCH)


@admin.register(ComponentEvent)
class ComponentEventAdmin(TenantScopedAdmin):
    list_display = ("component", "event_type", "occurred_at", "hours", "tenant")
    list_filter = ("tenant", "event_type")
    list_select_related = ("tenant", "component")
    search_fields = ("=component__serial_number",)


@admin.register(MeterReading)
class MeterReadingAdmin(TenantScopedAdmin):
    list_display = ("vehicle", "meter_type", "read_at", "value", "source", "tenant")
    list_filter = ("tenant", "meter_type", "source")
    list_select_related = ("tenant", "vehicle")
    search_fields = VEHICLE_SEARCH


@admin.register(WorkOrder)
class WorkOrderAdmin(TenantScopedAdmin):
    list_display = (
        "number",
        "vehicle",
        "status",
        "priority",
        "opened_at",
        "closed_at",
        "tenant",
    )
    list_filter = ("tenant", "status", "priority", DELETED)
    list_select_related = ("tenant", "vehicle")
    search_fields = ("number", *VEHICLE_SEARCH)


@admin.register(MaintenanceLog)
class MaintenanceLogAdmin(TenantScopedAdmin):
    list_display = (
        "vehicle",
        "activity",
        "performed_at",
        "technician",
        "labour_hours",
        "cost",
        "tenant",
    )
    list_filter = ("tenant", "activity")
    list_select_related = ("tenant", "vehicle", "activity")
    search_fields = ("=work_order__number", "technician", *VEHICLE_SEARCH)


@admin.register(Forecast)
class ForecastAdmin(TenantScopedAdmin):
    list_display = (
        "vehicle",
        "activity",
        "due_on",
        "due_hours",
        "estimated_cost",
        "confidence",
        "tenant",
    )
    list_filter = ("tenant", "activity")
    list_select_related = ("tenant", "vehicle", "activity")
    search_fields = VEHICLE_SEARCH


@admin.register(Part)
class PartAdmin(TenantScopedAdmin):
    list_display = (
        "part_number",
        "name",
        "site",
        "quantity_on_hand",
        "reorder_level",
        "unit_cost",
        "tenant",
    )
    list_filter = ("tenant", DELETED)
    list_select_related = ("tenant", "site")
    search_fields = ("part_number", "name")


@admin.register(DowntimeEvent)
class DowntimeEventAdmin(TenantScopedAdmin):
    list_display = ("vehicle", "reason", "started_at", "ended_at", "tenant")
    list_filter = ("tenant", "reason")
    list_select_related = ("tenant", "vehicle")
    search_fields = VEHICLE_SEARCH


@admin.register(Attachment)
class AttachmentAdmin(TenantScopedAdmin):
    list_display = (
        "filename",
        "content_type",
        "size_bytes",
        "work_order",
        "vehicle",
        "uploaded_at",
        "tenant",
    )
    list_select_related = ("tenant", "work_order", "vehicle")
    search_fields = ("filename", "=sha256")


@admin.register(Notification)
class NotificationAdmin(TenantScopedAdmin):
    list_display = ("title", "level", "vehicle", "created_at", "read_at", "tenant")
    list_filter = ("tenant", "level", ("read_at", admin.EmptyFieldListFilter))
    list_select_related = ("tenant", "vehicle")
    search_fields = ("title",)


@admin.register(FinancialRecord)
class FinancialRecordAdmin(TenantScopedAdmin):
    list_display = ("reference", "category", "amount", "currency", "booked_on", "vehicle", "tenant")
    list_filter = ("tenant", "category")
    list_select_related = ("tenant", "vehicle")
    search_fields = ("reference", "=work_order__number", *VEHICLE_SEARCH)


@admin.register(FuelTransaction)
class FuelTransactionAdmin(TenantScopedAdmin):
    list_display = (
        "receipt_number",
        "vehicle",
        "site",
        "transacted_at",
        "litres",
        "unit_price",
        "tenant",
    )
    list_select_related = ("tenant", "vehicle", "site")
    search_fields = ("receipt_number", *VEHICLE_SEARCH)


@admin.register(TCOScenario)
class TCOScenarioAdmin(TenantScopedAdmin):
    list_display = (
        "name",
        "equipment_model",
        "horizon_years",
        "annual_hours",
        "fuel_price",
        "tenant",
    )
    list_select_related = ("tenant", "equipment_model__oem")
    search_fields = ("name",)
