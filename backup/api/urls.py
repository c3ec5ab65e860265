from django.urls import path

from backup.api import views

app_name = "backup-api"

# `str`, not `slug`: any value reaches the view, so that a wrong one gets the API's JSON 404.
PREFIX = "tenants/<str:tenant>/backup/"

urlpatterns = [
    path(PREFIX + "stats/", views.StatsView.as_view(), name="stats"),
    path(PREFIX + "export/", views.ExportView.as_view(), name="export"),
    path(PREFIX + "export.sql", views.SqlExportView.as_view(), name="export-sql"),
    path(PREFIX + "import/preview/", views.ImportPreviewView.as_view(), name="import-preview"),
    path(PREFIX + "import/", views.ImportView.as_view(), name="import"),
]
