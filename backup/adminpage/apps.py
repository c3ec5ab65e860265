from django.contrib.admin.apps import AdminConfig


class BackupAdminConfig(AdminConfig):
    """`django.contrib.admin` whose default site carries the Backup page."""

    default_site = "backup.adminpage.site.BackupAdminSite"
