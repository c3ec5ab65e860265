from django.urls import path

from backup.api import views

app_name = "backup-api"

# `str`, not `slug` or `uuid`: any value reaches the view, so that a wrong one gets the API's
# JSON 404.
PREFIX = "tenants/<str:tenant>/backup/"
TENANT = "tenants/<str:tenant>/"
BACKUP = TENANT + "backups/<str:id>/"
RESTORE = TENANT + "restores/<str:id>/"

urlpatterns = [
    path(PREFIX + "stats/", views.StatsView.as_view(), name="stats"),
    path(PREFIX + "export/", views.ExportView.as_view(), name="export"),
    path(PREFIX + "export.sql", views.SqlExportView.as_view(), name="export-sql"),
    path(PREFIX + "import/preview/", views.ImportPreviewView.as_view(), name="import-preview"),
    path(PREFIX + "import/", views.ImportView.as_view(), name="import"),
    # Stored backups and restores, made by a worker (`backup.stored`).
    path(TENANT + "backups/", views.BackupsView.as_view(), name="backups"),
    path(BACKUP, views.BackupView.as_view(), name="backup"),
    path(BACKUP + "download-link/", views.DownloadLinkView.as_view(), name="backup-download-link"),
    path(BACKUP + "download/", views.DownloadView.as_view(), name="backup-download"),
    path(BACKUP + "restore/", views.BackupRestoreView.as_view(), name="backup-restore"),
    path(TENANT + "restores/", views.RestoresView.as_view(), name="restores"),
    path(RESTORE, views.RestoreView.as_view(), name="restore"),
    path(RESTORE + "confirm/", views.RestoreConfirmView.as_view(), name="restore-confirm"),
    path(RESTORE + "cancel/", views.RestoreCancelView.as_view(), name="restore-cancel"),
    # Automatic backups (`backup.stored.schedules`).
    path(TENANT + "backup-schedule/", views.ScheduleView.as_view(), name="backup-schedule"),
]
