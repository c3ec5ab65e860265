"""`manage.py seed_demo` against the real database (SQLite or PostgreSQL), at small sizes."""

import re
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import models

from tenants.demo import DemoSizes, tenant_scoped_models
from tenants.models import (
    Attachment,
    AuditLog,
    IntegrationCredential,
    Membership,
    MeterReading,
    Part,
    Profile,
    Tenant,
    TenantScopedModel,
    TenantSettings,
    Vehicle,
    WorkOrder,
)

pytestmark = pytest.mark.django_db

SMALL = {"vehicles": 6, "readings": 300, "components": 15, "logs": 40, "work_orders": 12}
TINY = dict.fromkeys(SMALL, 1)
SLUGS = ("demo", "acme-quarries")


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    # The seed hashes once per run; the default PBKDF2 would still dominate these tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed(sizes: dict[str, int] = SMALL, *extra: str) -> str:
    args = []
    for name, value in sizes.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    out = StringIO()
    call_command("seed_demo", *args, *extra, stdout=out)
    return out.getvalue()


def all_tenant_scoped_models() -> list[type[TenantScopedModel]]:
    return [
        m for m in apps.get_models() if issubclass(m, TenantScopedModel) and not m._meta.abstract
    ]


def counts() -> dict[tuple[str, str], int]:
    return {
        (model._meta.label, slug): model.objects.filter(tenant__slug=slug).count()
        for model in all_tenant_scoped_models()
        for slug in SLUGS
    }


def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Full rows of a few tables (big, small, with JSON, with secrets) and of the users."""
    tables = [Vehicle, MeterReading, WorkOrder, TenantSettings, IntegrationCredential, AuditLog]
    rows = {m._meta.label: list(m.objects.order_by("pk").values()) for m in tables}
    rows["tenants"] = list(Tenant.objects.order_by("pk").values())
    rows["users"] = list(get_user_model().objects.order_by("pk").values())
    return rows


@pytest.mark.parametrize("sizes", [SMALL, TINY], ids=["small", "tiny"])
def test_every_tenant_scoped_table_has_rows_for_both_tenants(sizes: dict[str, int]) -> None:
    seed(sizes)

    assert set(tenant_scoped_models()) == set(all_tenant_scoped_models())
    empty = [key for key, n in counts().items() if n == 0]
    assert empty == []


def test_sizes_follow_the_flags_and_the_second_tenant_is_a_fraction() -> None:
    seed({**SMALL, "vehicles": 20, "readings": 1000}, "--second-tenant-ratio", "0.5")

    demo, acme = Tenant.objects.get(slug="demo"), Tenant.objects.get(slug="acme-quarries")
    assert (demo.name, acme.name) == ("Demo Mining Co", "Acme Quarries")
    assert Vehicle.objects.filter(tenant=demo).count() == 20
    assert MeterReading.objects.filter(tenant=demo).count() == 1000
    assert WorkOrder.objects.filter(tenant=demo).count() == 12
    assert Vehicle.objects.filter(tenant=acme).count() == 10
    assert MeterReading.objects.filter(tenant=acme).count() == 500
    # Derived tables follow their documented sizes exactly: no row was silently dropped.
    sizes = DemoSizes(vehicles=20, readings=1000, components=15, logs=40, work_orders=12)
    assert Part.objects.filter(tenant=demo).count() == sizes.parts
    assert AuditLog.objects.filter(tenant=demo).count() == sizes.audit_logs


def test_tenant_slug_and_name_can_be_chosen() -> None:
    seed(TINY, "--tenant", "showcase", "--name", "Showcase Ltd")

    assert Tenant.objects.get(slug="showcase").name == "Showcase Ltd"
    assert Vehicle.objects.filter(tenant__slug="showcase").exists()
    assert not Tenant.objects.filter(slug="demo").exists()


def test_rerun_creates_and_changes_nothing() -> None:
    seed()
    before_counts, before_rows = counts(), snapshot()

    output = seed()

    assert counts() == before_counts
    assert snapshot() == before_rows
    assert not re.search(r"\+\d", output)


def test_rerun_with_bigger_sizes_adds_only_what_is_missing() -> None:
    seed()
    old_vehicles = list(Vehicle.objects.order_by("pk").values())
    old_readings = list(MeterReading.objects.order_by("pk").values())

    bigger = {**SMALL, "vehicles": 9, "readings": 600, "work_orders": 20}
    seed(bigger)

    demo = Tenant.objects.get(slug="demo")
    assert Vehicle.objects.filter(tenant=demo).count() == 9
    assert WorkOrder.objects.filter(tenant=demo).count() == 20
    # Readings per vehicle grew too; the first ones are kept as they were.
    assert MeterReading.objects.filter(tenant=demo).count() >= 600
    pks = [row["id"] for row in old_vehicles]
    assert list(Vehicle.objects.filter(pk__in=pks).order_by("pk").values()) == old_vehicles
    pks = [row["id"] for row in old_readings]
    assert list(MeterReading.objects.filter(pk__in=pks).order_by("pk").values()) == old_readings

    after = counts()
    seed(bigger)
    assert counts() == after


@pytest.mark.parametrize("sizes", [SMALL, TINY], ids=["small", "tiny"])
def test_some_rows_are_soft_deleted(sizes: dict[str, int]) -> None:
    seed(sizes)

    for model in (Profile, Vehicle, WorkOrder, Part):
        for slug in SLUGS:
            rows = model.objects.filter(tenant__slug=slug)
            assert rows.filter(deleted_at__isnull=False).exists(), (model, slug)
            assert rows.filter(deleted_at__isnull=True).exists(), (model, slug)


def test_foreign_keys_resolve_and_never_cross_tenants() -> None:
    seed()

    checked = 0
    for model in all_tenant_scoped_models():
        for field in model._meta.concrete_fields:
            if not field.is_relation:
                continue
            target = field.related_model
            rows = model.objects.filter(**{f"{field.attname}__isnull": False})
            dangling = rows.exclude(**{f"{field.attname}__in": target.objects.values("pk")})
            assert dangling.count() == 0, f"{model.__name__}.{field.name}"
            if issubclass(target, TenantScopedModel):
                across = rows.exclude(**{f"{field.name}__tenant": models.F("tenant")})
                assert across.count() == 0, f"{model.__name__}.{field.name}"
                checked += 1
    # Sites, profiles, vehicles, components and work orders are all referenced somewhere.
    assert checked >= 20


def test_values_are_realistic() -> None:
    seed()

    for model in all_tenant_scoped_models():
        for field in model._meta.concrete_fields:
            if field.choices:
                used = set(model.objects.values_list(field.attname, flat=True).distinct())
                assert used <= {value for value, _ in field.choices}, (model, field.name)
            if isinstance(field, models.DateTimeField):
                values = [v for v in model.objects.values_list(field.attname, flat=True) if v]
                assert all(v.utcoffset() is not None for v in values), (model, field.name)
    stamps = list(MeterReading.objects.values_list("read_at", flat=True))
    assert any(s.microsecond for s in stamps)
    assert all(s.utcoffset() == timedelta(0) for s in stamps)
    assert len(set(MeterReading.objects.values_list("meter_type", flat=True))) >= 2
    assert all(isinstance(v.attributes, dict) and v.attributes for v in Vehicle.objects.all())
    assert all(c.secret for c in IntegrationCredential.objects.all())
    assert all(
        re.fullmatch(r"attachments/\d{4}/\d{2}/[\w-]+\.\w+", a.file.name)
        for a in Attachment.objects.all()
    )


def test_users_and_memberships() -> None:
    output = seed(TINY, "--admin-password", "s3cret-demo")

    users = get_user_model().objects
    admin = users.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.email == "admin@example.com"
    assert admin.check_password("s3cret-demo")
    assert "`admin` / `s3cret-demo`" in output
    for slug in SLUGS:
        roles = dict(
            Membership.objects.filter(tenant__slug=slug).values_list("user__email", "role")
        )
        assert roles == {f"{role}@{slug}.example": role for role in ("owner", "admin", "member")}
        assert users.get(email=f"admin@{slug}.example").is_staff
        assert not users.get(email=f"member@{slug}.example").is_staff
        assert users.get(email=f"owner@{slug}.example").check_password("s3cret-demo")
