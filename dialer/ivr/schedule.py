"""Business hours: is a schedule open at a given instant? Pure: the instant is passed in.

Theory of operation. The instant (an aware datetime) is converted to the schedule's time zone
(zoneinfo, so daylight-saving changes are the tz database's, not ours). Then the first rule
that speaks about that local date and time decides, in this order:

1. emergency closures passed in by the caller (runtime state, e.g. a storm; newest first);
2. the schedule's `exceptions`, later entries first: a span (`from`..`to`) closes (or, with
   `closed: false`, opens) exactly that span; a dated entry replaces the day's hours (a half
   day) or closes the whole day (`closed: true` -> "holiday" with its name);
3. holidays from the schedule's holiday lists: a holiday with `hours` is a half day (open in
   those hours, "closed" outside them), one without is "holiday" all day;
4. the weekly `open` hours.

"holiday" is reported only for whole days off; an hours node sends it to its `holiday` outcome
(or `closed` when it has none) and sets `vars.holiday_name`. Half days outside their hours are
"closed", still with the day's name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from dialer.ivr.model import HolidayList, Schedule, TimeRange

HoursState = Literal["open", "closed", "holiday"]


@dataclass(frozen=True, slots=True)
class Closure:
    """A runtime closure (emergency override): closed from `start` to `end` (aware), or until
    further notice when `end` is None."""

    start: dt.datetime
    end: dt.datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class HoursResult:
    state: HoursState
    holiday_name: str | None  # the day's name for holidays, half days and named closures
    rule: str  # why, for traces: "weekly hours mon-fri 08:00-20:00", "exception 'All-hands'"
    local_time: dt.datetime  # the instant in the schedule's time zone


def _minute(local: dt.datetime) -> int:
    return local.hour * 60 + local.minute


def _in(ranges: Iterable[TimeRange], minute: int) -> TimeRange | None:
    for rng in ranges:
        if rng.contains(minute):
            return rng
    return None


def fmt_range(rng: TimeRange) -> str:
    return f"{rng.start // 60:02d}:{rng.start % 60:02d}-{rng.end // 60:02d}:{rng.end % 60:02d}"


def evaluate(schedule: Schedule, holiday_lists: Mapping[str, HolidayList], at: dt.datetime,
             closures: Iterable[Closure] = ()) -> HoursResult:
    """Open, closed or holiday at the aware instant `at`. Raises ValueError for a naive `at`
    (a naive time is ambiguous; use `localize` for times written in the schedule's zone) and
    ZoneInfoNotFoundError for an unknown time zone (the validator reports that as E506)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("evaluate() needs an aware datetime")
    local = at.astimezone(ZoneInfo(schedule.timezone))
    naive = local.replace(tzinfo=None)
    minute = _minute(local)
    day = local.date()

    for closure in closures:
        if closure.start <= at and (closure.end is None or at < closure.end):
            return HoursResult("closed", closure.reason or None,
                               f"emergency closure '{closure.reason}'", local)

    for exc in reversed(schedule.exceptions):
        label = f"exception '{exc.name}'" if exc.name else "exception"
        if exc.start is not None and exc.end is not None:
            if exc.start <= naive < exc.end:
                state: HoursState = "closed" if exc.closed else "open"
                return HoursResult(state, exc.name or None, label, local)
        elif exc.date == day:
            if exc.closed:
                return HoursResult("holiday", exc.name or None, label, local)
            rng = _in(exc.hours, minute)
            if rng is not None:
                return HoursResult("open", exc.name or None, f"{label} {fmt_range(rng)}", local)
            hours = ", ".join(fmt_range(r) for r in exc.hours)
            return HoursResult("closed", exc.name or None, f"{label} (open {hours})", local)

    for list_name in schedule.holidays:
        holiday_list = holiday_lists.get(list_name)
        for holiday in holiday_list.holidays if holiday_list else ():
            if holiday.date != day:
                continue
            label = f"holiday '{holiday.name}' ({list_name})"
            if not holiday.hours:
                return HoursResult("holiday", holiday.name, label, local)
            rng = _in(holiday.hours, minute)
            if rng is not None:
                return HoursResult("open", holiday.name, f"{label} {fmt_range(rng)}", local)
            return HoursResult("closed", holiday.name, f"{label} half day", local)

    weekday = local.weekday()
    for weekly in schedule.open:
        if weekday in weekly.days:
            rng = _in(weekly.hours, minute)
            if rng is not None:
                return HoursResult("open", None, f"weekly hours {fmt_range(rng)}", local)
    return HoursResult("closed", None, "outside the weekly hours", local)


def localize(schedule: Schedule, naive: dt.datetime) -> dt.datetime:
    """A wall-clock time written in the schedule's zone (an hours node's `at:`) as an aware
    datetime (the earlier of two ambiguous times, as zoneinfo's fold=0)."""
    return naive.replace(tzinfo=ZoneInfo(schedule.timezone))
