from typing import Any

from django.core.management.base import BaseCommand

from backup.uploads import purge_expired, ttl


class Command(BaseCommand):
    help = (
        "Remove uploaded backups whose preview was never confirmed and whose time "
        "(BACKUP_UPLOAD_TTL_SECONDS) is up. Uploads are also purged whenever a new one arrives; "
        "run this from cron so that none outlive their time on a quiet server."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        removed = purge_expired()
        self.stdout.write(f"Removed {removed} expired upload(s) (older than {ttl()}).")
