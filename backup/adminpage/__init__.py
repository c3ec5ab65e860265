"""Admin > Backup: the Django admin page over the backup services (a thin adapter).

`apps.BackupAdminConfig` replaces `django.contrib.admin` in INSTALLED_APPS so that the default
admin site is `site.BackupAdminSite`, which adds the page's URLs under /admin/backup/ and its entry
on the admin index. The views only translate between forms and the services in `backup`.
"""
