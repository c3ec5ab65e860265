"""Catalogues shared by every tenant. Rows are matched across databases by natural key."""

from typing import Any, ClassVar

from django.db import models


class NaturalKeyManager(models.Manager):
    """`get_by_natural_key` for any model that lists its `natural_key_fields`."""

    def get_by_natural_key(self, *key: Any) -> models.Model:
        return self.get(**self.model.natural_key_lookup(key))


class MasterDataModel(models.Model):
    # Field names of the natural key; a name may follow a foreign key ("oem__name").
    natural_key_fields: ClassVar[tuple[str, ...]] = ()

    objects = NaturalKeyManager()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return " ".join(str(v) for v in self.natural_key())

    def natural_key(self) -> tuple[Any, ...]:
        values: list[Any] = []
        for path in self.natural_key_fields:
            value: Any = self
            for part in path.split("__"):
                value = getattr(value, part)
            values.append(value)
        return tuple(values)

    @classmethod
    def natural_key_lookup(cls, key: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
        return dict(zip(cls.natural_key_fields, key, strict=True))


class OEM(MasterDataModel):
    name = models.CharField(max_length=120, unique=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    website = models.URLField(blank=True)

    natural_key_fields = ("name",)

    class Meta:
        verbose_name = "OEM"
        verbose_name_plural = "OEMs"
        ordering = ["name"]


class EquipmentModel(MasterDataModel):
    class Category(models.TextChoices):
        HAUL_TRUCK = "haul_truck", "Haul truck"
        EXCAVATOR = "excavator", "Excavator"
        WHEEL_LOADER = "wheel_loader", "Wheel loader"
        DOZER = "dozer", "Dozer"
        GRADER = "grader", "Motor grader"
        DRILL = "drill", "Drill rig"
        LIGHT_VEHICLE = "light_vehicle", "Light vehicle"

    oem = models.ForeignKey(OEM, on_delete=models.PROTECT, related_name="equipment_models")
    name = models.CharField(max_length=120)
    category = models.CharField(max_length=20, choices=Category.choices)
    rated_power_kw = models.PositiveIntegerField(null=True, blank=True)
    operating_weight_t = models.DecimalField(max_digits=8, decimal_places=1, null=True, blank=True)

    natural_key_fields = ("oem__name", "name")

    class Meta:
        ordering = ["oem__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["oem", "name"], name="equipmentmodel_natural_key")
        ]


class MachineFamily(MasterDataModel):
    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)

    natural_key_fields = ("name",)

    class Meta:
        verbose_name_plural = "machine families"
        ordering = ["name"]


class ComponentCatalog(MasterDataModel):
    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    family = models.ForeignKey(
        MachineFamily, on_delete=models.PROTECT, null=True, blank=True, related_name="components"
    )
    expected_life_hours = models.PositiveIntegerField(null=True, blank=True)

    natural_key_fields = ("code",)

    class Meta:
        verbose_name = "component catalogue entry"
        verbose_name_plural = "component catalogue"
        ordering = ["code"]


class MachinePosition(MasterDataModel):
    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=120)

    natural_key_fields = ("code",)

    class Meta:
        ordering = ["code"]


class WorkActivity(MasterDataModel):
    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    default_duration_hours = models.DecimalField(
        max_digits=6, decimal_places=2, null=True, blank=True
    )

    natural_key_fields = ("code",)

    class Meta:
        verbose_name_plural = "work activities"
        ordering = ["code"]
