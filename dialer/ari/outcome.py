"""Asterisk's dial statuses and Q.850 causes -> `DialOutcome`.

Measured on Asterisk 22 (TESTBED.md): the last final `Dial` event's `dialstatus` tells the
outcome (ANSWER, BUSY, NOANSWER, CONGESTION, CHANUNAVAIL); when there is none, the
`ChannelDestroyed` cause does: 17 busy, 19 no answer (ring timeout; also an unreachable SIP
address after the full timeout), 21 rejected, 1 unallocated, 16 normal clearing. A specific
cause (1, 21) is more precise than the generic CONGESTION/CHANUNAVAIL statuses it comes with.
"""

from __future__ import annotations

from dialer.ari.events import ChannelDestroyed, ChannelStateChange, Dial, StasisStart
from dialer.core.outcome import DialOutcome

DIALSTATUS: dict[str, DialOutcome] = {
    "ANSWER": DialOutcome.ANSWERED,
    "BUSY": DialOutcome.BUSY,
    "NOANSWER": DialOutcome.NO_ANSWER,
    "CONGESTION": DialOutcome.CONGESTION,
    "CHANUNAVAIL": DialOutcome.UNAVAILABLE,
}

Q850: dict[int, DialOutcome] = {
    1: DialOutcome.UNALLOCATED,
    3: DialOutcome.UNALLOCATED,  # no route to destination
    17: DialOutcome.BUSY,
    18: DialOutcome.NO_ANSWER,  # no user responding
    19: DialOutcome.NO_ANSWER,  # no answer (alerting, ring timeout)
    21: DialOutcome.REJECTED,
    22: DialOutcome.UNALLOCATED,  # number changed
    27: DialOutcome.UNAVAILABLE,  # destination out of order
    28: DialOutcome.UNALLOCATED,  # invalid number format
    34: DialOutcome.CONGESTION,
    38: DialOutcome.CONGESTION,  # network out of order
    41: DialOutcome.CONGESTION,  # temporary failure
    42: DialOutcome.CONGESTION,
}
_PRECISE_CAUSES = {1, 3, 21, 22, 28}

# When Asterisk destroys the originated channel with cause 0 (a Local channel whose far half
# carried the real cause, or a BYE without a Reason header), the cause implied by the final
# dial status is recorded instead.
DIALSTATUS_CAUSE: dict[str, int] = {"BUSY": 17, "NOANSWER": 19, "CONGESTION": 34,
                                    "CHANUNAVAIL": 20}


def classify(answered: bool, dialstatus: str | None, cause: int | None) -> DialOutcome:
    """The outcome of one originated channel from what ARI told us about it."""
    if answered:
        return DialOutcome.ANSWERED
    if cause in _PRECISE_CAUSES:
        return Q850[cause]
    if dialstatus and dialstatus in DIALSTATUS and dialstatus != "ANSWER":
        return DIALSTATUS[dialstatus]
    if cause is not None and cause in Q850:
        return Q850[cause]
    return DialOutcome.FAILED


class ChannelOutcome:
    """Accumulates what ARI says about one originated channel until it is destroyed."""

    __slots__ = ("answered", "cause", "cause_txt", "channel_id", "dialstatus", "ended")

    def __init__(self, channel_id: str) -> None:
        self.channel_id = channel_id
        self.answered = False
        self.dialstatus: str | None = None
        self.cause: int | None = None
        self.cause_txt = ""
        self.ended = False

    def feed(self, event: object) -> bool:
        """Take one event (ignored unless it concerns this channel). True once it has ended."""
        match event:
            case StasisStart(channel=ch) if ch.id == self.channel_id:
                self.answered = True
            case ChannelStateChange(channel=ch) if ch.id == self.channel_id and ch.state == "Up":
                self.answered = True
            case Dial(peer=peer, dialstatus=status) if peer.id == self.channel_id and status:
                self.dialstatus = status
                if status == "ANSWER":
                    self.answered = True
            case ChannelDestroyed(channel=ch, cause=cause, cause_txt=txt) if ch.id == self.channel_id:
                if cause == 0 and self.dialstatus in DIALSTATUS_CAUSE:
                    cause = DIALSTATUS_CAUSE[self.dialstatus]
                self.cause, self.cause_txt, self.ended = cause, txt, True
        return self.ended

    @property
    def outcome(self) -> DialOutcome:
        return classify(self.answered, self.dialstatus, self.cause)
