"""Slots in the tenant's own time (`backup.stored.slots`): daily and weekly, daylight saving's
skipped and repeated hours, the stable offset, catching up once."""

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest

from backup.stored.slots import Rule, local_instant, offset_for, zone_named

BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.UTC


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_a_daily_slot_is_the_local_time_as_an_instant():
    rule = Rule(at=dt.time(2, 0), zone=BERLIN)
    # Winter: Berlin is UTC+1; summer: UTC+2.
    assert rule.next_slot(utc(2026, 12, 6, 9, 0)) == utc(2026, 12, 7, 1, 0)
    assert rule.next_slot(utc(2026, 7, 1, 9, 0)) == utc(2026, 7, 2, 0, 0)
    assert rule.latest_slot(utc(2026, 12, 6, 9, 0)) == utc(2026, 12, 6, 1, 0)


def test_a_time_the_clocks_skip_runs_once_at_the_end_of_the_gap():
    # 2026-03-29: Berlin's clocks go from 02:00 to 03:00; 02:30 does not exist.
    rule = Rule(at=dt.time(2, 30), zone=BERLIN)
    slot = rule.next_slot(utc(2026, 3, 28, 12, 0))
    assert slot == utc(2026, 3, 29, 1, 0)  # 03:00 CEST, the first valid minute
    assert slot.astimezone(BERLIN).strftime("%H:%M %Z") == "03:00 CEST"
    assert rule.next_slot(slot) == utc(2026, 3, 30, 0, 30)  # the next day: 02:30 CEST again
    assert rule.latest_slot(utc(2026, 3, 29, 6, 0)) == slot


def test_a_time_the_clocks_repeat_runs_once_at_its_first_occurrence():
    # 2026-10-25: Berlin's clocks go from 03:00 back to 02:00; 02:30 happens twice.
    rule = Rule(at=dt.time(2, 30), zone=BERLIN)
    first = rule.next_slot(utc(2026, 10, 24, 12, 0))
    assert first == utc(2026, 10, 25, 0, 30)  # 02:30 CEST
    # The second 02:30 (CET, 01:30 UTC) is not a slot: the next one is the next night.
    assert rule.next_slot(first) == utc(2026, 10, 26, 1, 30)
    assert rule.latest_slot(utc(2026, 10, 25, 1, 45)) == first


def test_each_local_date_has_one_slot_across_a_whole_year():
    rule = Rule(at=dt.time(2, 30), zone=BERLIN)
    moment, days = utc(2026, 1, 1), set()
    for _ in range(365):
        moment = rule.next_slot(moment)
        days.add(moment.astimezone(BERLIN).date())
    assert len(days) == 365


def test_a_weekly_slot_falls_on_its_day():
    rule = Rule(at=dt.time(23, 30), zone=ZoneInfo("America/New_York"), weekday=6)  # Sunday
    slot = rule.next_slot(utc(2026, 12, 6, 9, 0))  # a Sunday, 04:00 in New York
    local = slot.astimezone(ZoneInfo("America/New_York"))
    assert (local.date(), local.strftime("%H:%M")) == (dt.date(2026, 12, 6), "23:30")
    assert rule.next_slot(slot) - slot == dt.timedelta(days=7)


def test_the_offset_is_stable_and_within_the_window():
    ids = [uuid.uuid4() for _ in range(2000)]
    offsets = [offset_for(i, 60) for i in ids]
    assert offsets == [offset_for(str(i), 60) for i in ids]
    assert all(dt.timedelta(0) <= o < dt.timedelta(minutes=60) for o in offsets)
    assert len(set(offsets)) == 60  # spread over the whole window
    assert offset_for(ids[0], 0) == dt.timedelta(0)


def test_the_offset_delays_the_run_not_the_slot():
    rule = Rule(at=dt.time(2, 0), zone=ZoneInfo("UTC"), offset=dt.timedelta(minutes=17))
    assert rule.latest_slot(utc(2026, 12, 6, 2, 16)) == utc(2026, 12, 5, 2, 0)
    assert rule.latest_slot(utc(2026, 12, 6, 2, 17)) == utc(2026, 12, 6, 2, 0)
    assert rule.next_slot(utc(2026, 12, 6, 2, 16)) == utc(2026, 12, 6, 2, 0)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", " UTC", "../etc/passwd", "/etc/localtime"])
def test_unknown_time_zones_are_none(name):
    assert zone_named(name) is None


def test_local_instant_of_an_ordinary_time():
    assert local_instant(dt.date(2026, 12, 6), dt.time(8, 15), BERLIN) == utc(2026, 12, 6, 7, 15)
