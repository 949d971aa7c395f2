"""What happens to a lead after an attempt, and whether a lead may be dialed now.

Theory of operation: `after_attempt` is the lead's only transition out of an attempt. The rules,
first match wins:

1. disposition "dnc" (the agent or the safe-harbor opt-out key) -> DNC, never dialed again;
2. disposition "callback" with a time -> READY at that time (the customer asked: it is honoured
   even past `max_attempts`);
3. a final result (talked, agentless, unallocated, rejected) or a result whose retry delay is
   None -> DONE;
4. `max_attempts` reached -> DONE;
5. otherwise READY after the result's delay.

UK mode (Ofcom persistent-misuse policy): after an abandoned call the number must not be called
again within 72 hours, so `lockout_until` is set and no READY time falls before it. `dialable`
checks the lockout separately, so it holds even for a lead edited by hand.
"""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from typing import assert_never

from dialer.core.model import AttemptResult, Lead, LeadState, RetryRules
from dialer.core.window import in_window, next_window_open

UK_ABANDON_LOCKOUT = 72 * 3600.0  # Ofcom: no repeat call within 72 h of an abandoned call


class Blocked(StrEnum):
    """Why a lead may not be dialed now (a `str`, so callers may compare with plain strings)."""

    DNC = "dnc"
    DONE = "done"
    IN_PROGRESS = "in_progress"
    UK_LOCKOUT = "uk_lockout"
    NOT_BEFORE_NEXT_AT = "not_before_next_at"
    OUTSIDE_WINDOW = "outside_window"


def retry_delay(result: AttemptResult, rules: RetryRules) -> float | None:
    """Seconds until the next attempt after `result`; None if the lead is finished."""
    match result:
        case AttemptResult.TALKED | AttemptResult.AGENTLESS:
            return None  # contacted
        case AttemptResult.UNALLOCATED:
            return None  # the number does not exist
        case AttemptResult.REJECTED:
            return None  # refused by the called side or network: not retryable (DialOutcome)
        case AttemptResult.BUSY:
            return rules.busy
        case AttemptResult.NO_ANSWER:
            return rules.no_answer
        case AttemptResult.MACHINE:
            return rules.machine
        case AttemptResult.CONGESTION:
            return rules.congestion
        case AttemptResult.UNAVAILABLE:
            return rules.unavailable
        case AttemptResult.FAILED:
            return rules.failed
        case AttemptResult.ABANDONED:
            return rules.abandoned
        case AttemptResult.HUNG_UP_EARLY:
            return rules.hung_up_early
        case _:
            assert_never(result)


def after_attempt(
    lead: Lead,
    attempt_result: AttemptResult,
    *,
    now: float,
    rules: RetryRules,
    uk_mode: bool,
    callback_at: float | None = None,
    disposition: str | None = None,
) -> Lead:
    """The lead once an attempt has ended with `attempt_result` (and the agent's disposition)."""
    attempts = lead.attempts + 1
    lockout = lead.lockout_until
    if uk_mode and attempt_result is AttemptResult.ABANDONED:
        lockout = max(lockout, now + UK_ABANDON_LOCKOUT)
    ended = replace(lead, attempts=attempts, last_result=attempt_result, lockout_until=lockout)
    kind = disposition.strip().casefold() if disposition is not None else None
    if kind == "dnc":
        return replace(ended, state=LeadState.DNC, callback_agent=None)
    if kind == "callback" and callback_at is not None:
        return replace(ended, state=LeadState.READY, next_at=max(callback_at, lockout))
    delay = retry_delay(attempt_result, rules)
    if delay is None or attempts >= rules.max_attempts:
        return replace(ended, state=LeadState.DONE, callback_agent=None)
    return replace(ended, state=LeadState.READY, next_at=max(now + delay, lockout))


def dialable(lead: Lead, *, now: float, on_dnc: bool, window: tuple[str, str]) -> Blocked | None:
    """None if `lead` may be dialed at `now`, else why not. `on_dnc`: the number is on a DNC list.

    A lead without a time zone is never in its window: its local time is unknown."""
    if on_dnc:
        return Blocked.DNC
    match lead.state:
        case LeadState.DNC:
            return Blocked.DNC
        case LeadState.DONE:
            return Blocked.DONE
        case LeadState.IN_PROGRESS:
            return Blocked.IN_PROGRESS
        case LeadState.READY:
            pass
        case _:
            assert_never(lead.state)
    if now < lead.lockout_until:
        return Blocked.UK_LOCKOUT
    if now < lead.next_at:
        return Blocked.NOT_BEFORE_NEXT_AT
    if not lead.timezones or not in_window(lead.timezones, now, *window):
        return Blocked.OUTSIDE_WINDOW
    return None


def next_dial_at(lead: Lead, *, now: float, window: tuple[str, str]) -> float:
    """The earliest time >= `now` at which a READY `lead` passes its time and window checks
    (next_at, UK lockout, calling window). DNC lists are the caller's to check."""
    if not lead.timezones:
        raise ValueError(f"lead {lead.id} has no time zone")
    earliest = max(now, lead.next_at, lead.lockout_until)
    return next_window_open(lead.timezones, earliest, *window)
