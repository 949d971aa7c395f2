from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.core.model import AttemptResult, Lead, LeadState, RetryRules
from dialer.core.retry import UK_ABANDON_LOCKOUT, Blocked, after_attempt, dialable, next_dial_at

NOW = datetime(2024, 1, 15, 15, 0, tzinfo=UTC).timestamp()  # 10:00 in New York
NIGHT = datetime(2024, 1, 15, 4, 0, tzinfo=UTC).timestamp()  # 23:00 in New York
WINDOW = ("08:00", "21:00")
RULES = RetryRules()
LEAD = Lead(id="c1:+12125550123", campaign_id="c1", phone="+12125550123", timezones=("America/New_York",),
            state=LeadState.IN_PROGRESS)
R = AttemptResult


@pytest.mark.parametrize(
    ("result", "state", "delay"),
    [
        (R.TALKED, LeadState.DONE, None),
        (R.AGENTLESS, LeadState.DONE, None),
        (R.UNALLOCATED, LeadState.DONE, None),
        (R.REJECTED, LeadState.DONE, None),
        (R.BUSY, LeadState.READY, RULES.busy),
        (R.NO_ANSWER, LeadState.READY, RULES.no_answer),
        (R.MACHINE, LeadState.READY, RULES.machine),
        (R.CONGESTION, LeadState.READY, RULES.congestion),
        (R.UNAVAILABLE, LeadState.READY, RULES.unavailable),
        (R.FAILED, LeadState.READY, RULES.failed),
        (R.ABANDONED, LeadState.READY, RULES.abandoned),
        (R.HUNG_UP_EARLY, LeadState.READY, RULES.hung_up_early),
    ],
)
def test_each_result_finishes_the_lead_or_retries_it_after_its_delay(
    result: AttemptResult, state: LeadState, delay: float | None
) -> None:
    after = after_attempt(LEAD, result, now=NOW, rules=RULES, uk_mode=False)
    assert after.state is state
    assert after.attempts == 1
    assert after.last_result is result
    assert after.lockout_until == 0.0
    if delay is not None:
        assert after.next_at == NOW + delay


def test_a_result_whose_delay_is_none_finishes_the_lead() -> None:
    after = after_attempt(LEAD, R.BUSY, now=NOW, rules=replace(RULES, busy=None), uk_mode=False)
    assert after.state is LeadState.DONE


def test_the_last_allowed_attempt_finishes_the_lead() -> None:
    rules = replace(RULES, max_attempts=3)
    assert after_attempt(replace(LEAD, attempts=1), R.BUSY, now=NOW, rules=rules, uk_mode=False).state \
        is LeadState.READY
    last = after_attempt(replace(LEAD, attempts=2), R.BUSY, now=NOW, rules=rules, uk_mode=False)
    assert last.state is LeadState.DONE
    assert last.attempts == 3


@pytest.mark.parametrize("result", [R.TALKED, R.AGENTLESS])
def test_a_callback_disposition_schedules_the_lead_at_the_callback_time(result: AttemptResult) -> None:
    at = NOW + 86_400
    after = after_attempt(LEAD, result, now=NOW, rules=RULES, uk_mode=False, callback_at=at,
                          disposition="callback")
    assert after.state is LeadState.READY
    assert after.next_at == at


def test_a_callback_is_honoured_even_after_the_last_attempt() -> None:
    lead = replace(LEAD, attempts=RULES.max_attempts)
    after = after_attempt(lead, R.TALKED, now=NOW, rules=RULES, uk_mode=False, callback_at=NOW + 60,
                          disposition="callback")
    assert (after.state, after.next_at) == (LeadState.READY, NOW + 60)


def test_a_callback_disposition_without_a_time_finishes_a_talked_lead() -> None:
    after = after_attempt(LEAD, R.TALKED, now=NOW, rules=RULES, uk_mode=False, disposition="callback")
    assert after.state is LeadState.DONE


@pytest.mark.parametrize("result", [R.TALKED, R.BUSY, R.ABANDONED])
@pytest.mark.parametrize("disposition", ["dnc", "DNC"])
def test_a_dnc_disposition_puts_the_lead_on_dnc_whatever_the_result(
    result: AttemptResult, disposition: str
) -> None:
    after = after_attempt(replace(LEAD, callback_agent="a1"), result, now=NOW, rules=RULES, uk_mode=False,
                          callback_at=NOW + 60, disposition=disposition)
    assert after.state is LeadState.DNC
    assert after.callback_agent is None


def test_an_abandoned_call_in_uk_mode_locks_the_number_out_for_72_hours() -> None:
    after = after_attempt(LEAD, R.ABANDONED, now=NOW, rules=RULES, uk_mode=True)
    assert after.lockout_until == NOW + 72 * 3600 == NOW + UK_ABANDON_LOCKOUT
    assert after.state is LeadState.READY
    assert after.next_at >= after.lockout_until


def test_an_abandoned_call_outside_uk_mode_retries_after_the_abandoned_delay() -> None:
    after = after_attempt(LEAD, R.ABANDONED, now=NOW, rules=RULES, uk_mode=False)
    assert RULES.abandoned is not None
    assert (after.lockout_until, after.next_at) == (0.0, NOW + RULES.abandoned)


def test_an_abandoned_lead_that_is_finished_still_records_the_uk_lockout() -> None:
    after = after_attempt(LEAD, R.ABANDONED, now=NOW, rules=replace(RULES, abandoned=None), uk_mode=True)
    assert after.state is LeadState.DONE
    assert after.lockout_until == NOW + UK_ABANDON_LOCKOUT


def test_a_callback_inside_a_uk_lockout_waits_for_the_lockout() -> None:
    after = after_attempt(LEAD, R.ABANDONED, now=NOW, rules=RULES, uk_mode=True, callback_at=NOW + 3600,
                          disposition="callback")
    assert after.next_at == NOW + UK_ABANDON_LOCKOUT


def test_a_finished_lead_loses_its_callback_agent_and_a_retried_one_keeps_it() -> None:
    lead = replace(LEAD, callback_agent="a1")
    assert after_attempt(lead, R.TALKED, now=NOW, rules=RULES, uk_mode=False).callback_agent is None
    assert after_attempt(lead, R.NO_ANSWER, now=NOW, rules=RULES, uk_mode=False).callback_agent == "a1"


@given(
    result=st.sampled_from(AttemptResult),
    attempts=st.integers(0, 10),
    uk_mode=st.booleans(),
    disposition=st.sampled_from([None, "sale", "callback", "dnc"]),
    callback_in=st.none() | st.floats(-1e6, 1e7),
    lockout_in=st.floats(-1e6, 1e6),
)
def test_after_attempt_counts_the_attempt_and_never_schedules_inside_a_lockout(
    result: AttemptResult, attempts: int, uk_mode: bool, disposition: str | None,
    callback_in: float | None, lockout_in: float,
) -> None:
    lead = replace(LEAD, attempts=attempts, lockout_until=max(0.0, NOW + lockout_in))
    callback_at = None if callback_in is None else NOW + callback_in
    after = after_attempt(lead, result, now=NOW, rules=RULES, uk_mode=uk_mode, callback_at=callback_at,
                          disposition=disposition)
    assert after.attempts == attempts + 1
    assert after.last_result is result
    assert after.lockout_until >= lead.lockout_until
    if after.state is LeadState.READY:
        assert after.next_at >= after.lockout_until
    if uk_mode and result is R.ABANDONED:
        assert after.lockout_until >= NOW + UK_ABANDON_LOCKOUT
    assert after.state is not LeadState.IN_PROGRESS


READY = replace(LEAD, state=LeadState.READY)


@pytest.mark.parametrize(
    ("lead", "now", "on_dnc", "expected"),
    [
        (READY, NOW, False, None),
        (READY, NOW, True, Blocked.DNC),
        (replace(READY, state=LeadState.DONE), NOW, True, Blocked.DNC),  # DNC is said first
        (replace(READY, state=LeadState.DNC), NOW, False, Blocked.DNC),
        (replace(READY, state=LeadState.DONE), NOW, False, Blocked.DONE),
        (replace(READY, state=LeadState.IN_PROGRESS), NOW, False, Blocked.IN_PROGRESS),
        (replace(READY, next_at=NOW + 1), NOW, False, Blocked.NOT_BEFORE_NEXT_AT),
        (replace(READY, next_at=NOW), NOW, False, None),
        (replace(READY, lockout_until=NOW + 1, next_at=NOW + 2), NOW, False, Blocked.UK_LOCKOUT),
        (READY, NIGHT, False, Blocked.OUTSIDE_WINDOW),
        (replace(READY, timezones=()), NOW, False, Blocked.OUTSIDE_WINDOW),  # unknown local time
        (replace(READY, timezones=("America/New_York", "Asia/Tokyo")), NOW, False, Blocked.OUTSIDE_WINDOW),
    ],
)
def test_dialable_says_why_a_lead_may_not_be_dialed(
    lead: Lead, now: float, on_dnc: bool, expected: Blocked | None
) -> None:
    assert dialable(lead, now=now, on_dnc=on_dnc, window=WINDOW) == expected


def test_dialable_reasons_are_plain_strings() -> None:
    assert dialable(READY, now=NIGHT, on_dnc=False, window=WINDOW) == "outside_window"
    assert {b.value for b in Blocked} == {"dnc", "done", "in_progress", "not_before_next_at", "uk_lockout",
                                          "outside_window"}


def test_next_dial_at_waits_for_next_at_and_lockout_then_for_the_window() -> None:
    # Lockout ends at 23:00 New York time: the next chance is 08:00 the day after.
    lead = replace(READY, next_at=NOW + 60, lockout_until=NIGHT + 86_400)
    at = next_dial_at(lead, now=NOW, window=WINDOW)
    assert at == datetime(2024, 1, 16, 13, 0, tzinfo=UTC).timestamp()
    assert dialable(lead, now=at, on_dnc=False, window=WINDOW) is None
    assert next_dial_at(READY, now=NOW, window=WINDOW) == NOW
