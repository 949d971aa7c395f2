"""The agent state machine.

Theory of operation: an agent logs in through the API; the dialer calls their SIP phone once
("nailed-up") and parks it in the agent's own bridge, where it stays between calls. While
READY the agent can be RESERVED for an answered customer; once the customer is in the bridge
the agent is ON_CALL; when the customer leaves, WRAP_UP until a disposition (or the wrap-up
time) returns them to READY. PAUSED takes them out of pacing with a reason. Hanging up the
phone logs the agent out cleanly.

    LOGGED_OUT --login--> CONNECTING --phone answered--> READY
    READY --reserve--> RESERVED --connected--> ON_CALL --customer gone--> WRAP_UP
    WRAP_UP --disposition / wrap-up timer--> READY (or PAUSED if a pause was requested)
    RESERVED --call lost before connect--> READY
    READY/WRAP_UP --pause--> PAUSED --resume--> READY
    any --phone hung up / logout--> LOGGED_OUT

All transitions are in `TRANSITIONS`; anything else is refused with `AgentTransitionError`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from dialer.errors import DialerError


class AgentState(StrEnum):
    LOGGED_OUT = "LOGGED_OUT"
    CONNECTING = "CONNECTING"  # calling the agent's phone (nailed-up)
    READY = "READY"
    RESERVED = "RESERVED"  # chosen for an answered call; the bridge add is in progress
    ON_CALL = "ON_CALL"
    WRAP_UP = "WRAP_UP"
    PAUSED = "PAUSED"


class AgentAction(StrEnum):
    LOGIN = "login"
    PHONE_UP = "phone_up"
    RESERVE = "reserve"
    CONNECTED = "connected"
    RELEASE = "release"  # a reservation that did not become a call
    CALL_ENDED = "call_ended"
    WRAP_DONE = "wrap_done"
    PAUSE = "pause"
    RESUME = "resume"
    LOGOUT = "logout"


S, A = AgentState, AgentAction
TRANSITIONS: dict[tuple[AgentState, AgentAction], AgentState] = {
    (S.LOGGED_OUT, A.LOGIN): S.CONNECTING,
    (S.CONNECTING, A.PHONE_UP): S.READY,
    (S.READY, A.RESERVE): S.RESERVED,
    (S.RESERVED, A.CONNECTED): S.ON_CALL,
    (S.RESERVED, A.RELEASE): S.READY,
    (S.ON_CALL, A.CALL_ENDED): S.WRAP_UP,
    (S.RESERVED, A.CALL_ENDED): S.READY,
    (S.WRAP_UP, A.WRAP_DONE): S.READY,
    (S.READY, A.PAUSE): S.PAUSED,
    (S.PAUSED, A.RESUME): S.READY,
    (S.PAUSED, A.PAUSE): S.PAUSED,  # change the reason
    # A pause asked for during a call takes effect when the wrap-up ends.
    (S.RESERVED, A.PAUSE): S.RESERVED,
    (S.ON_CALL, A.PAUSE): S.ON_CALL,
    (S.WRAP_UP, A.PAUSE): S.WRAP_UP,
    **{(state, A.LOGOUT): S.LOGGED_OUT for state in AgentState},
}


class AgentTransitionError(DialerError):
    """The agent cannot do that in their current state (e.g. ready while on a call)."""


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    state: AgentState = AgentState.LOGGED_OUT
    since: float = 0.0  # when the current state began
    pause_reason: str | None = None
    pause_requested: str | None = None  # pause after wrap-up, with this reason
    call_id: str | None = None  # the call reserved for / connected to / wrapped up
    skills: frozenset[str] = frozenset()

    def apply(self, action: AgentAction, now: float, *, call_id: str | None = None,
              reason: str | None = None) -> Agent:
        target = TRANSITIONS.get((self.state, action))
        if target is None:
            raise AgentTransitionError(
                f"agent {self.id}: cannot {action.value} while {self.state.value}")
        if action is A.PAUSE and self.state in (S.RESERVED, S.ON_CALL, S.WRAP_UP):
            return replace(self, pause_requested=reason or "break")
        next_call = self.call_id
        if target in (S.READY, S.PAUSED, S.LOGGED_OUT, S.CONNECTING):
            next_call = None
        elif action is A.RESERVE:
            next_call = call_id
        agent = replace(self, state=target, since=now, call_id=next_call,
                        pause_reason=(reason or "break") if target is S.PAUSED else None)
        if target is S.READY and self.pause_requested:
            agent = replace(agent, state=S.PAUSED, pause_reason=self.pause_requested,
                            pause_requested=None)
        return agent
