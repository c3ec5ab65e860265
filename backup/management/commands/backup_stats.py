from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backup.errors import BackupError
from backup.statistics import find_tenant, tenant_statistics


class Command(BaseCommand):
    help = "Record counts per table of one tenant."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="tenant slug or id")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = find_tenant(options["tenant"])
        except BackupError as exc:
            raise CommandError(exc.message, returncode=exc.exit_code) from None
        counts = tenant_statistics(tenant)
        width = max(len(name) for name in counts)
        self.stdout.write(f"{tenant.name} ({tenant.slug})")
        for name, count in counts.items():
            self.stdout.write(f"  {name:<{width}}  {count:>10,}")
        self.stdout.write(f"  {'total':<{width}}  {sum(counts.values()):>10,}")
