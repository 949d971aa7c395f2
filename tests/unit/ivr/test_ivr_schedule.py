"""Business hours: weekly hours in the schedule's zone, holidays, half days, one-off closures,
emergency closures, and daylight-saving time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dialer.ivr.loader import load_files
from dialer.ivr.model import HolidayList, Schedule
from dialer.ivr.schedule import Closure, HoursState, evaluate, localize

EXAMPLES = Path(__file__).resolve().parents[3] / "ivr_flows"
NY = ZoneInfo("America/New_York")
Hours = tuple[Schedule, Mapping[str, HolidayList]]


@pytest.fixture(scope="module")
def sets() -> Hours:
    flowset, diags = load_files(EXAMPLES)
    assert not [d for d in diags if d.is_error]
    return flowset.schedules["support_hours"], flowset.holiday_lists


def state(sets: Hours, when: dt.datetime,
          closures: tuple[Closure, ...] = ()) -> tuple[HoursState, str | None]:
    schedule, lists = sets
    result = evaluate(schedule, lists, when, closures)
    return result.state, result.holiday_name


@pytest.mark.parametrize(("local", "expected"), [
    ("2026-12-01 07:59", ("closed", None)),           # Tuesday, before opening
    ("2026-12-01 08:00", ("open", None)),             # opening minute is open
    ("2026-12-01 19:59", ("open", None)),
    ("2026-12-01 20:00", ("closed", None)),           # the end is exclusive
    ("2026-12-05 10:00", ("open", None)),             # Saturday morning
    ("2026-12-05 13:30", ("closed", None)),           # Saturday afternoon
    ("2026-12-06 10:00", ("closed", None)),           # Sunday
    ("2026-12-25 10:00", ("holiday", "Christmas Day")),
    ("2026-11-27 10:00", ("open", "Day after Thanksgiving")),    # half-day holiday, morning
    ("2026-11-27 15:00", ("closed", "Day after Thanksgiving")),  # ... afternoon
    ("2026-12-24 11:30", ("open", "Christmas Eve")),             # half-day exception
    ("2026-12-24 12:00", ("closed", "Christmas Eve")),
    ("2026-12-31 10:00", ("holiday", "Inventory day")),          # whole day closed by exception
    ("2026-08-14 11:59", ("open", None)),                        # before the all-hands
    ("2026-08-14 12:30", ("closed", "All-hands")),               # one-off closure
    ("2026-08-14 15:00", ("open", None)),                        # after it
])
def test_support_hours_in_new_york_local_time(sets: Hours, local: str,
                                              expected: tuple[str, str | None]) -> None:
    when = dt.datetime.fromisoformat(local).replace(tzinfo=NY)
    assert state(sets, when) == expected


def test_the_instant_is_converted_to_the_schedules_zone(sets: Hours) -> None:
    # 13:30 UTC on a December Tuesday is 08:30 in New York (EST, UTC-5): open.
    assert state(sets, dt.datetime(2026, 12, 1, 13, 30, tzinfo=dt.UTC))[0] == "open"
    # 12:30 UTC is 07:30 in New York: closed, though it is lunchtime in London.
    assert state(sets, dt.datetime(2026, 12, 1, 12, 30, tzinfo=dt.UTC))[0] == "closed"


def test_daylight_saving_time_moves_the_utc_opening(sets: Hours) -> None:
    # In July New York is UTC-4: 12:30 UTC is 08:30 local, open (it was closed in December).
    assert state(sets, dt.datetime(2026, 7, 14, 12, 30, tzinfo=dt.UTC))[0] == "open"


def test_an_emergency_closure_beats_everything(sets: Hours) -> None:
    start = dt.datetime(2026, 12, 1, 10, 0, tzinfo=NY)
    storm = Closure(start=start, end=start + dt.timedelta(hours=2), reason="storm")
    assert state(sets, start + dt.timedelta(minutes=30), (storm,)) == ("closed", "storm")
    assert state(sets, start + dt.timedelta(hours=3), (storm,)) == ("open", None)
    until_further_notice = Closure(start=start, end=None, reason="flood")
    assert state(sets, start + dt.timedelta(days=3), (until_further_notice,))[0] == "closed"


def test_a_naive_instant_is_refused(sets: Hours) -> None:
    schedule, lists = sets
    with pytest.raises(ValueError, match="aware"):
        evaluate(schedule, lists, dt.datetime(2026, 12, 1, 10, 0))


def test_localize_reads_a_wall_clock_time_in_the_schedules_zone(sets: Hours) -> None:
    schedule, _ = sets
    aware = localize(schedule, dt.datetime(2026, 12, 24, 11, 30))
    assert aware.utcoffset() == dt.timedelta(hours=-5)
    assert state(sets, aware) == ("open", "Christmas Eve")


def test_result_explains_the_rule_for_traces(sets: Hours) -> None:
    schedule, lists = sets
    result = evaluate(schedule, lists, dt.datetime(2026, 12, 24, 11, 30, tzinfo=NY))
    assert result.rule == "exception 'Christmas Eve' 08:00-12:00"
    assert result.local_time.hour == 11
