"""Escalation and supervision decisions (dialer.core.escalation): events in, commands out, on
a real campaign engine. No asyncio, no mocks."""

from __future__ import annotations

from typing import TypeVar

import pytest

from dialer.core.agent import AgentState
from dialer.core.campaign import (
    AgentLogin,
    AgentLogout,
    AgentPhoneAnswered,
    AgentPhoneGone,
    ApplyDisposition,
    CallAnswered,
    CallBridged,
    CallEnded,
    CampaignEngine,
    Disposition,
    LeadsAvailable,
    LeadsClaimed,
    SaveAttempt,
    SetRunning,
    StartTimer,
)
from dialer.core.escalation import (
    FEATURE_TIMEOUT,
    AnyCommand,
    CancelConsult,
    EndHold,
    Escalate,
    EscalationDesk,
    EscalationDone,
    EscalationError,
    EscalationFailed,
    EscalationStep,
    FeatureKeys,
    HandOver,
    JoinCall,
    MonitorFailed,
    MonitorMode,
    MonitorStart,
    MonitorStarted,
    MonitorStop,
    ReturnPhone,
    Stage,
    StartConsult,
    StartMonitor,
    StopMonitor,
    TransferCall,
)
from dialer.core.model import (
    Attempt,
    CampaignSpec,
    DialMode,
    EscalationRecord,
    Lead,
    LeadState,
    SafeHarbor,
)
from dialer.core.outcome import DialOutcome
from dialer.store.codec import decode, encode

C = TypeVar("C")
T0 = 1_764_000_000.0  # any time: the window below is all day
SUPERVISORS = frozenset({"sup-1", "sup-2"})
CALL = "call-1"


def of(kind: type[C], commands: list[AnyCommand]) -> list[C]:
    return [c for c in commands if isinstance(c, kind)]


def desk_with_a_call(*supervisors: str, extra_agents: tuple[str, ...] = ()) -> EscalationDesk:
    """agent-1 talks to the customer of CALL; the supervisors (and other agents) are READY,
    logged in after agent-1 in the order given."""
    spec = CampaignSpec(id="camp", name="Camp", dial_mode=DialMode.PROGRESSIVE,
                        trunk="PJSIP/{number}@carrier",
                        caller_id="Acme <+15550100>", window_start="00:00", window_end="23:59",
                        safe_harbor=SafeHarbor(seller="Acme", callback_number="+15550100"))
    desk = EscalationDesk(CampaignEngine(spec))
    desk.handle(SetRunning(T0, True))
    desk.handle(LeadsAvailable(T0, 10))
    login(desk, "agent-1", T0)
    lead = Lead(id="L1", campaign_id="camp", phone="+12125550001",
                timezones=("America/New_York",), state=LeadState.IN_PROGRESS)
    desk.handle(LeadsClaimed(T0, 1, ((lead, False, CALL),)))
    desk.handle(CallAnswered(T0 + 1, CALL))
    desk.handle(CallBridged(T0 + 1, CALL))
    assert state(desk, "agent-1") is AgentState.ON_CALL
    for i, aid in enumerate((*supervisors, *extra_agents)):
        login(desk, aid, T0 + 2 + i)
    return desk


def login(desk: EscalationDesk, aid: str, at: float) -> None:
    desk.handle(AgentLogin(at, aid))
    desk.handle(AgentPhoneAnswered(at, aid))


def state(desk: EscalationDesk, aid: str) -> AgentState:
    return desk.engine.agents[aid].state


def records(desk: EscalationDesk) -> tuple[EscalationRecord, ...]:
    return desk.engine.calls[CALL].attempt.escalations


def snapshot(desk: EscalationDesk) -> tuple[object, ...]:
    """Everything a refused request must leave as it was."""
    engine = desk.engine
    return ({a.id: (a.state, a.call_id) for a in engine.agents.values()},
            {c.id: (c.state, c.agent_id, c.attempt) for c in engine.calls.values()},
            dict(desk.by_call), dict(desk.monitors))


# ------------------------------------------------------------------------------------ cold
def test_cold_escalation_moves_the_customer_to_the_supervisor_and_wraps_up_the_agent() -> None:
    desk = desk_with_a_call("sup-1")
    out = desk.handle(Escalate(T0 + 10, "agent-1", "cold", supervisors=SUPERVISORS))
    assert of(TransferCall, out) == [TransferCall(CALL, "agent-1", "sup-1")]
    assert state(desk, "sup-1") is AgentState.RESERVED  # no other call is offered meanwhile
    assert state(desk, "agent-1") is AgentState.ON_CALL  # until the move is done
    saved = of(SaveAttempt, out)[-1].attempt
    assert saved.escalations == (EscalationRecord(at=T0 + 10, kind="cold", agent_id="agent-1",
                                                  supervisor_id="sup-1", via="api"),)

    out = desk.handle(EscalationDone(T0 + 11, CALL, Stage.TRANSFERRING))
    assert state(desk, "sup-1") is AgentState.ON_CALL
    assert state(desk, "agent-1") is AgentState.WRAP_UP
    assert desk.engine.calls[CALL].agent_id == "sup-1"
    assert of(StartTimer, out)  # the agent's wrap-up timer
    assert records(desk)[0].outcome == "transferred"
    assert desk.by_call == {}

    out = desk.handle(CallEnded(T0 + 30, CALL, DialOutcome.ANSWERED, 16))
    assert state(desk, "sup-1") is AgentState.WRAP_UP  # the call was theirs
    final = of(SaveAttempt, out)[-1].attempt
    assert final.ended_at == T0 + 30
    assert final.agent_id == "agent-1"  # who took the call; the record says who finished it
    assert final.escalations[0].outcome == "transferred"
    assert final.escalations[0].ended_at == T0 + 11


def test_the_supervisor_queue_gives_the_ready_supervisor_idle_longest() -> None:
    desk = desk_with_a_call("sup-2", "sup-1", extra_agents=("agent-2",))
    out = desk.handle(Escalate(T0 + 10, "agent-1", "cold", supervisors=SUPERVISORS))
    assert of(TransferCall, out) == [TransferCall(CALL, "agent-1", "sup-2")]  # logged in first


def test_a_named_supervisor_is_used_even_when_another_waited_longer() -> None:
    desk = desk_with_a_call("sup-2", "sup-1")
    out = desk.handle(Escalate(T0 + 10, "agent-1", "warm", "sup-1", SUPERVISORS))
    assert of(StartConsult, out) == [StartConsult(CALL, "agent-1", "sup-1")]


def test_a_failed_transfer_gives_everything_back() -> None:
    desk = desk_with_a_call("sup-1")
    desk.handle(Escalate(T0 + 10, "agent-1", "cold", supervisors=SUPERVISORS))
    desk.handle(EscalationFailed(T0 + 11, CALL, Stage.TRANSFERRING, "bridge gone"))
    assert state(desk, "sup-1") is AgentState.READY
    assert state(desk, "agent-1") is AgentState.ON_CALL
    assert desk.engine.calls[CALL].agent_id == "agent-1"
    assert records(desk)[0].outcome == "failed"
    # ... and the call may be escalated again.
    out = desk.handle(Escalate(T0 + 12, "agent-1", "cold", supervisors=SUPERVISORS))
    assert of(TransferCall, out)


# ------------------------------------------------------------------------------------ warm
def consulting(*supervisors: str) -> EscalationDesk:
    desk = desk_with_a_call(*supervisors or ("sup-1",))
    out = desk.handle(Escalate(T0 + 10, "agent-1", "warm", supervisors=SUPERVISORS, via="phone"))
    assert of(StartConsult, out) == [StartConsult(CALL, "agent-1", "sup-1")]
    desk.handle(EscalationDone(T0 + 11, CALL, Stage.CONSULT_STARTING))
    assert desk.by_call[CALL].stage is Stage.CONSULTING
    assert records(desk)[0].via == "phone"
    return desk


def test_warm_join_makes_a_three_way_call_that_ends_for_both() -> None:
    desk = consulting()
    out = desk.handle(EscalationStep(T0 + 20, "agent-1", "join"))
    assert out == [JoinCall(CALL, "agent-1", "sup-1")]
    assert state(desk, "sup-1") is AgentState.RESERVED
    desk.handle(EscalationDone(T0 + 21, CALL, Stage.JOINING))
    assert state(desk, "sup-1") is AgentState.ON_CALL
    assert state(desk, "agent-1") is AgentState.ON_CALL
    assert records(desk)[0].outcome == "joined"

    out = desk.handle(CallEnded(T0 + 40, CALL, DialOutcome.ANSWERED, 16))
    assert ReturnPhone("sup-1") in out  # the supervisor's phone goes home
    assert state(desk, "sup-1") is AgentState.WRAP_UP
    assert state(desk, "agent-1") is AgentState.WRAP_UP
    final = of(SaveAttempt, out)[-1].attempt
    assert final.escalations[0].outcome == "joined"
    assert final.escalations[0].ended_at == T0 + 40


def test_warm_handover_gives_the_call_to_the_supervisor() -> None:
    desk = consulting()
    out = desk.handle(EscalationStep(T0 + 20, "agent-1", "handover"))
    assert out == [HandOver(CALL, "agent-1", "sup-1")]
    desk.handle(EscalationDone(T0 + 21, CALL, Stage.HANDING_OVER))
    assert state(desk, "sup-1") is AgentState.ON_CALL
    assert state(desk, "agent-1") is AgentState.WRAP_UP
    assert desk.engine.calls[CALL].agent_id == "sup-1"
    assert records(desk)[0].outcome == "handed_over"


def test_warm_handover_from_a_three_way_call() -> None:
    desk = consulting()
    desk.handle(EscalationStep(T0 + 20, "agent-1", "join"))
    desk.handle(EscalationDone(T0 + 21, CALL, Stage.JOINING))
    out = desk.handle(EscalationStep(T0 + 30, "sup-1", "handover"))  # either party may
    assert out == [HandOver(CALL, "agent-1", "sup-1")]
    desk.handle(EscalationDone(T0 + 31, CALL, Stage.HANDING_OVER))
    assert state(desk, "agent-1") is AgentState.WRAP_UP
    assert desk.engine.calls[CALL].agent_id == "sup-1"


def test_warm_cancel_brings_the_customer_back_and_frees_the_supervisor() -> None:
    desk = consulting()
    out = desk.handle(EscalationStep(T0 + 20, "agent-1", "cancel"))
    assert out == [CancelConsult(CALL, "agent-1", "sup-1", bring_back=True)]
    desk.handle(EscalationDone(T0 + 21, CALL, Stage.CANCELLING))
    assert state(desk, "sup-1") is AgentState.READY
    assert state(desk, "agent-1") is AgentState.ON_CALL
    assert desk.engine.calls[CALL].agent_id == "agent-1"
    assert records(desk)[0].outcome == "cancelled"
    assert desk.by_call == {}


def test_cancel_from_a_three_way_call_lets_the_supervisor_leave_to_wrap_up() -> None:
    desk = consulting()
    desk.handle(EscalationStep(T0 + 20, "agent-1", "join"))
    desk.handle(EscalationDone(T0 + 21, CALL, Stage.JOINING))
    out = desk.handle(EscalationStep(T0 + 30, "agent-1", "cancel"))
    assert out == [CancelConsult(CALL, "agent-1", "sup-1", bring_back=False)]
    desk.handle(EscalationDone(T0 + 31, CALL, Stage.CANCELLING))
    assert state(desk, "sup-1") is AgentState.WRAP_UP
    assert records(desk)[0].outcome == "joined"
    assert records(desk)[0].ended_at == T0 + 31


def test_a_customer_who_hangs_up_on_hold_ends_the_consult() -> None:
    desk = consulting()
    out = desk.handle(CallEnded(T0 + 20, CALL, DialOutcome.ANSWERED, 16))
    assert EndHold(CALL) in out
    assert ReturnPhone("sup-1") in out
    assert state(desk, "sup-1") is AgentState.READY
    assert state(desk, "agent-1") is AgentState.WRAP_UP
    assert of(SaveAttempt, out)[-1].attempt.escalations[0].outcome == "call_ended"


def test_a_supervisor_who_hangs_up_during_the_consult_gives_the_customer_back() -> None:
    desk = consulting()
    out = desk.handle(AgentPhoneGone(T0 + 20, "sup-1"))
    assert out[0] == CancelConsult(CALL, "agent-1", "sup-1", bring_back=True)
    assert "sup-1" not in desk.engine.agents  # logged out by the engine, after the move
    assert state(desk, "agent-1") is AgentState.ON_CALL
    assert records(desk)[0].outcome == "supervisor_left"


def test_an_agent_who_logs_out_during_the_consult_hands_over() -> None:
    desk = consulting()
    out = desk.handle(AgentLogout(T0 + 20, "agent-1"))
    assert out[0] == HandOver(CALL, "agent-1", "sup-1")
    assert state(desk, "sup-1") is AgentState.ON_CALL
    assert desk.engine.calls[CALL].agent_id == "sup-1"
    assert records(desk)[0].outcome == "agent_left"


def test_a_disposition_in_wrap_up_waits_while_the_supervisor_still_has_the_call() -> None:
    desk = desk_with_a_call("sup-1")
    desk.handle(Escalate(T0 + 10, "agent-1", "cold", supervisors=SUPERVISORS))
    desk.handle(EscalationDone(T0 + 11, CALL, Stage.TRANSFERRING))
    out = desk.handle(Disposition(T0 + 12, "agent-1", "sale"))
    assert of(ApplyDisposition, out) == []  # the call's final save would overwrite it
    out = desk.handle(CallEnded(T0 + 30, CALL, DialOutcome.ANSWERED, 16))
    assert of(ApplyDisposition, out) == [ApplyDisposition(CALL, "agent-1", "sale", None)]


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("event", "code"), [
    (Escalate(T0 + 10, "agent-1", "lukewarm", supervisors=SUPERVISORS), "bad_mode"),
    (Escalate(T0 + 10, "agent-9", "cold", supervisors=SUPERVISORS), "agent_not_logged_in"),
    (Escalate(T0 + 10, "sup-1", "cold", supervisors=SUPERVISORS), "no_call"),
    (Escalate(T0 + 10, "agent-1", "cold", "agent-2", SUPERVISORS), "not_a_supervisor"),
    (Escalate(T0 + 10, "agent-1", "cold", "sup-2", SUPERVISORS), "supervisor_not_logged_in"),
    (Escalate(T0 + 10, "agent-1", "cold", "agent-1", SUPERVISORS), "same_agent"),
    (Escalate(T0 + 10, "agent-1", "cold", supervisors=frozenset()), "no_supervisor_free"),
    (EscalationStep(T0 + 10, "agent-1", "join"), "no_escalation"),
    (EscalationStep(T0 + 10, "agent-1", "dance"), "bad_step"),
    (MonitorStart(T0 + 10, "sup-1", "agent-1", "spy", SUPERVISORS), "bad_mode"),
    (MonitorStart(T0 + 10, "sup-1", "agent-2", "listen", SUPERVISORS), "no_call"),
    (MonitorStart(T0 + 10, "agent-2", "agent-1", "listen", SUPERVISORS), "not_a_supervisor"),
    (MonitorStart(T0 + 10, "sup-1", "sup-1", "listen", SUPERVISORS), "same_agent"),
    (MonitorStop(T0 + 10, "sup-1"), "no_monitor"),
])
def test_bad_requests_are_refused_with_a_code_and_change_nothing(
    event: Escalate | EscalationStep | MonitorStart | MonitorStop, code: str
) -> None:
    desk = desk_with_a_call("sup-1", extra_agents=("agent-2",))
    before = snapshot(desk)
    with pytest.raises(EscalationError) as refused:
        desk.handle(event)
    assert refused.value.code == code
    assert str(refused.value)
    assert snapshot(desk) == before


def test_a_busy_supervisor_or_a_second_escalation_is_refused() -> None:
    desk = consulting("sup-1")
    before = snapshot(desk)
    with pytest.raises(EscalationError) as refused:
        desk.handle(Escalate(T0 + 20, "agent-1", "cold", supervisors=SUPERVISORS))
    assert refused.value.code == "escalation_in_progress"
    login(desk, "sup-2", T0 + 21)
    before = snapshot(desk)
    with pytest.raises(EscalationError) as busy:
        desk.handle(MonitorStart(T0 + 22, "sup-2", "sup-1", "listen", SUPERVISORS))
    assert busy.value.code == "no_call"  # sup-1 consults: the call is not theirs
    assert snapshot(desk) == before


def test_steps_are_refused_on_a_cold_escalation_and_while_the_last_one_is_carried_out() -> None:
    desk = desk_with_a_call("sup-1")
    desk.handle(Escalate(T0 + 10, "agent-1", "cold", supervisors=SUPERVISORS))
    with pytest.raises(EscalationError) as cold:
        desk.handle(EscalationStep(T0 + 11, "agent-1", "join"))
    assert cold.value.code == "escalation_state"
    desk = consulting()
    desk.handle(EscalationStep(T0 + 20, "agent-1", "join"))
    before = snapshot(desk)
    with pytest.raises(EscalationError) as pending:
        desk.handle(EscalationStep(T0 + 20.1, "agent-1", "handover"))
    assert pending.value.code == "escalation_state"
    assert snapshot(desk) == before


def test_a_failed_step_returns_to_where_it_started() -> None:
    desk = consulting()
    desk.handle(EscalationStep(T0 + 20, "agent-1", "join"))
    desk.handle(EscalationFailed(T0 + 21, CALL, Stage.JOINING, "gone"))
    assert desk.by_call[CALL].stage is Stage.CONSULTING
    assert state(desk, "sup-1") is AgentState.RESERVED


def test_a_late_confirmation_of_a_closed_escalation_is_ignored() -> None:
    desk = consulting()
    desk.handle(EscalationStep(T0 + 20, "agent-1", "cancel"))
    desk.handle(EscalationDone(T0 + 21, CALL, Stage.CANCELLING))
    assert desk.handle(EscalationDone(T0 + 22, CALL, Stage.CANCELLING)) == []


# ----------------------------------------------------------------------------- supervision
@pytest.mark.parametrize("mode", ["listen", "whisper"])
def test_listening_or_whispering_reserves_the_supervisor_until_stopped(mode: str) -> None:
    desk = desk_with_a_call("sup-1")
    out = desk.handle(MonitorStart(T0 + 10, "sup-1", "agent-1", mode, SUPERVISORS))
    assert of(StartMonitor, out) == [StartMonitor("sup-1", "agent-1", CALL, MonitorMode(mode))]
    desk.handle(MonitorStarted(T0 + 11, "sup-1"))
    assert state(desk, "sup-1") is AgentState.RESERVED
    assert state(desk, "agent-1") is AgentState.ON_CALL
    out = desk.handle(MonitorStop(T0 + 20, "sup-1"))
    assert of(StopMonitor, out) == [StopMonitor("sup-1", MonitorMode(mode))]
    assert state(desk, "sup-1") is AgentState.READY
    record = records(desk)[0]
    assert (record.kind, record.outcome, record.ended_at) == (mode, "stopped", T0 + 20)


def test_barging_puts_the_supervisor_on_the_call_and_ends_with_it() -> None:
    desk = desk_with_a_call("sup-1")
    desk.handle(MonitorStart(T0 + 10, "sup-1", "agent-1", "barge", SUPERVISORS))
    desk.handle(MonitorStarted(T0 + 11, "sup-1"))
    assert state(desk, "sup-1") is AgentState.ON_CALL
    out = desk.handle(CallEnded(T0 + 20, CALL, DialOutcome.ANSWERED, 16))
    assert StopMonitor("sup-1", MonitorMode.BARGE) in out
    assert state(desk, "sup-1") is AgentState.WRAP_UP
    assert of(SaveAttempt, out)[-1].attempt.escalations[0].outcome == "call_ended"


def test_a_second_monitor_by_the_same_supervisor_is_refused() -> None:
    desk = desk_with_a_call("sup-1")
    desk.handle(MonitorStart(T0 + 10, "sup-1", "agent-1", "listen", SUPERVISORS))
    with pytest.raises(EscalationError) as again:
        desk.handle(MonitorStart(T0 + 11, "sup-1", "agent-1", "barge", SUPERVISORS))
    assert again.value.code == "monitor_in_progress"


def test_a_monitor_that_could_not_start_frees_the_supervisor() -> None:
    desk = desk_with_a_call("sup-1")
    desk.handle(MonitorStart(T0 + 10, "sup-1", "agent-1", "whisper", SUPERVISORS))
    desk.handle(MonitorFailed(T0 + 11, "sup-1", "no snoop"))
    assert state(desk, "sup-1") is AgentState.READY
    assert records(desk)[0].outcome == "failed"
    assert desk.monitors == {}


# ---------------------------------------------------------------------------- phone keys
def test_star_and_a_digit_is_a_feature_and_a_lone_digit_stays_a_disposition() -> None:
    keys = FeatureKeys()
    assert keys.press("a", "1", T0) is None  # disposition code 1 (sale), as before
    assert keys.press("a", "*", T0) == ""
    assert keys.press("a", "8", T0 + 1) == "cold"
    assert keys.press("a", "8", T0 + 2) is None  # the * was used up
    assert keys.press("a", "*", T0 + 3) == ""
    assert keys.press("b", "9", T0 + 3) is None  # another agent's phone
    assert keys.press("a", "9", T0 + 3.5) == "warm"
    for digit, feature in (("1", "join"), ("2", "handover"), ("0", "cancel"), ("5", "")):
        keys.press("a", "*", T0 + 10)
        assert keys.press("a", digit, T0 + 10.5) == feature
    keys.press("a", "*", T0 + 20)
    assert keys.press("a", "8", T0 + 20 + FEATURE_TIMEOUT + 0.1) is None  # too slow


# ----------------------------------------------------------------------------- the record
def test_an_attempt_with_escalations_round_trips_and_older_records_decode_with_none() -> None:
    attempt = Attempt(id="c1", campaign_id="camp", lead_id="L1", phone="+12125550001",
                      originated_at=T0, escalations=(
                          EscalationRecord(T0 + 1, "warm", "agent-1", "sup-1", "phone", "joined",
                                           T0 + 2, T0 + 9),
                          EscalationRecord(T0 + 3, "listen", "agent-1", "sup-2")))
    assert decode(Attempt, "k", encode(attempt)) == attempt
    old = '{"id":"c1","campaign_id":"camp","lead_id":"L1","phone":"+1","originated_at":5}'
    assert decode(Attempt, "k", old).escalations == ()
