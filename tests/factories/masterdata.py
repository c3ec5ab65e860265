import factory

from masterdata.models import (
    OEM,
    ComponentCatalog,
    EquipmentModel,
    MachineFamily,
    MachinePosition,
    WorkActivity,
)


class OEMFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OEM

    class Params:
        company = factory.Faker("company")

    # The sequence suffix keeps the unique name unique when Faker repeats a company.
    name = factory.LazyAttributeSequence(lambda o, n: f"{o.company} Machinery {n}")
    country = factory.Faker("country_code")
    website = factory.Faker("url")


class EquipmentModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EquipmentModel

    oem = factory.SubFactory(OEMFactory)
    name = factory.Sequence(lambda n: f"HT{n + 100}-{n % 9 + 1}")
    category = EquipmentModel.Category.HAUL_TRUCK
    rated_power_kw = factory.Faker("pyint", min_value=700, max_value=3000)
    operating_weight_t = factory.Faker("pydecimal", min_value=150, max_value=650, right_digits=1)


class MachineFamilyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MachineFamily

    name = factory.Sequence(lambda n: f"Machine family {n}")
    description = factory.Faker("sentence")


class ComponentCatalogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ComponentCatalog

    code = factory.Sequence(lambda n: f"CMP-{n:05d}")
    name = factory.Faker(
        "random_element",
        elements=["Diesel engine", "Transmission", "Final drive", "Torque converter", "Tyre"],
    )
    family = factory.SubFactory(MachineFamilyFactory)
    expected_life_hours = factory.Faker("pyint", min_value=2000, max_value=40000, step=500)


class MachinePositionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MachinePosition

    code = factory.Sequence(lambda n: f"POS-{n:03d}")
    name = factory.Faker("random_element", elements=["Front left", "Front right", "Rear left"])


class WorkActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkActivity

    code = factory.Sequence(lambda n: f"ACT-{n:04d}")
    name = factory.Faker(
        "random_element",
        elements=["250-hour service", "Oil sample", "Tyre rotation", "Brake test"],
    )
    default_duration_hours = factory.Faker("pydecimal", min_value=0, max_value=48, right_digits=2)
