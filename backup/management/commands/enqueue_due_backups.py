import datetime as dt
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from backup.stored.alerts import detect_missed
from backup.stored.schedules import SchedulerPass, enqueue_due


class Command(BaseCommand):
    help = (
        "Enqueue every scheduled backup that is due, each tenant's slot exactly once however "
        "many schedulers run. Run it each minute from cron or a systemd timer, or keep it "
        "running with --loop."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--at",
            type=_moment,
            help="enqueue what is due at this ISO-8601 moment (with its offset) instead of now",
        )
        parser.add_argument(
            "--loop", action="store_true", help="run a pass every --interval seconds until stopped"
        )
        parser.add_argument("--interval", type=float, default=60.0, help="seconds (with --loop)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["at"] and options["loop"]:
            raise CommandError("--at makes one pass at a given moment: it cannot --loop.")
        if not options["loop"]:
            self.report(enqueue_due(options["at"]))
            detect_missed(options["at"])
            return
        try:
            while True:
                try:
                    self.report(enqueue_due())
                    detect_missed()
                except DatabaseError as exc:
                    # The database away for a moment must not stop the schedule: the next pass
                    # catches up what this one could not enqueue.
                    self.stderr.write(
                        f"The pass failed, retrying in {options['interval']} s: {exc}"
                    )
                    close_old_connections()
                time.sleep(options["interval"])
        except KeyboardInterrupt:
            return

    def report(self, result: SchedulerPass) -> None:
        line = (
            f"{result.at:%Y-%m-%d %H:%M:%S %Z}: {len(result.enqueued)} backup(s) enqueued "
            f"of {result.due} due"
        )
        if result.already:
            line += f", {result.already} already enqueued by another scheduler"
        if result.late:
            line += f", {len(result.late)} made late (their slots were missed)"
        if result.requeued:
            line += f"; {result.requeued} job(s) whose hand-over was lost enqueued again"
        if result.schedules_made:
            line += f"; {result.schedules_made} new tenant(s) given the default schedule"
        self.stdout.write(line + ".")


def _moment(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"--at {value!r} is not an ISO-8601 moment (e.g. 2026-12-06T02:00:00+00:00)."
        ) from None
    if timezone.is_naive(moment):
        raise CommandError(f"--at {value!r} needs its UTC offset (e.g. +00:00 or Z).")
    return moment
