"""The tenant itself and what belongs to the organisation rather than to the fleet."""

import re
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from .base import ImportStamp, TenantScopedModel, natural_key


class Tenant(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            # `slug` alone would take "DEMO" beside "demo": two tenants a person cannot tell
            # apart in a URL or a log.
            models.UniqueConstraint(
                Lower("slug"),
                name="tenant_slug_unique_ignoring_case",
                violation_error_message="A tenant with this slug (ignoring case) already exists.",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def slug_taken(cls, slug: str) -> bool:
        """Whether a tenant has this slug, ignoring case, as the slugs' constraint does."""
        return cls.objects.filter(slug__iexact=slug).exists()


class Membership(TenantScopedModel):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [natural_key("membership", "user")]

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


class TenantSettings(TenantScopedModel):
    class DistanceUnit(models.TextChoices):
        KILOMETRES = "km", "Kilometres"
        MILES = "mi", "Miles"

    currency = models.CharField(max_length=3, default="USD")
    timezone = models.CharField(max_length=64, default="UTC")
    distance_unit = models.CharField(
        max_length=2, choices=DistanceUnit.choices, default=DistanceUnit.KILOMETRES
    )
    fiscal_year_start_month = models.PositiveSmallIntegerField(default=1)
    default_utilisation_hours = models.DecimalField(max_digits=5, decimal_places=2, default=20)
    forecasting_enabled = models.BooleanField(default=True)
    preferences = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "tenant settings"
        # One row per tenant: the natural key is the tenant alone.
        constraints = [natural_key("tenantsettings")]

    def __str__(self) -> str:
        return f"Settings of {self.tenant}"


class Site(TenantScopedModel):
    class Kind(models.TextChoices):
        MINE = "mine", "Mine"
        QUARRY = "quarry", "Quarry"
        WORKSHOP = "workshop", "Workshop"
        DEPOT = "depot", "Depot"
        CONSTRUCTION = "construction", "Construction site"

    name = models.CharField(max_length=120)
    code = models.CharField(max_length=20, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.MINE)
    address = models.TextField(blank=True)
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [natural_key("site", "name")]

    def __str__(self) -> str:
        return self.name


class IntegrationCredential(TenantScopedModel):
    class Provider(models.TextChoices):
        TELEMATICS = "telematics", "Telematics"
        ERP = "erp", "ERP"
        FUEL_CARD = "fuel_card", "Fuel card"
        WEBHOOK = "webhook", "Webhook"

    provider = models.CharField(max_length=20, choices=Provider.choices)
    name = models.CharField(max_length=120)
    endpoint_url = models.URLField(blank=True)
    username = models.CharField(max_length=120, blank=True)
    secret = models.TextField(
        blank=True, help_text="API key or password; exported only in encrypted backups."
    )
    secret_needs_reentry = models.BooleanField(
        default=False, help_text="Set after a restore that could not bring the secret back."
    )
    is_active = models.BooleanField(default=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    config = models.JSONField(default=dict, blank=True)

    # `secret` is the one secret: the other fields say which service, where and as whom (config
    # holds options such as a host or a region), are backed up in clear, and decide where a
    # kept secret may be sent. So none of them may hold a secret (`clean`).
    secret_fields = ("secret",)
    secret_destination_fields = ("provider", "endpoint_url", "username", "config")

    class Meta:
        constraints = [natural_key("integrationcredential", "provider", "name")]

    def __str__(self) -> str:
        return f"{self.get_provider_display()}: {self.name}"

    def clean(self) -> None:
        super().clean()
        errors = {}
        url = urlsplit(self.endpoint_url or "")
        if url.password is not None or any(
            _SECRET_NAME.search(name) for name, _ in parse_qsl(url.query)
        ):
            errors["endpoint_url"] = (
                "The URL carries a password or a key: put it in the secret, which is never "
                "shown or backed up in clear, and leave the URL without it."
            )
        named = sorted({key for key in _keys(self.config) if _SECRET_NAME.search(key)})
        if named:
            errors["config"] = (
                f"{', '.join(named)}: a key or password belongs in the secret, which is never "
                "shown or backed up in clear, not in the configuration."
            )
        if errors:
            raise ValidationError(errors)


# A URL query parameter or a configuration key that names a secret.
_SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)|secret|token|(api|access|private)[_-]?key|credential|signature",
    re.IGNORECASE,
)


def _keys(value: Any) -> Iterator[str]:
    """Every object key in a JSON value, nested ones included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


class AuditLog(TenantScopedModel):
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Kept beside the FK so the trail still names the person after the user is gone.
    actor_email = models.EmailField(blank=True)
    action = models.CharField(max_length=60)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Set by the import that brought the entry from a backup, never by the file: an entry this
    # server did not write must never pass for one it did. Null: written here.
    imported_at = models.DateTimeField(null=True, blank=True)
    imported_by = models.EmailField(blank=True, default="")
    import_id = models.UUIDField(null=True, blank=True)

    import_stamp = ImportStamp(at="imported_at", by="imported_by", import_id="import_id")

    class Meta:
        constraints = [natural_key("auditlog", "created_at", "action")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        imported = " (imported)" if self.imported_at else ""
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action}{imported}"
