"""Schema, natural keys, factories and the master-data fixture, on whatever database is set."""

import json
from collections import Counter
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.core import serializers
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, models, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models.fields.files import FieldFile

from masterdata.models import ComponentCatalog, EquipmentModel, MasterDataModel
from tenants.models import Tenant, TenantScopedModel, TenantSettings
from tests import factories
from tests.factories import FACTORIES

FIXTURE = Path(settings.BASE_DIR) / "fixtures" / "masterdata.json"

TENANT_SCOPED = sorted(
    (m for m in apps.get_models() if issubclass(m, TenantScopedModel)), key=lambda m: m.__name__
)
MASTER_DATA = sorted(
    (m for m in apps.get_models() if issubclass(m, MasterDataModel)), key=lambda m: m.__name__
)


def model_id(model: type[models.Model]) -> str:
    return model._meta.label


def copy_row(obj: models.Model, **overrides: Any) -> models.Model:
    """An unsaved copy of `obj` with a fresh primary key."""
    copy = type(obj)()
    for field in obj._meta.concrete_fields:
        if field.primary_key:
            continue
        value = getattr(obj, field.attname)
        # Assigning another row's FieldFile would rebind it to the copy.
        setattr(copy, field.attname, value.name if isinstance(value, FieldFile) else value)
    for attname, value in overrides.items():
        setattr(copy, attname, value)
    return copy


def mirror(obj: TenantScopedModel, tenant: Tenant, done: dict[Any, Any]) -> TenantScopedModel:
    """Save a copy of `obj` and of every tenant-scoped row it points to into `tenant`.

    The copy has the same natural key as `obj` in the sense a backup restore needs: equal
    values, and references to rows that themselves have equal natural keys in `tenant`.
    """
    if obj.pk in done:
        return done[obj.pk]
    overrides: dict[str, Any] = {"tenant_id": tenant.pk}
    for field in obj._meta.concrete_fields:
        target = getattr(obj, field.name) if field.many_to_one else None
        if isinstance(target, TenantScopedModel):
            overrides[field.attname] = mirror(target, tenant, done).pk
    copy = copy_row(obj, **overrides)
    copy.save()
    done[obj.pk] = copy
    return copy


def portable_natural_key(obj: TenantScopedModel) -> tuple[Any, ...]:
    """The natural key without the tenant, with referenced tenant rows by their natural key.

    `natural_key()` holds the UUIDs of referenced tenant-scoped rows, which differ between
    tenants even when the rows are equivalent.
    """
    values: list[Any] = []
    for name in type(obj).natural_key_fields():
        field = obj._meta.get_field(name)
        value = getattr(obj, field.name) if field.many_to_one else getattr(obj, field.attname)
        values.append(
            portable_natural_key(value) if isinstance(value, TenantScopedModel) else value
        )
    return tuple(values)


def tenant_scoped_targets(obj: models.Model) -> list[TenantScopedModel]:
    return [
        target
        for field in obj._meta.concrete_fields
        if field.many_to_one and isinstance(target := getattr(obj, field.name), TenantScopedModel)
    ]


# --- Schema -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_migrations_are_applied_and_create_every_table() -> None:
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
    tables = set(connection.introspection.table_names())
    for model in apps.get_models():
        assert model._meta.db_table in tables, model_id(model)


@pytest.mark.django_db
def test_no_missing_migrations() -> None:
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit:
        pytest.fail(f"Models have changes without a migration:\n{out.getvalue()}")


def test_every_tenant_scoped_model_has_a_tenant_natural_key() -> None:
    referencing_tenant = [
        m
        for m in apps.get_models()
        if m is not Tenant
        and m._meta.app_label != "backup"  # the backup service's own records, not tenant data
        and any(f.many_to_one and f.related_model is Tenant for f in m._meta.concrete_fields)
    ]
    assert set(referencing_tenant) == set(TENANT_SCOPED)
    for model in referencing_tenant:
        assert issubclass(model, TenantScopedModel), model_id(model)
        tenant_field = model._meta.get_field("tenant")
        assert tenant_field.many_to_one and tenant_field.related_model is Tenant
        constraint = model.natural_key_constraint()
        assert constraint is not None, model_id(model)
        assert constraint.fields[0] == "tenant", model_id(model)
        assert constraint.condition is None, f"{model_id(model)}: a partial natural key"
        # One settings row per tenant: its natural key is the tenant alone.
        if model is not TenantSettings:
            assert model.natural_key_fields(), f"{model_id(model)} has an empty natural key"


# --- Factories ----------------------------------------------------------------------------


def test_every_model_has_a_factory() -> None:
    wanted = {
        *apps.get_app_config("masterdata").get_models(),
        *apps.get_app_config("tenants").get_models(),
        apps.get_model(settings.AUTH_USER_MODEL),
    }
    assert wanted <= set(FACTORIES)


@pytest.mark.django_db
@pytest.mark.parametrize("model", list(FACTORIES), ids=model_id)
def test_factory_produces_a_valid_row(model: type[models.Model]) -> None:
    obj = FACTORIES[model]()
    obj.full_clean()
    # The primary key's value, not `obj.pk`: DRF's TokenProxy overrides `pk` (as the user's id).
    pk = obj._meta.pk.value_from_object(obj)
    assert model._default_manager.filter(pk=pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("model", TENANT_SCOPED, ids=model_id)
def test_factory_keeps_references_inside_the_tenant(model: type[TenantScopedModel]) -> None:
    tenant = factories.TenantFactory()
    pending = [FACTORIES[model](tenant=tenant)]
    while pending:
        obj = pending.pop()
        assert obj.tenant_id == tenant.pk, f"{model_id(type(obj))} in another tenant"
        pending.extend(tenant_scoped_targets(obj))
    assert Tenant.objects.count() == 1


# --- Natural keys -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("model", TENANT_SCOPED, ids=model_id)
def test_natural_key_is_unique_within_a_tenant(model: type[TenantScopedModel]) -> None:
    original = FACTORIES[model]()
    with pytest.raises(IntegrityError), transaction.atomic():
        copy_row(original).save()


@pytest.mark.django_db
@pytest.mark.parametrize("model", TENANT_SCOPED, ids=model_id)
def test_same_natural_key_is_allowed_in_another_tenant(model: type[TenantScopedModel]) -> None:
    original = FACTORIES[model]()
    other = factories.TenantFactory()
    copy = mirror(original, other, {})
    assert copy.pk != original.pk
    assert portable_natural_key(copy) == portable_natural_key(original)
    assert model.objects.get_by_natural_key(*copy.natural_key()) == copy
    assert model.objects.get_by_natural_key(*original.natural_key()) == original


@pytest.mark.django_db
@pytest.mark.parametrize("model", [*MASTER_DATA, *TENANT_SCOPED], ids=model_id)
def test_get_by_natural_key_round_trips(model: type[models.Model]) -> None:
    obj = FACTORIES[model]()
    assert model._default_manager.get_by_natural_key(*obj.natural_key()) == obj


@pytest.mark.django_db
@pytest.mark.parametrize("model", MASTER_DATA, ids=model_id)
def test_master_data_serializes_by_natural_key(model: type[MasterDataModel]) -> None:
    obj = FACTORIES[model]()
    data = serializers.serialize(
        "json", [obj], use_natural_foreign_keys=True, use_natural_primary_keys=True
    )
    assert '"pk"' not in data
    (restored,) = serializers.deserialize("json", data)
    # The deserializer found the existing row by natural key instead of planning an insert.
    assert restored.object.pk == obj.pk


# --- The master-data fixture --------------------------------------------------------------


def fixture_entries() -> list[dict[str, Any]]:
    return json.loads(FIXTURE.read_text())


def test_fixture_uses_natural_keys_only() -> None:
    entries = fixture_entries()
    assert entries
    for entry in entries:
        assert "pk" not in entry, entry
        model = apps.get_model(entry["model"])
        for field in model._meta.concrete_fields:
            value = entry["fields"].get(field.name)
            if field.many_to_one and value is not None:
                assert isinstance(value, list), (entry, field.name)


@pytest.mark.django_db
def test_fixture_loads_twice_without_duplicates() -> None:
    expected = Counter(entry["model"] for entry in fixture_entries())
    for _ in range(2):
        call_command("loaddata", FIXTURE, verbosity=0)
        loaded = {label: apps.get_model(label).objects.count() for label in expected}
        assert loaded == dict(expected)

    truck = EquipmentModel.objects.get_by_natural_key("Caterpillar", "793F")
    assert truck.category == EquipmentModel.Category.HAUL_TRUCK
    assert truck.oem.country == "US"
    engine = ComponentCatalog.objects.get_by_natural_key("ENG-3516E")
    assert engine.family is not None
    assert engine.expected_life_hours


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("endpoint_url", {"endpoint_url": "https://fleet:hunter2@telematics.example/api"}),
        ("endpoint_url", {"endpoint_url": "https://telematics.example/api?api_key=abc123"}),
        ("config", {"config": {"region": "eu", "auth": {"client_secret": "abc123"}}}),
        ("config", {"config": {"hosts": [{"name": "a", "password": "abc123"}]}}),
    ],
)
def test_a_credential_keeps_its_secret_in_secret_only(field: str, changes: dict) -> None:
    """The fields beside `secret` are backed up in clear: none may hold a key or password."""
    credential = factories.IntegrationCredentialFactory(**changes)
    with pytest.raises(ValidationError) as refused:
        credential.full_clean()
    assert set(refused.value.message_dict) == {field}
    assert "belongs in the secret" in str(refused.value) or "put it in the secret" in str(
        refused.value
    )


@pytest.mark.django_db
def test_a_credential_may_name_its_options_freely() -> None:
    credential = factories.IntegrationCredentialFactory(
        endpoint_url="https://user@telematics.example/api?region=eu&bypass_cache=1",
        config={"region": "eu", "bypass_proxy": True, "key_rotation_days": 30},
    )
    credential.full_clean()
