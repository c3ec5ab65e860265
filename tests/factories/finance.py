import datetime as dt

import factory

from tenants.models import FinancialRecord, FuelTransaction, TCOScenario

from .fleet import SAME_TENANT, VehicleFactory
from .maintenance import WorkOrderFactory
from .masterdata import EquipmentModelFactory
from .organisation import TenantScopedFactory


class FinancialRecordFactory(TenantScopedFactory):
    class Meta:
        model = FinancialRecord

    reference = factory.Sequence(lambda n: f"INV-{n:06d}")
    vehicle = factory.SubFactory(VehicleFactory, tenant=SAME_TENANT)
    work_order = factory.SubFactory(
        WorkOrderFactory, tenant=SAME_TENANT, vehicle=factory.SelfAttribute("..vehicle")
    )
    category = FinancialRecord.Category.PARTS
    amount = factory.Faker("pydecimal", min_value=50, max_value=250_000, right_digits=2)
    booked_on = factory.Faker("date_between", start_date="-2y", end_date="today")
    description = factory.Faker("sentence")


class FuelTransactionFactory(TenantScopedFactory):
    class Meta:
        model = FuelTransaction

    receipt_number = factory.Sequence(lambda n: f"FT-{n:07d}")
    vehicle = factory.SubFactory(VehicleFactory, tenant=SAME_TENANT)
    site = factory.SelfAttribute("vehicle.site")
    transacted_at = factory.Faker("date_time_between", start_date="-1y", tzinfo=dt.UTC)
    litres = factory.Faker("pydecimal", min_value=200, max_value=4_500, right_digits=2)
    unit_price = factory.Faker("pydecimal", min_value=1, max_value=2, right_digits=4)
    engine_hours = factory.Faker("pydecimal", min_value=0, max_value=60_000, right_digits=1)


class TCOScenarioFactory(TenantScopedFactory):
    class Meta:
        model = TCOScenario

    name = factory.Sequence(lambda n: f"Replace or rebuild, option {n}")
    equipment_model = factory.SubFactory(EquipmentModelFactory)
    horizon_years = factory.Faker("pyint", min_value=3, max_value=10)
    annual_hours = factory.Faker("pyint", min_value=4_000, max_value=7_000, step=100)
    fuel_price = factory.Faker("pydecimal", min_value=1, max_value=2, right_digits=4)
    discount_rate = factory.Faker("pydecimal", min_value=0, max_value=0.15, right_digits=4)
    assumptions = factory.Dict({"rebuild_cost": 450_000, "residual_value_pct": 15})
