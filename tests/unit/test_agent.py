from __future__ import annotations

import pytest

from dialer.core.agent import TRANSITIONS, Agent, AgentAction, AgentState, AgentTransitionError

S, A = AgentState, AgentAction


@pytest.mark.parametrize(("state", "action"), sorted(TRANSITIONS, key=str))
def test_every_listed_transition_is_allowed(state: AgentState, action: AgentAction) -> None:
    agent = Agent("a1", state=state, call_id="c1" if state in (S.RESERVED, S.ON_CALL, S.WRAP_UP)
                  else None)
    assert agent.apply(action, 10.0, call_id="c1", reason="lunch").state in set(AgentState)


@pytest.mark.parametrize(
    ("state", "action"),
    [(s, a) for s in AgentState for a in AgentAction if (s, a) not in TRANSITIONS],
)
def test_every_other_transition_is_refused_with_the_state_named(
    state: AgentState, action: AgentAction
) -> None:
    with pytest.raises(AgentTransitionError, match=state.value):
        Agent("a1", state=state).apply(action, 1.0)


def test_a_full_call_cycle_returns_the_agent_to_ready() -> None:
    agent = Agent("a1")
    for action, expected in [(A.LOGIN, S.CONNECTING), (A.PHONE_UP, S.READY),
                             (A.RESERVE, S.RESERVED), (A.CONNECTED, S.ON_CALL),
                             (A.CALL_ENDED, S.WRAP_UP), (A.WRAP_DONE, S.READY)]:
        agent = agent.apply(action, 5.0, call_id="c9")
        assert agent.state is expected
    assert agent.call_id is None
    assert agent.since == 5.0


def test_the_reserved_call_is_remembered_until_wrap_up_ends() -> None:
    agent = Agent("a1", state=S.READY).apply(A.RESERVE, 1.0, call_id="c1")
    assert agent.call_id == "c1"
    agent = agent.apply(A.CONNECTED, 2.0).apply(A.CALL_ENDED, 3.0)
    assert agent.call_id == "c1"
    assert agent.apply(A.WRAP_DONE, 4.0).call_id is None


def test_a_pause_during_a_call_takes_effect_after_wrap_up() -> None:
    agent = Agent("a1", state=S.ON_CALL, call_id="c1").apply(A.PAUSE, 1.0, reason="lunch")
    assert agent.state is S.ON_CALL
    agent = agent.apply(A.CALL_ENDED, 2.0).apply(A.WRAP_DONE, 3.0)
    assert agent.state is S.PAUSED
    assert agent.pause_reason == "lunch"


def test_logout_is_allowed_from_every_state() -> None:
    for state in AgentState:
        assert Agent("a1", state=state).apply(A.LOGOUT, 1.0).state is S.LOGGED_OUT
