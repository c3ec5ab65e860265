import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backup.errors import BackupError
from backup.statistics import find_tenant
from backup.stored.alerts import detect_missed, open_alerts

# Exit status for monitoring: 0 all well, 1 alerts open.
ALERTS_OPEN = 1


class Command(BaseCommand):
    help = (
        "Report what needs attention about automatic backups: scheduled backups or restore "
        "drills that failed, slots that passed without a backup. Exits 1 while any alert is "
        "open (for monitoring), 0 otherwise."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="only this tenant (slug or id)")
        parser.add_argument("--json", action="store_true", help="print a JSON list instead")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = find_tenant(options["tenant"]) if options["tenant"] else None
        except BackupError as exc:
            raise CommandError(exc.message, returncode=exc.exit_code) from None
        detect_missed()
        alerts = list(open_alerts(tenant).order_by("tenant__slug", "created_at"))
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    [
                        {
                            "tenant": a.tenant.slug,
                            "kind": a.kind,
                            "since": a.created_at.isoformat(),
                            "message": a.message,
                        }
                        for a in alerts
                    ],
                    indent=2,
                )
            )
        elif not alerts:
            self.stdout.write("Automatic backups: all well.")
        else:
            for a in alerts:
                since = f"{a.created_at:%Y-%m-%d %H:%M} UTC"
                self.stdout.write(f"{a.tenant.slug}  {a.kind}  since {since}  {a.message}")
            self.stdout.write(f"{len(alerts)} alert(s) open.")
        if alerts:
            raise SystemExit(ALERTS_OPEN)
