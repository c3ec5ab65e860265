import datetime as dt
import hashlib

import factory

from tenants.models import (
    Attachment,
    DowntimeEvent,
    Forecast,
    MaintenanceLog,
    Notification,
    Part,
    WorkOrder,
)

from .fleet import SAME_TENANT, VehicleFactory
from .masterdata import ComponentCatalogFactory, WorkActivityFactory
from .organisation import EPOCH, SiteFactory, TenantScopedFactory, sequential_datetime

PDF_BYTES = b"%PDF-1.4\n% inspection report\n%%EOF\n"


class WorkOrderFactory(TenantScopedFactory):
    class Meta:
        model = WorkOrder

    number = factory.Sequence(lambda n: f"WO-{n:06d}")
    vehicle = factory.SubFactory(VehicleFactory, tenant=SAME_TENANT)
    site = factory.SelfAttribute("vehicle.site")
    priority = WorkOrder.Priority.NORMAL
    opened_at = factory.Faker("date_time_between", start_date="-1y", tzinfo=dt.UTC)
    description = factory.Faker("sentence")
    estimated_cost = factory.Faker("pydecimal", min_value=500, max_value=80_000, right_digits=2)


class MaintenanceLogFactory(TenantScopedFactory):
    class Meta:
        model = MaintenanceLog

    vehicle = factory.SubFactory(VehicleFactory, tenant=SAME_TENANT)
    work_order = factory.SubFactory(
        WorkOrderFactory, tenant=SAME_TENANT, vehicle=factory.SelfAttribute("..vehicle")
    )
    activity = factory.SubFactory(WorkActivityFactory)
    performed_at = sequential_datetime(dt.timedelta(hours=12))
    engine_hours = factory.Faker("pydecimal", min_value=0, max_value=60_000, right_digits=1)
    technician = factory.Faker("name")
    labour_hours = factory.Faker("pydecimal", min_value=0, max_value=48, right_digits=2)
    cost = factory.Faker("pydecimal", min_value=100, max_value=50_000, right_digits=2)
    notes = factory.Faker("sentence")


class ForecastFactory(TenantScopedFactory):
    class Meta:
        model = Forecast

    vehicle = factory.SubFactory(VehicleFactory, tenant=SAME_TENANT)
    activity = factory.SubFactory(WorkActivityFactory)
    due_on = factory.Sequence(lambda n: EPOCH.date() + dt.timedelta(days=n))
    due_hours = factory.Faker("pydecimal", min_value=0, max_value=60_000, right_digits=1)
    estimated_cost = factory.Faker("pydecimal", min_value=500, max_value=25_000, right_digits=2)
    confidence = factory.Faker("pydecimal", min_value=0, max_value=1, right_digits=3)


class PartFactory(TenantScopedFactory):
    class Meta:
        model = Part

    part_number = factory.Sequence(lambda n: f"{n % 9 + 1}R-{n:05d}")
    name = factory.Faker(
        "random_element", elements=["Engine oil filter", "Fuel filter", "Air filter element"]
    )
    catalog_item = factory.SubFactory(ComponentCatalogFactory)
    site = factory.SubFactory(SiteFactory, tenant=SAME_TENANT)
    quantity_on_hand = factory.Faker("pyint", min_value=0, max_value=200)
    reorder_level = factory.Faker("pyint", min_value=0, max_value=20)
    unit_cost = factory.Faker("pydecimal", min_value=5, max_value=5_000, right_digits=2)


class DowntimeEventFactory(TenantScopedFactory):
    class Meta:
        model = DowntimeEvent

    vehicle = factory.SubFactory(VehicleFactory, tenant=SAME_TENANT)
    work_order = factory.SubFactory(
        WorkOrderFactory, tenant=SAME_TENANT, vehicle=factory.SelfAttribute("..vehicle")
    )
    reason = DowntimeEvent.Reason.BREAKDOWN
    started_at = sequential_datetime(dt.timedelta(hours=8))
    ended_at = factory.LazyAttribute(lambda o: o.started_at + dt.timedelta(hours=5))
    notes = factory.Faker("sentence")


class AttachmentFactory(TenantScopedFactory):
    class Meta:
        model = Attachment

    work_order = factory.SubFactory(WorkOrderFactory, tenant=SAME_TENANT)
    vehicle = factory.SelfAttribute("work_order.vehicle")
    filename = factory.Sequence(lambda n: f"inspection-{n:05d}.pdf")
    # The natural key is the stored file name, which the storage keeps unique.
    file = factory.django.FileField(filename=factory.SelfAttribute("..filename"), data=PDF_BYTES)
    content_type = "application/pdf"
    size_bytes = len(PDF_BYTES)
    sha256 = hashlib.sha256(PDF_BYTES).hexdigest()


class NotificationFactory(TenantScopedFactory):
    class Meta:
        model = Notification

    vehicle = factory.SubFactory(VehicleFactory, tenant=SAME_TENANT)
    level = Notification.Level.WARNING
    title = factory.LazyAttribute(lambda o: f"PM500 due on {o.vehicle}")
    body = factory.Faker("paragraph")
    created_at = sequential_datetime(dt.timedelta(minutes=5))
