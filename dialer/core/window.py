"""The calling window, in the called party's local time.

US rule (FTC TSR 16 CFR 310.4(c), FCC 47 CFR 64.1200(c)(1)): call only from 08:00 to 21:00 at the
called party's location. A lead may have several candidate zones (a number whose area spans zones,
a toll-free number); the window must then hold in *every* one of them, so that no candidate
location is called outside its hours.

Theory of operation: within one UTC-offset period of a zone (between two DST transitions), local
time is `t + offset`, so the window is a set of daily intervals computed by arithmetic. A zone's
open intervals over the search horizon are those intervals clipped to each offset period; the
lead's intervals are the intersection over its zones. Transitions are found by sampling the
offset every few hours and bisecting to the exact second, so DST days (a 23- or 25-hour local
day, a wall time that is skipped or repeated) come out right without minute-by-minute search.

Times are POSIX seconds passed in by the caller; nothing here reads the clock.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from zoneinfo import ZoneInfo

DAY = 86_400
SEARCH_HORIZON = 8 * DAY  # next_window_open looks this far ahead
_SAMPLE = 6 * 3600  # offset sampling step: zones never change offset twice within 6 hours

_HHMM = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")

Span = tuple[int, int]  # [start, end) in POSIX seconds


def parse_hhmm(text: str) -> int:
    """Minutes after midnight for "HH:MM" (00:00 to 23:59, or 24:00 as the end of the day)."""
    if text == "24:00":
        return 24 * 60
    match = _HHMM.fullmatch(text)
    if match is None:
        raise ValueError(f"bad time of day {text!r}: expected HH:MM from 00:00 to 24:00")
    return int(match[1]) * 60 + int(match[2])


def in_window(timezones: tuple[str, ...], now: float, start: str, end: str) -> bool:
    """True if local time is in [start, end) in every one of `timezones` at `now`.

    A window whose end is before its start runs past midnight (22:00-06:00)."""
    lo, hi = _bounds(start, end)
    zones = _zones(timezones)
    return all(_inside(_local_seconds(zone, now), lo, hi) for zone in zones)


def next_window_open(timezones: tuple[str, ...], now: float, start: str, end: str) -> float:
    """The earliest time >= `now` at which `in_window` holds.

    If the zones' windows never overlap within `SEARCH_HORIZON` (a short window and zones far
    apart), returns `now + SEARCH_HORIZON`: the lead is parked and looked at again then. The
    result is never a time at which calling would break the window."""
    lo, hi = _bounds(start, end)
    zones = _zones(timezones)
    if in_window(timezones, now, start, end):
        return now
    first = math.floor(now)
    last = first + SEARCH_HORIZON
    spans: list[Span] | None = None
    for zone in zones:
        own = _zone_spans(zone, first, last, lo, hi)
        spans = own if spans is None else _intersect(spans, own)
    for span_start, span_end in spans or ():
        if span_end > now:
            return max(float(span_start), now)
    return now + SEARCH_HORIZON


def _bounds(start: str, end: str) -> tuple[int, int]:
    """The window as local seconds of day [lo, hi), hi > lo; hi > DAY if it runs past midnight."""
    lo, hi = parse_hhmm(start) * 60, parse_hhmm(end) * 60
    if lo == hi:
        raise ValueError(f"empty calling window {start}-{end}")
    if hi < lo:
        hi += DAY
    return lo, hi


def _zones(timezones: tuple[str, ...]) -> list[ZoneInfo]:
    if not timezones:
        raise ValueError("no time zone: a lead's calling window cannot be checked without one")
    return [ZoneInfo(name) for name in dict.fromkeys(timezones)]


def _offset(zone: ZoneInfo, t: float) -> int:
    # Transitions fall on whole seconds, so the offset at t is the offset at floor(t); flooring
    # keeps microsecond rounding in fromtimestamp from moving t across a transition.
    delta = datetime.fromtimestamp(math.floor(t), zone).utcoffset()
    assert delta is not None  # a ZoneInfo always knows its offset
    return int(delta.total_seconds())


def _local_seconds(zone: ZoneInfo, t: float) -> float:
    return (t + _offset(zone, t)) % DAY


def _inside(local: float, lo: int, hi: int) -> bool:
    return lo <= local < hi or lo <= local + DAY < hi


def _offset_periods(zone: ZoneInfo, first: int, last: int) -> list[tuple[int, int, int]]:
    """[(start, end, utc offset)] covering [first, last) with one offset each."""
    periods: list[tuple[int, int, int]] = []
    start, offset = first, _offset(zone, first)
    probe = first
    while probe < last:
        nxt = min(probe + _SAMPLE, last)
        nxt_offset = _offset(zone, nxt)
        if nxt_offset != offset:
            # Bisect for the first second with the new offset.
            before, after = probe, nxt
            while after - before > 1:
                mid = (before + after) // 2
                if _offset(zone, mid) == offset:
                    before = mid
                else:
                    after = mid
            periods.append((start, after, offset))
            start, offset = after, nxt_offset
        probe = nxt
    periods.append((start, last, offset))
    return periods


def _zone_spans(zone: ZoneInfo, first: int, last: int, lo: int, hi: int) -> list[Span]:
    spans: list[Span] = []
    for start, end, offset in _offset_periods(zone, first, last):
        # Local day k opens at k*DAY + lo local, i.e. k*DAY + lo - offset in POSIX seconds. Start
        # a day early so a window that runs past midnight is caught from the previous evening.
        day = (start + offset) // DAY - 1
        while (opens := day * DAY + lo - offset) < end:
            a, b = max(opens, start), min(day * DAY + hi - offset, end)
            if a < b:
                if spans and spans[-1][1] >= a:
                    spans[-1] = (spans[-1][0], max(spans[-1][1], b))
                else:
                    spans.append((a, b))
            day += 1
    return spans


def _intersect(left: list[Span], right: list[Span]) -> list[Span]:
    out: list[Span] = []
    i = j = 0
    while i < len(left) and j < len(right):
        a = max(left[i][0], right[j][0])
        b = min(left[i][1], right[j][1])
        if a < b:
            out.append((a, b))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return out
