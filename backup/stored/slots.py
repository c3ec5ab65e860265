"""When a schedule's backups are due: slots in the tenant's own time, daylight saving included.

A slot is a local date's scheduled time, as a UTC instant. A time the clocks skip (a spring
night's 02:30) falls at the first minute after the gap; a time they repeat (an autumn night's
02:30) is its first occurrence: either way each local date has exactly one slot. A slot runs at
the slot plus the tenant's offset, stable within `BACKUP_SCHEDULE_WINDOW_MINUTES`, so that a
fleet's tenants sharing 02:00 do not all start at once.
"""

import datetime as dt
import uuid
import zoneinfo
from dataclasses import dataclass

UTC = dt.UTC
# The most days between two slots (weekly), plus a day on each side for time-zone offsets.
_SEARCH_DAYS = 9


def zone_named(name: str) -> zoneinfo.ZoneInfo | None:
    """The IANA time zone, or None when there is none by that name."""
    if not name or name != name.strip() or name.startswith("/") or ".." in name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def offset_for(tenant_id: uuid.UUID | str, window_minutes: int) -> dt.timedelta:
    """The tenant's own delay within the window: the same on every pass and every machine."""
    if window_minutes <= 0:
        return dt.timedelta(0)
    return dt.timedelta(minutes=uuid.UUID(str(tenant_id)).int % window_minutes)


def local_instant(day: dt.date, at: dt.time, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """`at` on `day` in `zone`, as a UTC instant (see the module's rules for skipped and repeated
    times)."""
    wall = dt.datetime.combine(day, at.replace(second=0, microsecond=0, tzinfo=None))
    probe = wall
    while True:
        instant = probe.replace(tzinfo=zone, fold=0).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == probe:
            return instant
        probe += dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Rule:
    """What decides a schedule's slots."""

    at: dt.time
    zone: zoneinfo.ZoneInfo
    weekday: int | None = None  # None: every day; 0 Monday .. 6 Sunday
    offset: dt.timedelta = dt.timedelta(0)

    def slot_on(self, day: dt.date) -> dt.datetime | None:
        if self.weekday is not None and day.weekday() != self.weekday:
            return None
        return local_instant(day, self.at, self.zone)

    def latest_slot(self, moment: dt.datetime) -> dt.datetime | None:
        """The latest slot whose run time (slot + offset) is at or before `moment`."""
        day = moment.astimezone(self.zone).date() + dt.timedelta(days=1)
        for back in range(_SEARCH_DAYS):
            slot = self.slot_on(day - dt.timedelta(days=back))
            if slot is not None and slot + self.offset <= moment:
                return slot
        return None

    def next_slot(self, moment: dt.datetime) -> dt.datetime:
        """The first slot whose run time is after `moment`."""
        day = moment.astimezone(self.zone).date() - dt.timedelta(days=1)
        for ahead in range(_SEARCH_DAYS + 1):
            slot = self.slot_on(day + dt.timedelta(days=ahead))
            if slot is not None and slot + self.offset > moment:
                return slot
        raise AssertionError("a weekly rule has a slot in every nine days")
