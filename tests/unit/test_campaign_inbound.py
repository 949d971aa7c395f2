"""The campaign core and the calls it does not dial: inbound IVR callers given to its agents
(blended work), and dispositions set while a call is still up."""

from __future__ import annotations

from dialer.core.agent import AgentState
from dialer.core.campaign import (
    ApplyDisposition,
    CallAnswered,
    CallBridged,
    CallEnded,
    CampaignEngine,
    ClaimLeads,
    ConnectAgent,
    ConnectInbound,
    Disposition,
    InboundBridged,
    InboundEnded,
    InboundOffer,
    InboundRefused,
    SaveAttempt,
    SaveLead,
    StartTimer,
    Tick,
    TimerFired,
    wrap_timer,
)
from dialer.core.model import DialMode
from dialer.core.outcome import DialOutcome
from tests.unit.test_campaign import NOON, dial_one, of, running, spec


def state(engine: CampaignEngine, agent: str) -> AgentState:
    return engine.agents[agent].state


def test_an_inbound_caller_offered_to_a_ready_agent_reserves_them_and_joins_their_bridge() -> None:
    engine = running(CampaignEngine(spec()), agents=1)
    out = engine.handle(InboundOffer(NOON + 1, "in-1", "agent-0"))
    assert of(ConnectInbound, out) == [ConnectInbound("in-1", "agent-0")]
    assert state(engine, "agent-0") is AgentState.RESERVED
    engine.handle(InboundBridged(NOON + 1.01, "in-1"))
    assert state(engine, "agent-0") is AgentState.ON_CALL
    out = engine.handle(InboundEnded(NOON + 60, "in-1"))
    assert state(engine, "agent-0") is AgentState.WRAP_UP
    assert of(StartTimer, out)[0].key == wrap_timer("agent-0")
    assert not of(SaveAttempt, out)  # an inbound call is not a campaign attempt


def test_a_reserved_inbound_agent_is_not_given_an_outbound_call_nor_counted_ready() -> None:
    engine = running(CampaignEngine(spec()), agents=1)
    engine.handle(InboundOffer(NOON + 1, "in-1", "agent-0"))
    assert engine.ready_agents() == []
    assert not of(ClaimLeads, engine.handle(Tick(NOON + 2)))


def test_an_inbound_offer_to_a_busy_or_unknown_agent_is_refused_and_changes_nothing() -> None:
    engine = running(CampaignEngine(spec()), agents=1)
    engine.handle(InboundOffer(NOON + 1, "in-1", "agent-0"))
    before = dict(engine.agents)
    assert engine.handle(InboundOffer(NOON + 2, "in-2", "agent-0")) == [
        InboundRefused("in-2", "agent-0")]
    assert engine.handle(InboundOffer(NOON + 2, "in-3", "nobody")) == [
        InboundRefused("in-3", "nobody")]
    assert dict(engine.agents) == before


def test_a_ring_per_call_campaign_refuses_inbound_offers() -> None:
    engine = running(CampaignEngine(spec(ring_agents=True)), agents=1)
    assert engine.handle(InboundOffer(NOON + 1, "in-1", "agent-0")) == [
        InboundRefused("in-1", "agent-0")]


def test_an_inbound_caller_who_leaves_before_the_bridge_frees_the_agent_at_once() -> None:
    engine = running(CampaignEngine(spec()), agents=1)
    engine.handle(InboundOffer(NOON + 1, "in-1", "agent-0"))
    engine.handle(InboundEnded(NOON + 1.5, "in-1"))
    assert state(engine, "agent-0") is AgentState.READY
    assert engine.inbound == {}


def test_a_disposition_after_an_inbound_call_ends_wrap_up_without_an_attempt() -> None:
    engine = running(CampaignEngine(spec()), agents=1)
    engine.handle(InboundOffer(NOON + 1, "in-1", "agent-0"))
    engine.handle(InboundBridged(NOON + 1.01, "in-1"))
    engine.handle(InboundEnded(NOON + 30, "in-1"))
    out = engine.handle(Disposition(NOON + 31, "agent-0", "other"))
    assert not of(ApplyDisposition, out)
    assert state(engine, "agent-0") is AgentState.READY
    assert engine.inbound == {}


def test_the_wrap_up_timer_after_an_inbound_call_makes_the_agent_ready() -> None:
    engine = running(CampaignEngine(spec(wrapup=5)), agents=1)
    engine.handle(InboundOffer(NOON + 1, "in-1", "agent-0"))
    engine.handle(InboundBridged(NOON + 1.01, "in-1"))
    engine.handle(InboundEnded(NOON + 30, "in-1"))
    engine.handle(TimerFired(NOON + 35, wrap_timer("agent-0")))
    assert state(engine, "agent-0") is AgentState.READY
    assert engine.inbound == {}


def test_a_disposition_set_during_the_call_is_applied_after_the_calls_own_records() -> None:
    engine = running(CampaignEngine(spec()), agents=1)
    cid = dial_one(engine)
    assert of(ConnectAgent, engine.handle(CallAnswered(NOON + 5, cid)))
    engine.handle(CallBridged(NOON + 5.01, cid))
    out = engine.handle(Disposition(NOON + 20, "agent-0", "callback", NOON + 86400))
    assert not of(ApplyDisposition, out)  # the call is up: its records are not final yet
    assert state(engine, "agent-0") is AgentState.ON_CALL
    out = engine.handle(CallEnded(NOON + 40, cid, DialOutcome.ANSWERED, 16))
    kinds = [type(c) for c in out]
    apply_at = kinds.index(ApplyDisposition)
    assert apply_at > kinds.index(SaveAttempt)
    assert apply_at > kinds.index(SaveLead)
    assert of(ApplyDisposition, out) == [
        ApplyDisposition(cid, "agent-0", "callback", NOON + 86400)]
    assert engine.pending_dispositions == {}


def test_predictive_mode_handles_inbound_offers_too() -> None:
    engine = running(CampaignEngine(spec(DialMode.PREDICTIVE)), agents=2)
    out = engine.handle(InboundOffer(NOON + 1, "in-1", "agent-1"))
    assert of(ConnectInbound, out) == [ConnectInbound("in-1", "agent-1")]
