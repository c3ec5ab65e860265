"""Maintenance profiles, vehicles, their components and meter readings."""

from django.db import models

from .base import SoftDeleteModel, TenantScopedModel, natural_key


class Profile(TenantScopedModel, SoftDeleteModel):
    """A maintenance profile: what an equipment model needs, and how often."""

    name = models.CharField(max_length=120)
    equipment_model = models.ForeignKey(
        "masterdata.EquipmentModel", on_delete=models.PROTECT, related_name="+"
    )
    description = models.TextField(blank=True)
    operating_hours_per_day = models.DecimalField(max_digits=5, decimal_places=2, default=20)
    is_default = models.BooleanField(default=False)

    class Meta:
        constraints = [natural_key("profile", "name")]

    def __str__(self) -> str:
        return self.name


class ProfileComponent(TenantScopedModel):
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="components")
    component = models.ForeignKey(
        "masterdata.ComponentCatalog", on_delete=models.PROTECT, related_name="+"
    )
    position = models.ForeignKey(
        "masterdata.MachinePosition", on_delete=models.PROTECT, related_name="+"
    )
    quantity = models.PositiveSmallIntegerField(default=1)
    replacement_interval_hours = models.PositiveIntegerField()

    class Meta:
        constraints = [natural_key("profilecomponent", "profile", "component", "position")]


class ProfileEvent(TenantScopedModel):
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="events")
    activity = models.ForeignKey(
        "masterdata.WorkActivity", on_delete=models.PROTECT, related_name="+"
    )
    name = models.CharField(max_length=120)
    interval_hours = models.PositiveIntegerField(null=True, blank=True)
    interval_days = models.PositiveIntegerField(null=True, blank=True)
    estimated_cost = models.DecimalField(max_digits=12, decimal_places=2, default=0)

    class Meta:
        constraints = [natural_key("profileevent", "profile", "name")]

    def __str__(self) -> str:
        return self.name


class Vehicle(TenantScopedModel, SoftDeleteModel):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        STANDBY = "standby", "Standby"
        DOWN = "down", "Down for repair"
        RETIRED = "retired", "Retired"

    site = models.ForeignKey("tenants.Site", on_delete=models.RESTRICT, related_name="vehicles")
    profile = models.ForeignKey(
        Profile, on_delete=models.SET_NULL, null=True, blank=True, related_name="vehicles"
    )
    equipment_model = models.ForeignKey(
        "masterdata.EquipmentModel", on_delete=models.PROTECT, related_name="+"
    )
    machine_family = models.ForeignKey(
        "masterdata.MachineFamily",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    serial_number = models.CharField(max_length=60)
    fleet_number = models.CharField(max_length=30, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    commissioned_on = models.DateField(null=True, blank=True)
    purchase_price = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    engine_hours = models.DecimalField(max_digits=10, decimal_places=1, default=0)
    odometer_km = models.DecimalField(max_digits=10, decimal_places=1, null=True, blank=True)
    is_leased = models.BooleanField(default=False)
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [natural_key("vehicle", "serial_number")]
        indexes = [models.Index(fields=["tenant", "site"], name="vehicle_tenant_site")]

    def __str__(self) -> str:
        return self.fleet_number or self.serial_number


class Component(TenantScopedModel):
    """A component installed on a vehicle (an engine, a final drive, a tyre...)."""

    class Status(models.TextChoices):
        INSTALLED = "installed", "Installed"
        REMOVED = "removed", "Removed"
        REBUILDING = "rebuilding", "Being rebuilt"
        SCRAPPED = "scrapped", "Scrapped"

    vehicle = models.ForeignKey(Vehicle, on_delete=models.CASCADE, related_name="components")
    catalog_item = models.ForeignKey(
        "masterdata.ComponentCatalog", on_delete=models.PROTECT, related_name="+"
    )
    position = models.ForeignKey(
        "masterdata.MachinePosition",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    serial_number = models.CharField(max_length=60)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.INSTALLED)
    installed_at = models.DateTimeField()
    hours_at_install = models.DecimalField(max_digits=10, decimal_places=1, default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)

    class Meta:
        constraints = [natural_key("component", "serial_number")]


class ComponentEvent(TenantScopedModel):
    class EventType(models.TextChoices):
        INSPECTION = "inspection", "Inspection"
        REPAIR = "repair", "Repair"
        REPLACEMENT = "replacement", "Replacement"
        OIL_SAMPLE = "oil_sample", "Oil sample"
        FAILURE = "failure", "Failure"

    component = models.ForeignKey(Component, on_delete=models.CASCADE, related_name="events")
    event_type = models.CharField(max_length=12, choices=EventType.choices)
    occurred_at = models.DateTimeField()
    hours = models.DecimalField(max_digits=10, decimal_places=1, null=True, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        constraints = [natural_key("componentevent", "component", "event_type", "occurred_at")]


class MeterReading(TenantScopedModel):
    """The bulk table: millions of rows for a large fleet."""

    class MeterType(models.TextChoices):
        ENGINE_HOURS = "engine_hours", "Engine hours"
        ODOMETER = "odometer", "Odometer"
        FUEL_LEVEL = "fuel_level", "Fuel level"

    class Source(models.TextChoices):
        MANUAL = "manual", "Manual entry"
        TELEMATICS = "telematics", "Telematics"
        IMPORT = "import", "File import"

    vehicle = models.ForeignKey(Vehicle, on_delete=models.CASCADE, related_name="readings")
    meter_type = models.CharField(max_length=12, choices=MeterType.choices)
    read_at = models.DateTimeField()
    value = models.DecimalField(max_digits=12, decimal_places=2)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.TELEMATICS)

    class Meta:
        constraints = [natural_key("meterreading", "vehicle", "meter_type", "read_at")]
