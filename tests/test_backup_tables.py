import pytest
from django.apps import apps
from django.db import models
from django.test.utils import isolate_apps

from backup.registry import RegistryError, build_registry, registry, table_name
from tenants.models import Tenant, TenantScopedModel, Vehicle


def test_every_model_pointing_at_a_tenant_is_covered():
    covered = {spec.model for spec in registry().tenant_tables}
    pointing = {
        model
        for model in apps.get_models()
        if not getattr(model, "backup_out_of_scope", "")
        and any(f.is_relation and f.related_model is Tenant for f in model._meta.concrete_fields)
    }
    assert covered == pointing
    assert len(covered) == 22
    # The service's own records are out, each with its reason.
    out = {m.__name__ for m in apps.get_models() if getattr(m, "backup_out_of_scope", "")}
    assert out == {"StoredBackup", "Restore", "Drill", "Schedule", "Alert"}


def test_order_puts_every_referenced_table_first():
    order = [spec.name for spec in registry().tenant_tables]
    for spec in registry().tenant_tables:
        for f in spec.fields_of_kind("tenant_fk"):
            assert order.index(f.target) < order.index(spec.name), (spec.name, f.name)
    masters = [spec.name for spec in registry().master_tables]
    assert masters.index("oem") < masters.index("equipment_model")


def test_field_kinds_and_secrets_are_derived_from_the_models():
    vehicle = registry().table("vehicle")
    kinds = {f.name: f.kind for f in vehicle.fields}
    assert kinds["site"] == "tenant_fk"
    assert kinds["equipment_model"] == "master_fk"
    assert vehicle.soft_delete == "deleted_at"
    assert vehicle.natural_key == ("serial_number",)
    membership = registry().table("membership")
    assert {f.name: f.kind for f in membership.fields}["user"] == "user_fk"
    credential = registry().table("integration_credential")
    assert "secret" not in credential.field_map
    assert credential.file_fields()[-1] == "has_secret"
    assert table_name(registry().table("tco_scenario").model) == "tco_scenario"


@isolate_apps("tenants")
def test_a_tenant_model_outside_the_base_class_is_refused():
    class Stray(models.Model):
        tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)

        class Meta:
            app_label = "tenants"

    with pytest.raises(RegistryError, match=r"Stray refers to tenant data \(Tenant\) but is not"):
        build_registry([*apps.get_models(), Stray])


@isolate_apps("tenants")
def test_a_model_related_to_tenant_data_without_being_tenant_data_is_refused():
    """Such a model would be left out of every backup without a word."""

    class Note(models.Model):
        vehicle = models.ForeignKey(Vehicle, on_delete=models.CASCADE, related_name="+")

        class Meta:
            app_label = "tenants"

    with pytest.raises(RegistryError, match=r"Note refers to tenant data \(Vehicle\)"):
        build_registry([*apps.get_models(), Note])

    class Declared(models.Model):
        backup_out_of_scope = "a cache of the vehicle's last position, rebuilt from telematics"
        vehicle = models.ForeignKey(Vehicle, on_delete=models.CASCADE, related_name="+")

        class Meta:
            app_label = "tenants"

    names = {spec.name for spec in build_registry([*apps.get_models(), Declared]).tenant_tables}
    assert "declared" not in names and "vehicle" in names


@isolate_apps("tenants")
def test_a_foreign_key_of_unknown_kind_is_refused():
    class Elsewhere(models.Model):
        class Meta:
            app_label = "tenants"

    class Odd(TenantScopedModel):
        # Declared again so that it resolves outside the isolated app registry.
        tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
        other = models.ForeignKey(Elsewhere, on_delete=models.CASCADE)

        class Meta:
            app_label = "tenants"
            constraints = [models.UniqueConstraint(fields=["tenant"], name="odd_natural_key")]

    with pytest.raises(RegistryError, match=r"Odd\.other: foreign key to Elsewhere"):
        build_registry([*apps.get_models(), Odd])
