"""The roster's state indexes always agree with its agents (what the pacing snapshot reads)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.core.agent import Agent, AgentState
from dialer.core.campaign import CampaignEngine
from dialer.core.model import CampaignSpec, DialMode, SafeHarbor
from dialer.core.roster import Roster


def spec() -> CampaignSpec:
    return CampaignSpec(id="camp", name="Camp", dial_mode=DialMode.PROGRESSIVE,
                        trunk="PJSIP/{number}@carrier", caller_id="Acme <+15550100>",
                        safe_harbor=SafeHarbor(seller="Acme", callback_number="+15550100"))


def brute_ready(roster: Roster) -> list[Agent]:
    return sorted((a for a in roster.values() if a.state is AgentState.READY),
                  key=lambda a: (a.since, a.id))


writes = st.lists(st.tuples(st.integers(0, 6), st.sampled_from(list(AgentState)),
                            st.integers(0, 5).map(float), st.booleans()), max_size=60)


@settings(max_examples=200, deadline=None)
@given(steps=writes)
def test_the_indexes_follow_every_write(steps: list[tuple[int, AgentState, float, bool]]) -> None:
    roster = Roster()
    for n, state, since, delete in steps:
        aid = f"a{n}"
        if delete:
            roster.pop(aid, None)
        else:
            roster[aid] = Agent(aid, state, since=since)
        assert roster.ready() == brute_ready(roster)
        assert roster.ready_count == len(brute_ready(roster))
        assert roster.longest_ready() == next(iter(brute_ready(roster)), None)
        assert sorted(roster.busy_since()) == sorted(
            a.since for a in roster.values() if a.state in (AgentState.RESERVED, AgentState.ON_CALL))
        assert sorted(roster.wrapping_since()) == sorted(
            a.since for a in roster.values() if a.state is AgentState.WRAP_UP)


def test_an_agent_filed_under_another_id_is_refused_and_changes_nothing() -> None:
    roster = Roster()
    with pytest.raises(ValueError, match="filed under"):
        roster["a1"] = Agent("a2", AgentState.READY)
    assert len(roster) == 0
    assert roster.ready_count == 0


def test_the_engine_turns_a_plain_dict_of_agents_into_a_roster() -> None:
    engine = CampaignEngine(spec(), agents={"a": Agent("a", AgentState.READY, since=3.0)})  # type: ignore[arg-type]
    assert isinstance(engine.agents, Roster)
    assert [a.id for a in engine.ready_agents()] == ["a"]
    assert engine.snapshot(5.0).ready_agents == 1
