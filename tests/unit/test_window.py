from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.core.window import SEARCH_HORIZON, in_window, next_window_open, parse_hhmm

NY = ("America/New_York",)
IDAHO = ("America/Boise", "America/Los_Angeles")  # +1 208: Mountain and Pacific


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("08:00", 480), ("8:00", 480), ("00:00", 0), ("21:00", 1260), ("23:59", 1439), ("24:00", 1440)],
)
def test_parse_hhmm_gives_minutes_after_midnight(text: str, minutes: int) -> None:
    assert parse_hhmm(text) == minutes


@pytest.mark.parametrize(
    "text", ["", "8", "0800", "08:60", "25:00", "24:01", "08:00:00", " 08:00", "08:00 ", "-1:00", "08h00",
             "\u0660\u0668:\u0660\u0660"],
)
def test_parse_hhmm_rejects_anything_but_a_time_of_day(text: str) -> None:
    with pytest.raises(ValueError, match="bad time of day"):
        parse_hhmm(text)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2024, 1, 15, 12, 59, 59), False),  # 07:59:59 EST
        (utc(2024, 1, 15, 13, 0), True),  # 08:00 EST: the window includes its start
        (utc(2024, 1, 16, 1, 59, 59), True),  # 20:59:59 EST
        (utc(2024, 1, 16, 2, 0), False),  # 21:00 EST: the window excludes its end
        (utc(2024, 7, 15, 12, 0), True),  # 08:00 EDT
        (utc(2024, 7, 15, 11, 59), False),  # 07:59 EDT
        (utc(2024, 7, 16, 1, 0), False),  # 21:00 EDT
    ],
)
def test_in_window_uses_the_local_time_of_the_zone(now: float, expected: bool) -> None:
    assert in_window(NY, now, "08:00", "21:00") is expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2024, 1, 15, 15, 30), False),  # 08:30 Mountain, but 07:30 Pacific
        (utc(2024, 1, 15, 16, 0), True),  # 09:00 Mountain, 08:00 Pacific
        (utc(2024, 1, 16, 3, 59), True),  # 20:59 Mountain
        (utc(2024, 1, 16, 4, 0), False),  # 21:00 Mountain, only 20:00 Pacific
    ],
)
def test_a_lead_with_two_candidate_zones_is_in_window_only_when_both_are(now: float, expected: bool) -> None:
    assert in_window(IDAHO, now, "08:00", "21:00") is expected


def test_next_window_open_for_two_zones_waits_for_the_later_zone() -> None:
    assert next_window_open(IDAHO, utc(2024, 1, 15, 4, 0), "08:00", "21:00") == utc(2024, 1, 15, 16, 0)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # In the window: now itself.
        (utc(2024, 1, 15, 15, 0), utc(2024, 1, 15, 15, 0)),
        # Before 08:00 EST: 08:00 EST the same day.
        (utc(2024, 1, 15, 10, 0), utc(2024, 1, 15, 13, 0)),
        # At 21:00 EST: 08:00 EST the next day.
        (utc(2024, 1, 16, 2, 0), utc(2024, 1, 16, 13, 0)),
        # 10 March 2024, clocks go forward at 02:00 EST: the window opens at 08:00 EDT = 12:00 UTC.
        (utc(2024, 3, 10, 5, 0), utc(2024, 3, 10, 12, 0)),
        # The evening before the change: still 08:00 EDT, not 08:00 EST.
        (utc(2024, 3, 10, 2, 0), utc(2024, 3, 10, 12, 0)),
        # 3 November 2024, clocks go back at 02:00 EDT: the window opens at 08:00 EST = 13:00 UTC.
        (utc(2024, 11, 3, 1, 0), utc(2024, 11, 3, 13, 0)),
        (utc(2024, 11, 3, 6, 30), utc(2024, 11, 3, 13, 0)),  # inside the repeated hour
    ],
)
def test_next_window_open_in_new_york_across_dst_changes(now: float, expected: float) -> None:
    assert next_window_open(NY, now, "08:00", "21:00") == expected


def test_the_evening_before_clocks_go_back_closes_at_21_local() -> None:
    assert in_window(NY, utc(2024, 11, 3, 0, 59), "08:00", "21:00")  # 20:59 EDT
    assert not in_window(NY, utc(2024, 11, 3, 1, 0), "08:00", "21:00")  # 21:00 EDT


def test_a_window_opening_at_a_skipped_wall_time_opens_when_the_clocks_jump() -> None:
    # 02:30 does not exist in New York on 10 March 2024: local time goes 01:59:59 -> 03:00 at 07:00 UTC.
    assert next_window_open(NY, utc(2024, 3, 10, 5, 0), "02:30", "05:00") == utc(2024, 3, 10, 7, 0)
    assert not in_window(NY, utc(2024, 3, 10, 6, 59, 59), "02:30", "05:00")


def test_a_repeated_hour_leaves_the_window_and_reenters_it_at_the_start_time() -> None:
    # 3 November 2024: 01:30 EDT (05:30 UTC) opens the window; at 06:00 UTC clocks go back to 01:00 EST,
    # which is before 01:30, so the window is closed until 01:30 EST (06:30 UTC).
    assert in_window(NY, utc(2024, 11, 3, 5, 45), "01:30", "03:00")
    assert not in_window(NY, utc(2024, 11, 3, 6, 10), "01:30", "03:00")
    assert next_window_open(NY, utc(2024, 11, 3, 6, 10), "01:30", "03:00") == utc(2024, 11, 3, 6, 30)


def test_a_window_may_run_past_midnight() -> None:
    assert in_window(NY, utc(2024, 1, 15, 5, 0), "22:00", "06:00")  # 00:00 EST
    assert not in_window(NY, utc(2024, 1, 15, 12, 0), "22:00", "06:00")  # 07:00 EST
    assert next_window_open(NY, utc(2024, 1, 15, 12, 0), "22:00", "06:00") == utc(2024, 1, 16, 3, 0)


@pytest.mark.parametrize(
    ("zones", "start", "end"),
    [
        # 09:00-10:00 in Tokyo is 00:00-01:00 UTC; in New York 14:00-15:00 UTC.
        (("Asia/Tokyo", "America/New_York"), "09:00", "10:00"),
        # Each pair shares some hours of 08:00-21:00, but all three share none (in UTC: Honolulu
        # 18:00-07:00, Santiago 11:00-24:00, Kathmandu 02:15-15:15).
        (("Pacific/Honolulu", "America/Santiago", "Asia/Kathmandu"), "08:00", "21:00"),
    ],
)
def test_zones_whose_windows_never_overlap_park_the_lead_for_the_search_horizon(
    zones: tuple[str, ...], start: str, end: str
) -> None:
    now = utc(2024, 1, 15, 0, 30)
    assert not in_window(zones, now, start, end)
    assert next_window_open(zones, now, start, end) == now + SEARCH_HORIZON


def test_fractional_now_inside_the_window_is_returned_unchanged() -> None:
    now = utc(2024, 1, 15, 15, 0) + 0.25
    assert next_window_open(NY, now, "08:00", "21:00") == now


@pytest.mark.parametrize(("start", "end"), [("08:00", "08:00"), ("00:00", "00:00"), ("24:00", "24:00")])
def test_an_empty_window_is_refused(start: str, end: str) -> None:
    with pytest.raises(ValueError, match="empty calling window"):
        in_window(NY, 0.0, start, end)
    with pytest.raises(ValueError, match="empty calling window"):
        next_window_open(NY, 0.0, start, end)


def test_a_lead_without_zones_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        in_window((), 0.0, "08:00", "21:00")


# Zones with unusual rules: 30-minute DST (Lord Howe), 45-minute offsets (Kathmandu, Chatham),
# transitions at midnight (Santiago, Havana, Beirut), southern-hemisphere DST, no DST at all.
ZONES = [
    "America/New_York", "America/Los_Angeles", "America/Boise", "America/Phoenix", "Europe/London",
    "Europe/Berlin", "Australia/Sydney", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Chatham",
    "America/Santiago", "America/Havana", "Asia/Beirut", "Asia/Tehran", "Pacific/Honolulu", "UTC",
]
times = st.floats(min_value=utc(2020, 1, 1), max_value=utc(2036, 1, 1), allow_nan=False)
hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59]))
zone_sets = st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True).map(tuple)


@settings(max_examples=300, deadline=None)
@given(zones=zone_sets, now=times, start=hhmm, end=hhmm)
def test_next_window_open_is_not_before_now_and_is_in_window(
    zones: tuple[str, ...], now: float, start: str, end: str
) -> None:
    if start == end:
        return
    opens = next_window_open(zones, now, start, end)
    assert now <= opens <= now + SEARCH_HORIZON
    if opens < now + SEARCH_HORIZON:
        assert in_window(zones, opens, start, end)
    if opens > now:
        # The earliest: just before it, the window is still closed.
        assert not in_window(zones, max(now, opens - 1), start, end)


@settings(max_examples=40, deadline=None)
@given(zones=zone_sets, now=times)
def test_next_window_open_matches_a_minute_by_minute_search(zones: tuple[str, ...], now: float) -> None:
    # Every offset in these zones is a whole number of minutes, so the window opens on a UTC minute.
    # Three zones can have no common hour even when each pair has one: then the lead is parked.
    expected, limit = now, math.floor(now) + SEARCH_HORIZON
    if not in_window(zones, now, "08:00", "21:00"):
        expected = math.ceil(now / 60) * 60
        while expected < limit and not in_window(zones, expected, "08:00", "21:00"):
            expected += 60
        if expected >= limit:
            expected = now + SEARCH_HORIZON
    assert next_window_open(zones, now, "08:00", "21:00") == expected
