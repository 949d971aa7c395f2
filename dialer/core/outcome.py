"""How a call attempt ended, in the dialer's own words (not Asterisk's)."""

from __future__ import annotations

from enum import StrEnum


class DialOutcome(StrEnum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"  # the called side or network refused the call (Q.850 21)
    UNALLOCATED = "unallocated"  # the number does not exist (Q.850 1)
    CONGESTION = "congestion"  # the network is congested / no circuit
    UNAVAILABLE = "unavailable"  # the channel could not be created (endpoint down, ...)
    FAILED = "failed"  # anything else; the cause is kept on the attempt

    @property
    def retryable(self) -> bool:
        """Worth another attempt later (subject to the campaign's retry rules)."""
        return self in {DialOutcome.BUSY, DialOutcome.NO_ANSWER, DialOutcome.CONGESTION,
                        DialOutcome.UNAVAILABLE, DialOutcome.FAILED}
