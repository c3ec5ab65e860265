"""Money: costs booked against the fleet, fuel, and total-cost-of-ownership scenarios."""

from django.db import models
from django.utils import timezone

from .base import TenantScopedModel, natural_key


class FinancialRecord(TenantScopedModel):
    class Category(models.TextChoices):
        PARTS = "parts", "Parts"
        LABOUR = "labour", "Labour"
        FUEL = "fuel", "Fuel"
        LEASE = "lease", "Lease"
        INSURANCE = "insurance", "Insurance"
        OTHER = "other", "Other"

    reference = models.CharField(max_length=40)
    vehicle = models.ForeignKey(
        "tenants.Vehicle", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    work_order = models.ForeignKey(
        "tenants.WorkOrder", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    category = models.CharField(max_length=10, choices=Category.choices)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    booked_on = models.DateField()
    description = models.TextField(blank=True)

    class Meta:
        constraints = [natural_key("financialrecord", "reference")]


class FuelTransaction(TenantScopedModel):
    receipt_number = models.CharField(max_length=40)
    vehicle = models.ForeignKey(
        "tenants.Vehicle", on_delete=models.CASCADE, related_name="fuel_transactions"
    )
    site = models.ForeignKey(
        "tenants.Site", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    transacted_at = models.DateTimeField()
    litres = models.DecimalField(max_digits=10, decimal_places=2)
    unit_price = models.DecimalField(max_digits=8, decimal_places=4)
    engine_hours = models.DecimalField(max_digits=10, decimal_places=1, null=True, blank=True)

    class Meta:
        constraints = [natural_key("fueltransaction", "receipt_number")]


class TCOScenario(TenantScopedModel):
    name = models.CharField(max_length=120)
    equipment_model = models.ForeignKey(
        "masterdata.EquipmentModel", on_delete=models.PROTECT, related_name="+"
    )
    horizon_years = models.PositiveSmallIntegerField(default=5)
    annual_hours = models.PositiveIntegerField(default=5000)
    fuel_price = models.DecimalField(max_digits=8, decimal_places=4)
    discount_rate = models.DecimalField(max_digits=5, decimal_places=4, default=0)
    assumptions = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "TCO scenario"
        constraints = [natural_key("tcoscenario", "name")]
