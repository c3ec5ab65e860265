from .base import ImportStamp, SoftDeleteModel, TenantScopedModel
from .finance import FinancialRecord, FuelTransaction, TCOScenario
from .fleet import (
    Component,
    ComponentEvent,
    MeterReading,
    Profile,
    ProfileComponent,
    ProfileEvent,
    Vehicle,
)
from .maintenance import (
    Attachment,
    DowntimeEvent,
    Forecast,
    MaintenanceLog,
    Notification,
    Part,
    WorkOrder,
)
from .organisation import (
    AuditLog,
    IntegrationCredential,
    Membership,
    Site,
    Tenant,
    TenantSettings,
)

__all__ = [
    "Attachment",
    "AuditLog",
    "Component",
    "ComponentEvent",
    "DowntimeEvent",
    "FinancialRecord",
    "Forecast",
    "FuelTransaction",
    "ImportStamp",
    "IntegrationCredential",
    "MaintenanceLog",
    "Membership",
    "MeterReading",
    "Notification",
    "Part",
    "Profile",
    "ProfileComponent",
    "ProfileEvent",
    "Site",
    "SoftDeleteModel",
    "TCOScenario",
    "Tenant",
    "TenantScopedModel",
    "TenantSettings",
    "Vehicle",
    "WorkOrder",
]
