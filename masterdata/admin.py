"""Admin for the shared catalogues; every admin has `search_fields` so tenant admins can use
autocomplete widgets for their master-data foreign keys."""

from django.contrib import admin

from .models import (
    OEM,
    ComponentCatalog,
    EquipmentModel,
    MachineFamily,
    MachinePosition,
    WorkActivity,
)


@admin.register(OEM)
class OEMAdmin(admin.ModelAdmin):
    list_display = ("name", "country", "website")
    list_filter = ("country",)
    search_fields = ("name",)


@admin.register(EquipmentModel)
class EquipmentModelAdmin(admin.ModelAdmin):
    list_display = ("name", "oem", "category", "rated_power_kw", "operating_weight_t")
    list_filter = ("category", "oem")
    list_select_related = ("oem",)
    search_fields = ("name", "oem__name")


@admin.register(MachineFamily)
class MachineFamilyAdmin(admin.ModelAdmin):
    list_display = ("name", "description")
    search_fields = ("name",)


@admin.register(ComponentCatalog)
class ComponentCatalogAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "family", "expected_life_hours")
    list_filter = ("family",)
    list_select_related = ("family",)
    search_fields = ("code", "name")
    autocomplete_fields = ("family",)


@admin.register(MachinePosition)
class MachinePositionAdmin(admin.ModelAdmin):
    list_display = ("code", "name")
    search_fields = ("code", "name")


@admin.register(WorkActivity)
class WorkActivityAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "default_duration_hours")
    search_fields = ("code", "name")
