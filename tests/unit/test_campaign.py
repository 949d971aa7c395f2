"""Scenario tests of the campaign core: events in, commands out. No asyncio, no mocks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

import pytest

from dialer.core.agent import AgentState, AgentTransitionError
from dialer.core.campaign import (
    PREVIEW_SKIP_DELAY,
    AddDnc,
    AgentLogin,
    AgentLogout,
    AgentPhoneAnswered,
    AgentPhoneGone,
    AmdDone,
    ApplyDisposition,
    CallAgentPhone,
    CallAnswered,
    CallBridged,
    CallEnded,
    CampaignEngine,
    ClaimLeads,
    Command,
    ConnectAgent,
    DigitPressed,
    Disposition,
    Hangup,
    HangupAgentPhone,
    LeadsAvailable,
    LeadsClaimed,
    LeaveMessage,
    Originate,
    PlaybackDone,
    PlayRingback,
    PlaySafeHarbor,
    PreviewDial,
    PreviewSkip,
    RunAmd,
    SaveAttempt,
    SaveLead,
    SetRunning,
    StartTimer,
    StopRingback,
    Tick,
    TimerFired,
)
from dialer.core.model import (
    AmdMode,
    AttemptResult,
    CampaignSpec,
    DialMode,
    Lead,
    LeadState,
    SafeHarbor,
)
from dialer.core.outcome import DialOutcome

C = TypeVar("C")

# 2026-11-24 15:00 UTC = 10:00 in New York: inside the calling window.
NOON = datetime(2026, 11, 24, 15, 0, tzinfo=UTC).timestamp()
NIGHT = datetime(2026, 11, 25, 4, 0, tzinfo=UTC).timestamp()  # 23:00 in New York


def spec(mode: DialMode = DialMode.PROGRESSIVE, **kw: object) -> CampaignSpec:
    return CampaignSpec(
        id="camp", name="Camp", dial_mode=mode, trunk="PJSIP/{number}@carrier",
        caller_id="Acme <+15550100>",
        safe_harbor=SafeHarbor(seller="Acme", callback_number="+15550100"),
        max_cps=100, **kw,  # type: ignore[arg-type]
    )


def lead(n: int = 1) -> Lead:
    return Lead(id=f"L{n}", campaign_id="camp", phone=f"+1212555{n:04d}",
                timezones=("America/New_York",), state=LeadState.IN_PROGRESS)


def of(kind: type[C], commands: list[Command]) -> list[C]:
    return [c for c in commands if isinstance(c, kind)]


def running(engine: CampaignEngine, agents: int = 0, leads: int = 100) -> CampaignEngine:
    engine.handle(SetRunning(NOON, True))
    engine.handle(LeadsAvailable(NOON, leads))
    for i in range(agents):
        engine.handle(AgentLogin(NOON, f"agent-{i}"))
        engine.handle(AgentPhoneAnswered(NOON, f"agent-{i}"))
    return engine


def dial_one(engine: CampaignEngine, n: int = 1, at: float = NOON) -> str:
    out = engine.handle(LeadsClaimed(at, 1, ((lead(n), False, f"call-{n}"),)))
    assert of(Originate, out)
    return f"call-{n}"


def test_given_no_ready_agent_when_the_pacer_ticks_then_nothing_is_dialed() -> None:
    for mode in (DialMode.PROGRESSIVE, DialMode.PREDICTIVE, DialMode.POWER):
        engine = running(CampaignEngine(spec(mode)))
        assert engine.handle(Tick(NOON + 1)) == []


def test_pacing_is_idle_exactly_when_a_tick_would_do_nothing() -> None:
    stopped = CampaignEngine(spec(DialMode.PREDICTIVE))
    stopped.handle(LeadsAvailable(NOON, 100))
    stopped.handle(AgentLogin(NOON, "agent-0"))
    stopped.handle(AgentPhoneAnswered(NOON, "agent-0"))
    assert stopped.pacing_idle  # ready agent, leads, but not running
    for mode in (DialMode.PROGRESSIVE, DialMode.PREDICTIVE, DialMode.POWER, DialMode.PREVIEW):
        nobody = running(CampaignEngine(spec(mode)))
        assert nobody.pacing_idle
        assert nobody.handle(Tick(NOON + 1)) == []
        ready = running(CampaignEngine(spec(mode)), agents=1)
        assert not ready.pacing_idle
        assert of(ClaimLeads, ready.handle(Tick(NOON + 1)))
    assert stopped.handle(Tick(NOON + 1)) == []
    agentless = running(CampaignEngine(spec(DialMode.AGENTLESS)))
    assert not agentless.pacing_idle  # it dials with no agent at all
    assert of(ClaimLeads, agentless.handle(Tick(NOON + 1)))


def test_given_a_ready_agent_progressive_claims_one_lead_and_originates_on_the_trunk() -> None:
    engine = running(CampaignEngine(spec()), agents=1)
    assert of(ClaimLeads, engine.handle(Tick(NOON + 1))) == [ClaimLeads(1)]
    assert engine.handle(Tick(NOON + 1.1)) == []  # the claim is pending: no double dial
    out = engine.handle(LeadsClaimed(NOON + 1.2, 1, ((lead(), False, "call-1"),)))
    (originate,) = of(Originate, out)
    assert originate.endpoint == "PJSIP/+12125550001@carrier"
    assert originate.ring_timeout >= 15
    assert of(SaveAttempt, out)[0].attempt.originated_at == NOON + 1.2


def test_an_answered_human_goes_to_the_longest_ready_agent_then_wraps_up() -> None:
    engine = running(CampaignEngine(spec()), agents=2)
    cid = dial_one(engine)
    out = engine.handle(CallAnswered(NOON + 5, cid))
    (connect,) = of(ConnectAgent, out)
    assert connect.agent_id == "agent-0"
    assert engine.agents["agent-0"].state is AgentState.RESERVED
    engine.handle(CallBridged(NOON + 5.002, cid))
    assert engine.agents["agent-0"].state.value == "ON_CALL"
    out = engine.handle(CallEnded(NOON + 65, cid, DialOutcome.ANSWERED, 16))
    attempt = of(SaveAttempt, out)[-1].attempt
    assert attempt.result is AttemptResult.TALKED
    assert attempt.connected_at == NOON + 5.002
    assert attempt.agent_id == "agent-0"
    assert of(SaveLead, out)[0].lead.state is LeadState.DONE
    assert engine.agents["agent-0"].state.value == "WRAP_UP"
    out = engine.handle(Disposition(NOON + 70, "agent-0", "sale"))
    assert of(ApplyDisposition, out) == [ApplyDisposition(cid, "agent-0", "sale", None)]
    assert engine.agents["agent-0"].state.value == "READY"


def test_given_no_agent_within_the_connect_limit_the_call_is_abandoned_with_safe_harbor() -> None:
    engine = running(CampaignEngine(spec(DialMode.POWER)), agents=1)
    first, second = dial_one(engine, 1), dial_one(engine, 2)
    engine.handle(CallAnswered(NOON + 3, first))  # takes the only agent
    out = engine.handle(CallAnswered(NOON + 4, second))
    assert StartTimer(f"connect:{second}", NOON + 6) in out
    assert not of(ConnectAgent, out)
    out = engine.handle(TimerFired(NOON + 6, f"connect:{second}"))
    assert of(PlaySafeHarbor, out) == [PlaySafeHarbor(second)]
    assert engine.abandoned == 1
    assert engine.humans == 2
    assert of(AddDnc, engine.handle(DigitPressed(NOON + 8, second, "9"))) == [
        AddDnc("+12125550002", "camp")]
    assert of(Hangup, engine.handle(PlaybackDone(NOON + 12, second))) == [Hangup(second)]
    out = engine.handle(CallEnded(NOON + 12, second, DialOutcome.ANSWERED, 16))
    assert of(SaveAttempt, out)[-1].attempt.result is AttemptResult.ABANDONED
    assert of(SaveLead, out)[0].lead.state is LeadState.DNC


def test_a_call_connected_in_time_is_not_abandoned_when_its_timer_fires() -> None:
    engine = running(CampaignEngine(spec()), agents=1)
    cid = dial_one(engine)
    engine.handle(CallAnswered(NOON + 3, cid))
    engine.handle(CallBridged(NOON + 3.01, cid))
    assert engine.handle(TimerFired(NOON + 5, f"connect:{cid}")) == []
    assert engine.abandoned == 0


def test_a_waiting_caller_is_connected_as_soon_as_an_agent_is_free() -> None:
    engine = running(CampaignEngine(spec(DialMode.POWER)), agents=0)
    cid = dial_one(engine)
    engine.handle(CallAnswered(NOON + 3, cid))
    engine.handle(AgentLogin(NOON + 3.5, "late"))
    out = engine.handle(AgentPhoneAnswered(NOON + 4, "late"))
    assert of(ConnectAgent, out) == [ConnectAgent(cid, "late", False)]


def test_machine_with_message_mode_leaves_a_message_and_records_machine() -> None:
    engine = running(CampaignEngine(spec(amd=AmdMode.MESSAGE)), agents=1)
    cid = dial_one(engine)
    assert of(RunAmd, engine.handle(CallAnswered(NOON + 3, cid))) == [RunAmd(cid)]
    out = engine.handle(AmdDone(NOON + 5.5, cid, "MACHINE", "LONGGREETING"))
    assert of(LeaveMessage, out) == [LeaveMessage(cid)]
    assert engine.humans == 0
    out = engine.handle(CallEnded(NOON + 20, cid, DialOutcome.ANSWERED, 16))
    attempt = of(SaveAttempt, out)[-1].attempt
    assert attempt.result is AttemptResult.MACHINE
    assert attempt.amd_status == "MACHINE"


def test_with_amd_the_connect_clock_starts_at_the_end_of_the_greeting() -> None:
    engine = running(CampaignEngine(spec(DialMode.POWER, amd=AmdMode.HANGUP)), agents=0)
    cid = dial_one(engine)
    engine.handle(CallAnswered(NOON + 3, cid))
    out = engine.handle(AmdDone(NOON + 5.5, cid, "HUMAN"))
    assert StartTimer(f"connect:{cid}", NOON + 7.5) in out


def test_busy_is_recorded_and_the_lead_retried_after_the_busy_delay() -> None:
    engine = running(CampaignEngine(spec()), agents=1)
    cid = dial_one(engine)
    out = engine.handle(CallEnded(NOON + 2, cid, DialOutcome.BUSY, 17))
    assert of(SaveAttempt, out)[-1].attempt.result is AttemptResult.BUSY
    assert of(SaveAttempt, out)[-1].attempt.cause == 17
    saved = of(SaveLead, out)[0].lead
    assert saved.state is LeadState.READY
    assert saved.next_at == NOON + 2 + 600
    assert saved.attempts == 1


def test_a_claimed_lead_outside_its_calling_window_is_rescheduled_not_dialed() -> None:
    engine = running(CampaignEngine(spec()), agents=1)
    out = engine.handle(LeadsClaimed(NIGHT, 1, ((lead(), False, "call-1"),)))
    assert not of(Originate, out)
    (saved,) = of(SaveLead, out)
    assert saved.lead.state is LeadState.READY
    local_open = datetime.fromtimestamp(saved.lead.next_at, UTC)
    assert (local_open.hour, local_open.minute) == (13, 0)  # 08:00 in New York


def test_a_claimed_lead_on_a_dnc_list_is_never_dialed() -> None:
    engine = running(CampaignEngine(spec()), agents=1)
    out = engine.handle(LeadsClaimed(NOON, 1, ((lead(), True, "call-1"),)))
    assert not of(Originate, out)
    assert of(SaveLead, out)[0].lead.state is LeadState.DNC


def test_an_agent_hanging_up_before_the_customer_arrives_returns_the_call_to_the_queue() -> None:
    engine = running(CampaignEngine(spec(DialMode.POWER)), agents=2)
    cid = dial_one(engine)
    engine.handle(CallAnswered(NOON + 3, cid))
    from dialer.core.campaign import AgentPhoneGone
    out = engine.handle(AgentPhoneGone(NOON + 3.1, "agent-0"))
    assert of(ConnectAgent, out) == [ConnectAgent(cid, "agent-1", False)]
    assert "agent-0" not in engine.agents


def test_uk_mode_counts_estimated_amd_false_positives_as_abandoned() -> None:
    engine = running(CampaignEngine(spec(DialMode.PREDICTIVE, amd=AmdMode.HANGUP, uk_mode=True,
                                         amd_false_positive_rate=0.1)), agents=1)
    from dialer.core.campaign import AbandonStats
    engine.handle(AbandonStats(NOON, abandoned=1, humans=100, machines=50))
    assert engine.abandon_rate == (1 + 5) / (100 + 5)
    snap = engine.snapshot(NOON)
    assert (snap.abandoned_in_window, snap.estimated_abandons) == (6, 5)
    cid = dial_one(engine)
    engine.handle(CallAnswered(NOON + 1, cid))
    engine.handle(AmdDone(NOON + 3, cid, "MACHINE"))
    assert engine.machines == 51


def test_uk_mode_pacer_keeps_no_recovery_budget_when_amd_false_positives_alone_hold_the_window_over(
        ) -> None:
    from dialer.core.campaign import AbandonStats
    from dialer.core.pacing import PredictivePacer
    engine = running(CampaignEngine(spec(DialMode.PREDICTIVE, amd=AmdMode.HANGUP, uk_mode=True,
                                         amd_false_positive_rate=0.05)), agents=1)
    pacer = PredictivePacer(0.03)
    engine.handle(AbandonStats(NOON, abandoned=3, humans=100, machines=100))  # 5 estimated
    assert pacer.budget(engine.snapshot(NOON)) == 0.0
    engine.handle(AbandonStats(NOON, abandoned=3, humans=100, machines=20))  # 1 estimated
    assert pacer.budget(engine.snapshot(NOON)) == pytest.approx(0.12 * 0.03)


def test_the_engine_counts_people_reached_and_abandoned_past_the_stores_re_read_counts() -> None:
    from dialer.core.campaign import AbandonStats
    engine = running(CampaignEngine(spec(DialMode.PREDICTIVE, amd=AmdMode.HANGUP, uk_mode=True,
                                         amd_false_positive_rate=0.5)), agents=0)
    engine.handle(AbandonStats(NOON, abandoned=7, humans=900, machines=40))
    for n, status in ((1, "HUMAN"), (2, "HUMAN"), (3, "MACHINE"), (4, "MACHINE")):
        cid = dial_one(engine, n)
        engine.handle(CallAnswered(NOON + 1, cid))
        engine.handle(AmdDone(NOON + 2, cid, status))
    engine.handle(TimerFired(NOON + 5, "connect:call-1"))  # nobody ready: abandoned
    snap = engine.snapshot(NOON + 5)
    assert (snap.people_reached, snap.people_abandoned) == (2 + 1, 1 + 1)  # 2 machines × 0.5
    engine.handle(AbandonStats(NOON + 6, abandoned=0, humans=0, machines=0))  # a new UK day
    snap = engine.snapshot(NOON + 6)
    assert (snap.humans_in_window, snap.abandoned_in_window) == (0, 0)
    assert (snap.people_reached, snap.people_abandoned) == (3, 2)  # never re-read


def test_outside_uk_mode_machines_do_not_count_as_abandoned() -> None:
    engine = running(CampaignEngine(spec(DialMode.PREDICTIVE, amd=AmdMode.HANGUP)), agents=1)
    from dialer.core.campaign import AbandonStats
    engine.handle(AbandonStats(NOON, abandoned=1, humans=100, machines=50))
    assert engine.abandon_rate == 0.01


def test_after_an_abandoned_call_in_uk_mode_the_number_is_locked_out_for_72_hours() -> None:
    engine = running(CampaignEngine(spec(DialMode.POWER, uk_mode=True)), agents=0)
    cid = dial_one(engine)
    engine.handle(CallAnswered(NOON + 3, cid))
    engine.handle(TimerFired(NOON + 5, f"connect:{cid}"))
    out = engine.handle(CallEnded(NOON + 15, cid, DialOutcome.ANSWERED, 16))
    saved = of(SaveLead, out)[0].lead
    assert saved.lockout_until == NOON + 15 + 72 * 3600
    assert saved.next_at >= saved.lockout_until


def test_calls_still_in_amd_count_as_pending_so_progressive_does_not_overdial() -> None:
    engine = running(CampaignEngine(spec(DialMode.PROGRESSIVE, amd=AmdMode.HANGUP)), agents=1)
    cid = dial_one(engine)
    engine.handle(CallAnswered(NOON + 2, cid))  # now in AMD, outcome unknown
    assert engine.snapshot(NOON + 2.5).calls_ringing == 1
    assert engine.handle(Tick(NOON + 3)) == []


def test_predictive_never_dials_while_every_agent_is_busy() -> None:
    engine = running(CampaignEngine(spec(DialMode.PREDICTIVE)), agents=1)
    cid = dial_one(engine)
    engine.handle(CallAnswered(NOON + 2, cid))
    engine.handle(CallBridged(NOON + 2.01, cid))  # the only agent is now talking
    for t in range(1, 120):
        assert engine.handle(Tick(NOON + 2 + t)) == []


def test_agentless_plays_the_outbound_message_to_a_person_then_hangs_up() -> None:
    from dialer.core.campaign import RunAgentless
    engine = running(CampaignEngine(spec(DialMode.AGENTLESS)), agents=0)
    engine.handle(Tick(NOON))
    cid = dial_one(engine)
    assert of(RunAgentless, engine.handle(CallAnswered(NOON + 2, cid))) == [RunAgentless(cid)]
    assert of(AddDnc, engine.handle(DigitPressed(NOON + 4, cid, "9"))) == [
        AddDnc("+12125550001", "camp")]
    assert of(Hangup, engine.handle(PlaybackDone(NOON + 9, cid))) == [Hangup(cid)]
    out = engine.handle(CallEnded(NOON + 9, cid, DialOutcome.ANSWERED, 16))
    assert of(SaveAttempt, out)[-1].attempt.result is AttemptResult.AGENTLESS
    assert of(SaveLead, out)[0].lead.state is LeadState.DNC


def test_agentless_dials_without_agents() -> None:
    engine = running(CampaignEngine(spec(DialMode.AGENTLESS)), agents=0)
    assert of(ClaimLeads, engine.handle(Tick(NOON + 1)))


# --- preview ---------------------------------------------------------------------------------
def previewing(agents: int = 1) -> tuple[CampaignEngine, str]:
    """A preview campaign whose first agent has lead 1 reserved on their screen."""
    engine = running(CampaignEngine(spec(DialMode.PREVIEW)), agents=agents)
    assert of(ClaimLeads, engine.handle(Tick(NOON + 1))) == [ClaimLeads(agents)]
    out = engine.handle(LeadsClaimed(NOON + 1.1, 1, ((lead(1), False, "call-1"),)))
    assert not of(Originate, out)  # shown to the agent, not dialed
    return engine, "call-1"


def test_preview_reserves_a_lead_for_the_agent_and_dials_only_when_asked() -> None:
    engine, cid = previewing()
    agent = engine.agents["agent-0"]
    assert (agent.state, agent.call_id) == (AgentState.RESERVED, cid)
    preview = engine.preview_of("agent-0")
    assert preview is not None
    assert preview.lead.id == "L1"
    for t in range(2, 60):  # the pacer never dials on its own
        assert not of(Originate, engine.handle(Tick(NOON + t)))
        assert not of(ClaimLeads, engine.handle(Tick(NOON + t + 0.5)))
    out = engine.handle(PreviewDial(NOON + 60, "agent-0"))
    (originate,) = of(Originate, out)
    assert originate.call_id == cid
    assert of(PlayRingback, out) == [PlayRingback(cid, "agent-0")]
    assert of(SaveAttempt, out)[0].attempt.originated_at == NOON + 60


def test_a_previewed_call_that_answers_goes_to_its_agent_and_is_never_abandoned() -> None:
    engine, cid = previewing(agents=2)
    engine.handle(PreviewDial(NOON + 5, "agent-0"))
    out = engine.handle(CallAnswered(NOON + 9, cid))
    assert of(StopRingback, out) == [StopRingback(cid)]
    assert of(ConnectAgent, out) == [ConnectAgent(cid, "agent-0", False)]
    assert engine.handle(TimerFired(NOON + 11, f"connect:{cid}")) == []
    engine.handle(CallBridged(NOON + 9.01, cid))
    out = engine.handle(CallEnded(NOON + 40, cid, DialOutcome.ANSWERED, 16))
    attempt = of(SaveAttempt, out)[-1].attempt
    assert (attempt.result, attempt.agent_id) == (AttemptResult.TALKED, "agent-0")
    assert engine.abandoned == 0


def test_an_unanswered_preview_call_frees_its_agent_for_the_next_lead() -> None:
    engine, cid = previewing()
    engine.handle(PreviewDial(NOON + 5, "agent-0"))
    out = engine.handle(CallEnded(NOON + 30, cid, DialOutcome.NO_ANSWER, 19))
    assert of(StopRingback, out) == [StopRingback(cid)]
    assert of(SaveAttempt, out)[-1].attempt.result is AttemptResult.NO_ANSWER
    assert engine.agents["agent-0"].state is AgentState.READY
    assert of(ClaimLeads, engine.handle(Tick(NOON + 31))) == [ClaimLeads(1)]


def test_a_skipped_preview_lead_goes_back_for_later_and_the_agent_gets_another() -> None:
    engine, cid = previewing()
    out = engine.handle(PreviewSkip(NOON + 5, "agent-0"))
    (saved,) = of(SaveLead, out)
    assert (saved.lead.state, saved.lead.next_at, saved.lead.attempts) == (
        LeadState.READY, NOON + 5 + PREVIEW_SKIP_DELAY, 0)
    assert not of(SaveAttempt, out)
    assert engine.agents["agent-0"].state is AgentState.READY
    assert cid not in engine.calls
    assert of(ClaimLeads, engine.handle(Tick(NOON + 6))) == [ClaimLeads(1)]


def test_preview_dial_or_skip_without_a_previewed_lead_is_refused() -> None:
    engine = running(CampaignEngine(spec(DialMode.PREVIEW)), agents=1)
    for event in (PreviewDial(NOON, "agent-0"), PreviewSkip(NOON, "agent-0")):
        with pytest.raises(AgentTransitionError, match="no previewed lead"):
            engine.handle(event)
    with pytest.raises(AgentTransitionError, match="not logged in"):
        engine.handle(PreviewDial(NOON, "nobody"))


def test_an_agent_logging_out_with_a_previewed_lead_gives_the_lead_back_undialed() -> None:
    engine, cid = previewing()
    out = engine.handle(AgentLogout(NOON + 3, "agent-0"))
    (saved,) = of(SaveLead, out)
    assert (saved.lead.state, saved.lead.attempts) == (LeadState.READY, 0)
    assert cid not in engine.calls


# --- ring-per-call ---------------------------------------------------------------------------
def test_ring_per_call_agents_are_ready_at_login_without_a_nailed_up_call() -> None:
    engine = CampaignEngine(spec(DialMode.PROGRESSIVE, ring_agents=True))
    out = engine.handle(AgentLogin(NOON, "a1"))
    assert not of(CallAgentPhone, out)
    assert engine.agents["a1"].state is AgentState.READY


def test_ring_per_call_an_agent_who_answers_in_time_takes_the_call() -> None:
    engine = running(CampaignEngine(spec(DialMode.PROGRESSIVE, ring_agents=True)), agents=1)
    cid = dial_one(engine)
    out = engine.handle(CallAnswered(NOON + 3, cid))
    assert of(ConnectAgent, out) == [ConnectAgent(cid, "agent-0", False)]  # rings their phone
    engine.handle(CallBridged(NOON + 4.2, cid))
    assert engine.handle(TimerFired(NOON + 5, f"connect:{cid}")) == []
    out = engine.handle(CallEnded(NOON + 30, cid, DialOutcome.ANSWERED, 16))
    assert of(HangupAgentPhone, out) == [HangupAgentPhone("agent-0")]  # their leg ends too
    assert engine.agents["agent-0"].state is AgentState.WRAP_UP


def test_ring_per_call_an_agent_who_does_not_answer_in_time_means_safe_harbor_and_a_pause() -> None:
    engine = running(CampaignEngine(spec(DialMode.PROGRESSIVE, ring_agents=True)), agents=1)
    cid = dial_one(engine)
    engine.handle(CallAnswered(NOON + 3, cid))
    out = engine.handle(TimerFired(NOON + 5, f"connect:{cid}"))
    assert of(HangupAgentPhone, out) == [HangupAgentPhone("agent-0")]
    assert of(PlaySafeHarbor, out) == [PlaySafeHarbor(cid)]
    assert engine.abandoned == 1
    agent = engine.agents["agent-0"]
    assert (agent.state, agent.pause_reason) == (AgentState.PAUSED, "missed call")


def test_ring_per_call_a_refused_ring_offers_the_caller_to_the_next_ready_agent() -> None:
    engine = running(CampaignEngine(spec(DialMode.POWER, ring_agents=True)), agents=2)
    cid = dial_one(engine)
    engine.handle(CallAnswered(NOON + 3, cid))
    out = engine.handle(AgentPhoneGone(NOON + 3.5, "agent-0"))  # their phone refused the call
    assert of(ConnectAgent, out) == [ConnectAgent(cid, "agent-1", False)]
    assert engine.agents["agent-0"].state is AgentState.PAUSED
    assert "agent-0" in engine.agents  # still logged in


def test_ring_per_call_the_agent_hanging_up_ends_the_call_not_the_session() -> None:
    engine = running(CampaignEngine(spec(DialMode.PROGRESSIVE, ring_agents=True)), agents=1)
    cid = dial_one(engine)
    engine.handle(CallAnswered(NOON + 3, cid))
    engine.handle(CallBridged(NOON + 4, cid))
    out = engine.handle(AgentPhoneGone(NOON + 20, "agent-0"))
    assert of(Hangup, out) == [Hangup(cid)]
    assert engine.agents["agent-0"].state is AgentState.ON_CALL  # wrap-up once the call ends
