"""factory-boy factories for every model of `masterdata` and `tenants`, and for users.

Tenant-scoped factories keep every tenant-scoped foreign key inside the row's own tenant.
"""

import factory
from django.db import models

from .auth import GroupFactory, TokenFactory, UserFactory
from .finance import FinancialRecordFactory, FuelTransactionFactory, TCOScenarioFactory
from .fleet import (
    ComponentEventFactory,
    ComponentFactory,
    MeterReadingFactory,
    ProfileComponentFactory,
    ProfileEventFactory,
    ProfileFactory,
    VehicleFactory,
)
from .maintenance import (
    AttachmentFactory,
    DowntimeEventFactory,
    ForecastFactory,
    MaintenanceLogFactory,
    NotificationFactory,
    PartFactory,
    WorkOrderFactory,
)
from .masterdata import (
    ComponentCatalogFactory,
    EquipmentModelFactory,
    MachineFamilyFactory,
    MachinePositionFactory,
    OEMFactory,
    WorkActivityFactory,
)
from .organisation import (
    AuditLogFactory,
    IntegrationCredentialFactory,
    MembershipFactory,
    SiteFactory,
    TenantFactory,
    TenantScopedFactory,
    TenantSettingsFactory,
)

__all__ = [
    "FACTORIES",
    "AttachmentFactory",
    "AuditLogFactory",
    "ComponentCatalogFactory",
    "ComponentEventFactory",
    "ComponentFactory",
    "DowntimeEventFactory",
    "EquipmentModelFactory",
    "FinancialRecordFactory",
    "ForecastFactory",
    "FuelTransactionFactory",
    "GroupFactory",
    "IntegrationCredentialFactory",
    "MachineFamilyFactory",
    "MachinePositionFactory",
    "MaintenanceLogFactory",
    "MembershipFactory",
    "MeterReadingFactory",
    "NotificationFactory",
    "OEMFactory",
    "PartFactory",
    "ProfileComponentFactory",
    "ProfileEventFactory",
    "ProfileFactory",
    "SiteFactory",
    "TCOScenarioFactory",
    "TenantFactory",
    "TenantScopedFactory",
    "TenantSettingsFactory",
    "TokenFactory",
    "UserFactory",
    "VehicleFactory",
    "WorkActivityFactory",
    "WorkOrderFactory",
]

# Every concrete factory above, by the model it builds (tests parametrize over it).
FACTORIES: dict[type[models.Model], type[factory.django.DjangoModelFactory]] = {
    f._meta.get_model_class(): f
    for f in list(globals().values())
    if isinstance(f, type)
    and issubclass(f, factory.django.DjangoModelFactory)
    and not f._meta.abstract
}
