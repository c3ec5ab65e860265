import datetime as dt

import factory

from tenants.models import (
    Component,
    ComponentEvent,
    MeterReading,
    Profile,
    ProfileComponent,
    ProfileEvent,
    Vehicle,
)

from .masterdata import (
    ComponentCatalogFactory,
    EquipmentModelFactory,
    MachineFamilyFactory,
    MachinePositionFactory,
    WorkActivityFactory,
)
from .organisation import SiteFactory, TenantScopedFactory, sequential_datetime

SAME_TENANT = factory.SelfAttribute("..tenant")


class ProfileFactory(TenantScopedFactory):
    class Meta:
        model = Profile

    name = factory.Sequence(lambda n: f"Haul truck PM profile {n}")
    equipment_model = factory.SubFactory(EquipmentModelFactory)
    description = factory.Faker("sentence")
    operating_hours_per_day = factory.Faker("pydecimal", min_value=8, max_value=22, right_digits=2)


class ProfileComponentFactory(TenantScopedFactory):
    class Meta:
        model = ProfileComponent

    profile = factory.SubFactory(ProfileFactory, tenant=SAME_TENANT)
    component = factory.SubFactory(ComponentCatalogFactory)
    position = factory.SubFactory(MachinePositionFactory)
    quantity = 1
    replacement_interval_hours = factory.LazyAttribute(lambda o: o.component.expected_life_hours)


class ProfileEventFactory(TenantScopedFactory):
    class Meta:
        model = ProfileEvent

    profile = factory.SubFactory(ProfileFactory, tenant=SAME_TENANT)
    activity = factory.SubFactory(WorkActivityFactory)
    name = factory.Sequence(lambda n: f"Service event {n}")
    interval_hours = factory.Faker("random_element", elements=[250, 500, 1000, 2000])
    estimated_cost = factory.Faker("pydecimal", min_value=500, max_value=25000, right_digits=2)


class VehicleFactory(TenantScopedFactory):
    class Meta:
        model = Vehicle

    equipment_model = factory.SubFactory(EquipmentModelFactory)
    site = factory.SubFactory(SiteFactory, tenant=SAME_TENANT)
    # The profile is for the vehicle's own model, as it would be in a real fleet.
    profile = factory.SubFactory(
        ProfileFactory,
        tenant=SAME_TENANT,
        equipment_model=factory.SelfAttribute("..equipment_model"),
    )
    machine_family = factory.SubFactory(MachineFamilyFactory)
    serial_number = factory.Sequence(lambda n: f"SSP{n:06d}")
    fleet_number = factory.Sequence(lambda n: f"HT{n:03d}")
    commissioned_on = factory.Faker("date_between", start_date="-8y", end_date="-30d")
    purchase_price = factory.Faker(
        "pydecimal", min_value=250_000, max_value=6_000_000, right_digits=2
    )
    engine_hours = factory.Faker("pydecimal", min_value=0, max_value=60_000, right_digits=1)
    odometer_km = factory.Faker("pydecimal", min_value=0, max_value=400_000, right_digits=1)
    attributes = factory.Dict({"payload_t": 227, "telematics_id": factory.Faker("uuid4")})


class ComponentFactory(TenantScopedFactory):
    class Meta:
        model = Component

    vehicle = factory.SubFactory(VehicleFactory, tenant=SAME_TENANT)
    catalog_item = factory.SubFactory(ComponentCatalogFactory)
    position = factory.SubFactory(MachinePositionFactory)
    serial_number = factory.Sequence(lambda n: f"CS{n:07d}")
    installed_at = factory.Faker("date_time_between", start_date="-3y", tzinfo=dt.UTC)
    hours_at_install = factory.Faker("pydecimal", min_value=0, max_value=40_000, right_digits=1)
    cost = factory.Faker("pydecimal", min_value=1_000, max_value=900_000, right_digits=2)


class ComponentEventFactory(TenantScopedFactory):
    class Meta:
        model = ComponentEvent

    component = factory.SubFactory(ComponentFactory, tenant=SAME_TENANT)
    event_type = ComponentEvent.EventType.INSPECTION
    occurred_at = sequential_datetime(dt.timedelta(hours=6))
    hours = factory.Faker("pydecimal", min_value=0, max_value=40_000, right_digits=1)
    notes = factory.Faker("sentence")


class MeterReadingFactory(TenantScopedFactory):
    class Meta:
        model = MeterReading

    vehicle = factory.SubFactory(VehicleFactory, tenant=SAME_TENANT)
    meter_type = MeterReading.MeterType.ENGINE_HOURS
    read_at = sequential_datetime(dt.timedelta(hours=1))
    value = factory.Faker("pydecimal", min_value=0, max_value=60_000, right_digits=2)
