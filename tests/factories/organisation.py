import datetime as dt

import factory
from django.utils.text import slugify

from tenants.models import (
    AuditLog,
    IntegrationCredential,
    Membership,
    Site,
    Tenant,
    TenantSettings,
)

from .auth import UserFactory

# Natural keys that contain a timestamp advance by a sequence from here, so rows never collide.
EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def sequential_datetime(step: dt.timedelta) -> factory.Sequence:
    """A timestamp that is unique per factory call (for natural keys made of timestamps)."""
    return factory.Sequence(lambda n: EPOCH + n * step)


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Faker("company")
    slug = factory.LazyAttributeSequence(lambda o, n: f"{slugify(o.name)[:60]}-{n}")


class TenantScopedFactory(factory.django.DjangoModelFactory):
    """Tenant-scoped factories pass `tenant=factory.SelfAttribute("..tenant")` to every
    tenant-scoped SubFactory so a row never points into another tenant."""

    class Meta:
        abstract = True

    tenant = factory.SubFactory(TenantFactory)


class MembershipFactory(TenantScopedFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    role = Membership.Role.MEMBER


class TenantSettingsFactory(TenantScopedFactory):
    class Meta:
        model = TenantSettings

    currency = factory.Faker("random_element", elements=["USD", "AUD", "CAD", "CLP", "ZAR"])
    timezone = factory.Faker("timezone")
    distance_unit = TenantSettings.DistanceUnit.KILOMETRES
    fiscal_year_start_month = factory.Faker("pyint", min_value=1, max_value=12)
    default_utilisation_hours = factory.Faker(
        "pydecimal", min_value=8, max_value=24, right_digits=2
    )
    preferences = factory.Dict({"dashboard": "fleet", "week_starts_on": 1})


class SiteFactory(TenantScopedFactory):
    class Meta:
        model = Site

    class Params:
        city = factory.Faker("city")

    name = factory.LazyAttributeSequence(lambda o, n: f"{o.city} {o.kind} {n}".title())
    code = factory.Sequence(lambda n: f"S{n:03d}")
    kind = Site.Kind.MINE
    address = factory.Faker("address")
    # Faker's `latitude` can carry more decimal places than the column keeps.
    latitude = factory.Faker("pydecimal", min_value=-60, max_value=70, right_digits=6)
    longitude = factory.Faker("pydecimal", min_value=-180, max_value=180, right_digits=6)
    timezone = factory.Faker("timezone")


class IntegrationCredentialFactory(TenantScopedFactory):
    class Meta:
        model = IntegrationCredential

    provider = IntegrationCredential.Provider.TELEMATICS
    name = factory.Sequence(lambda n: f"Telematics feed {n}")
    endpoint_url = factory.Faker("url")
    username = factory.Faker("user_name")
    secret = factory.Faker("password", length=40)
    config = factory.Dict({"poll_interval_seconds": 300})


class AuditLogFactory(TenantScopedFactory):
    class Meta:
        model = AuditLog

    actor = factory.SubFactory(UserFactory)
    actor_email = factory.SelfAttribute("actor.email")
    action = factory.Faker(
        "random_element", elements=["vehicle.created", "workorder.closed", "backup.exported"]
    )
    details = factory.Dict({"ip": factory.Faker("ipv4")})
    created_at = sequential_datetime(dt.timedelta(minutes=1))
