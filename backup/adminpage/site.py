"""The admin site with the Backup page: its URLs, its entry on the index and in the sidebar, and
the open alerts about every tenant's automatic backups on the index (superusers only)."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path, reverse

from backup.access import managed_tenants
from backup.stored.alerts import open_alerts

ALERTS_SHOWN = 50


class BackupAdminSite(admin.AdminSite):
    index_template = "admin/backup/index.html"

    def get_urls(self) -> list[URLPattern | URLResolver]:
        from . import views

        wrap = self.admin_view
        ours = [
            path("backup/", wrap(views.choose_tenant), name="backup"),
            path("backup/<slug:slug>/", wrap(views.tenant_page), name="backup_tenant"),
            path("backup/<slug:slug>/export/", wrap(views.export), name="backup_export"),
            path("backup/<slug:slug>/import/", wrap(views.upload), name="backup_import"),
            path(
                "backup/<slug:slug>/import/confirm/",
                wrap(views.confirm),
                name="backup_import_confirm",
            ),
            path(
                "backup/<slug:slug>/import/cancel/", wrap(views.cancel), name="backup_import_cancel"
            ),
            path(
                "backup/<slug:slug>/import/<str:pending_id>/",
                wrap(views.preview),
                name="backup_import_preview",
            ),
            # Stored backups and their restores; an id that is not one (or another tenant's) is
            # the services' "not found", so the patterns take any string.
            path(
                "backup/<slug:slug>/stored/", wrap(views.create_backup), name="backup_stored_create"
            ),
            path(
                "backup/<slug:slug>/stored/<str:backup_id>/download/",
                wrap(views.download_backup),
                name="backup_stored_download",
            ),
            path(
                "backup/<slug:slug>/stored/<str:backup_id>/delete/",
                wrap(views.delete_backup),
                name="backup_stored_delete",
            ),
            path(
                "backup/<slug:slug>/stored/<str:backup_id>/restore/",
                wrap(views.restore_backup),
                name="backup_stored_restore",
            ),
            path(
                "backup/<slug:slug>/stored/<str:backup_id>/keep/",
                wrap(views.keep_backup),
                name="backup_stored_keep",
            ),
            path("backup/<slug:slug>/schedule/", wrap(views.edit_schedule), name="backup_schedule"),
            path(
                "backup/<slug:slug>/restores/<str:restore_id>/",
                wrap(views.restore_status),
                name="backup_restore",
            ),
            path(
                "backup/<slug:slug>/restores/<str:restore_id>/confirm/",
                wrap(views.confirm_restore),
                name="backup_restore_confirm",
            ),
            path(
                "backup/<slug:slug>/restores/<str:restore_id>/cancel/",
                wrap(views.cancel_restore),
                name="backup_restore_cancel",
            ),
        ]
        # Before the admin's own patterns: its catch-all would answer /admin/backup/ with a 404.
        return ours + super().get_urls()

    def index(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        user = request.user
        if user.is_active and user.is_superuser:
            # Every tenant's alerts, for those who see every tenant; the others see their own
            # tenants' on each tenant's backup page.
            found = list(open_alerts()[: ALERTS_SHOWN + 1])
            extra_context = {
                "backup_alerts": found[:ALERTS_SHOWN],
                "more_backup_alerts": len(found) > ALERTS_SHOWN,
                "backup_alerts_shown": ALERTS_SHOWN,
                **(extra_context or {}),
            }
        return super().index(request, extra_context)

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        app_list = super().get_app_list(request, app_label)
        if app_label is None and may_back_up(request):
            app_list.append(self._backup_entry())
            app_list.sort(key=lambda app: app["name"].lower())
        return app_list

    def _backup_entry(self) -> dict[str, Any]:
        url = reverse("admin:backup", current_app=self.name)
        return {
            "name": "Backup",
            "app_label": "backup",
            "app_url": url,
            "has_module_perms": True,
            "models": [
                {
                    "name": "Export and import",
                    "object_name": "Backup",
                    "perms": {"add": False, "change": False, "delete": False, "view": True},
                    "admin_url": url,
                    "add_url": None,
                    "view_only": True,
                }
            ],
        }


def may_back_up(request: HttpRequest) -> bool:
    """Whether the Backup entry is shown: the user manages at least one tenant."""
    user = request.user
    if user.is_active and user.is_superuser:
        return True  # no query on every admin page for superusers
    return managed_tenants(user).exists()
