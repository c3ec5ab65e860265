"""Work orders and everything the workshop records against a vehicle."""

from django.db import models
from django.utils import timezone

from .base import SoftDeleteModel, TenantScopedModel, natural_key


class WorkOrder(TenantScopedModel, SoftDeleteModel):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        ON_HOLD = "on_hold", "On hold"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    class Priority(models.TextChoices):
        LOW = "low", "Low"
        NORMAL = "normal", "Normal"
        HIGH = "high", "High"
        URGENT = "urgent", "Urgent"

    number = models.CharField(max_length=30)
    vehicle = models.ForeignKey(
        "tenants.Vehicle", on_delete=models.RESTRICT, related_name="work_orders"
    )
    site = models.ForeignKey(
        "tenants.Site", on_delete=models.RESTRICT, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    description = models.TextField(blank=True)
    estimated_cost = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)

    class Meta:
        constraints = [natural_key("workorder", "number")]
        indexes = [models.Index(fields=["tenant", "status"], name="workorder_tenant_status")]

    def __str__(self) -> str:
        return self.number


class MaintenanceLog(TenantScopedModel):
    vehicle = models.ForeignKey(
        "tenants.Vehicle", on_delete=models.CASCADE, related_name="maintenance_logs"
    )
    work_order = models.ForeignKey(
        WorkOrder, on_delete=models.SET_NULL, null=True, blank=True, related_name="logs"
    )
    activity = models.ForeignKey(
        "masterdata.WorkActivity", on_delete=models.PROTECT, related_name="+"
    )
    performed_at = models.DateTimeField()
    engine_hours = models.DecimalField(max_digits=10, decimal_places=1, null=True, blank=True)
    technician = models.CharField(max_length=120, blank=True)
    labour_hours = models.DecimalField(max_digits=6, decimal_places=2, default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    notes = models.TextField(blank=True)

    class Meta:
        constraints = [natural_key("maintenancelog", "vehicle", "activity", "performed_at")]


class Forecast(TenantScopedModel):
    vehicle = models.ForeignKey(
        "tenants.Vehicle", on_delete=models.CASCADE, related_name="forecasts"
    )
    activity = models.ForeignKey(
        "masterdata.WorkActivity", on_delete=models.PROTECT, related_name="+"
    )
    due_on = models.DateField()
    due_hours = models.DecimalField(max_digits=10, decimal_places=1, null=True, blank=True)
    estimated_cost = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    confidence = models.DecimalField(max_digits=4, decimal_places=3, default=1)
    generated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [natural_key("forecast", "vehicle", "activity", "due_on")]


class Part(TenantScopedModel, SoftDeleteModel):
    part_number = models.CharField(max_length=60)
    name = models.CharField(max_length=200)
    catalog_item = models.ForeignKey(
        "masterdata.ComponentCatalog",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    site = models.ForeignKey(
        "tenants.Site", on_delete=models.RESTRICT, null=True, blank=True, related_name="+"
    )
    quantity_on_hand = models.IntegerField(default=0)
    reorder_level = models.IntegerField(default=0)
    unit_cost = models.DecimalField(max_digits=12, decimal_places=2, default=0)

    class Meta:
        constraints = [natural_key("part", "part_number")]

    def __str__(self) -> str:
        return f"{self.part_number} {self.name}"


class DowntimeEvent(TenantScopedModel):
    class Reason(models.TextChoices):
        BREAKDOWN = "breakdown", "Breakdown"
        SCHEDULED = "scheduled", "Scheduled maintenance"
        WAITING_PARTS = "waiting_parts", "Waiting for parts"
        WEATHER = "weather", "Weather"
        OPERATIONAL = "operational", "Operational delay"

    vehicle = models.ForeignKey(
        "tenants.Vehicle", on_delete=models.CASCADE, related_name="downtime_events"
    )
    work_order = models.ForeignKey(
        WorkOrder, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=14, choices=Reason.choices)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        constraints = [natural_key("downtimeevent", "vehicle", "started_at")]


class Attachment(TenantScopedModel):
    """A file's metadata; the file itself lives in Django storage."""

    work_order = models.ForeignKey(
        WorkOrder, on_delete=models.CASCADE, null=True, blank=True, related_name="attachments"
    )
    vehicle = models.ForeignKey(
        "tenants.Vehicle", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # Indexed alone too: an import checks which tenants name the files its rows name.
    file = models.FileField(upload_to="attachments/%Y/%m/", max_length=255, db_index=True)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [natural_key("attachment", "file")]


class Notification(TenantScopedModel):
    class Level(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    vehicle = models.ForeignKey(
        "tenants.Vehicle", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [natural_key("notification", "created_at", "title")]
