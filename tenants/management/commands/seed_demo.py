"""`manage.py seed_demo`: demo tenants with data in every tenant-scoped table (see tenants.demo)."""

from argparse import ArgumentParser, ArgumentTypeError
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tenants.demo import (
    FIXTURE,
    SECOND_TENANT_SLUG,
    DemoSizes,
    demo_tenants,
    format_report,
    seed_demo,
)

DEFAULTS = DemoSizes()


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ArgumentTypeError("must be at least 1")
    return value


def _ratio(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise ArgumentTypeError("must be in (0, 1]")
    return value


class Command(BaseCommand):
    help = (
        "Load the master data and create two demo tenants with data in every tenant-scoped "
        "table, plus an `admin` superuser and three users per tenant. Idempotent: a rerun with "
        "the same sizes changes nothing; with bigger sizes it only adds the missing rows."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--tenant", default="demo", help="Slug of the demo tenant.")
        parser.add_argument("--name", default="Demo Mining Co", help="Name of the demo tenant.")
        parser.add_argument("--vehicles", type=_count, default=DEFAULTS.vehicles)
        parser.add_argument("--readings", type=_count, default=DEFAULTS.readings)
        parser.add_argument("--components", type=_count, default=DEFAULTS.components)
        parser.add_argument("--logs", type=_count, default=DEFAULTS.logs, help="Maintenance logs.")
        parser.add_argument("--work-orders", type=_count, default=DEFAULTS.work_orders)
        parser.add_argument(
            "--second-tenant-ratio",
            type=_ratio,
            default=0.1,
            help=f"Size of the `{SECOND_TENANT_SLUG}` tenant relative to the demo tenant.",
        )
        parser.add_argument(
            "--admin-password",
            default="admin",
            help="Password of the `admin` superuser and of the demo users.",
        )
        parser.add_argument(
            "--fixture",
            default=str(FIXTURE),
            help="Master-data fixture, relative to BASE_DIR (default: %(default)s).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["tenant"] == SECOND_TENANT_SLUG:
            raise CommandError(f"`{SECOND_TENANT_SLUG}` is the second tenant's slug; pick another.")
        sizes = DemoSizes(
            vehicles=options["vehicles"],
            readings=options["readings"],
            components=options["components"],
            logs=options["logs"],
            work_orders=options["work_orders"],
        )
        tenants = demo_tenants(
            sizes,
            slug=options["tenant"],
            name=options["name"],
            second_tenant_ratio=options["second_tenant_ratio"],
        )
        verbose = options["verbosity"] >= 2
        try:
            report = seed_demo(
                tenants,
                admin_password=options["admin_password"],
                fixture=options["fixture"],
                log=self.stdout.write if verbose else None,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(format_report(report))
        self.stdout.write(f"Done in {report.seconds:.1f}s.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Log in as `{report.admin_username}` / `{report.admin_password}` (superuser); "
                f"tenant users {', '.join(report.user_logins)} use the same password."
            )
        )
