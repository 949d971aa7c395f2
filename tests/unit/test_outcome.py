from __future__ import annotations

import pytest

from dialer.ari.outcome import classify
from dialer.core.outcome import DialOutcome


@pytest.mark.parametrize(
    ("answered", "dialstatus", "cause", "expected"),
    [
        (True, "ANSWER", 16, DialOutcome.ANSWERED),
        (False, "BUSY", 17, DialOutcome.BUSY),
        (False, None, 17, DialOutcome.BUSY),
        (False, "NOANSWER", 19, DialOutcome.NO_ANSWER),
        (False, None, 19, DialOutcome.NO_ANSWER),
        (False, "CONGESTION", 21, DialOutcome.REJECTED),  # the precise cause wins
        (False, "CHANUNAVAIL", 1, DialOutcome.UNALLOCATED),
        (False, "CONGESTION", 34, DialOutcome.CONGESTION),
        (False, "CHANUNAVAIL", None, DialOutcome.UNAVAILABLE),
        (False, None, 0, DialOutcome.FAILED),  # far-end BYE without a Reason header
        (False, None, None, DialOutcome.FAILED),
    ],
)
def test_outcome_from_dial_status_and_cause(
    answered: bool, dialstatus: str | None, cause: int | None, expected: DialOutcome
) -> None:
    assert classify(answered, dialstatus, cause) is expected


def test_only_transient_outcomes_are_retryable() -> None:
    assert DialOutcome.BUSY.retryable
    assert DialOutcome.NO_ANSWER.retryable
    assert not DialOutcome.UNALLOCATED.retryable
    assert not DialOutcome.ANSWERED.retryable
