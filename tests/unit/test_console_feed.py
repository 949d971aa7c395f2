"""The console's feed, pure: snapshots of real campaign engines driven by events, and the
messages between two snapshots. No asyncio, no mocks."""

from __future__ import annotations

from typing import Any

from dialer.console.feed import (
    QueueView,
    agent_messages,
    agent_welcome,
    display_name,
    mask_phone,
    snapshot_of,
    supervisor_messages,
    supervisor_welcome,
)
from dialer.core.campaign import (
    AbandonStats,
    AgentLogin,
    AgentPause,
    AgentPhoneAnswered,
    CallAnswered,
    CallBridged,
    CallEnded,
    CampaignEngine,
    Disposition,
    LeadsAvailable,
    LeadsClaimed,
    SetRunning,
)
from dialer.core.model import CampaignSpec, DialMode, Lead, LeadState, SafeHarbor
from dialer.core.outcome import DialOutcome

T0 = 1_790_000_000.0


def engine(cid: str = "camp", mode: DialMode = DialMode.PROGRESSIVE,
           agents: tuple[str, ...] = ("agent-1",)) -> CampaignEngine:
    spec = CampaignSpec(id=cid, name=cid.title(), dial_mode=mode,
                        trunk="PJSIP/{number}@carrier", caller_id="Acme <+15550100>",
                        safe_harbor=SafeHarbor("Acme", "+15550100"), max_cps=100, wrapup=60)
    eng = CampaignEngine(spec)
    eng.handle(SetRunning(T0, True))
    eng.handle(LeadsAvailable(T0, 10))
    for aid in agents:
        eng.handle(AgentLogin(T0, aid))
        eng.handle(AgentPhoneAnswered(T0 + 1, aid))
    return eng


def lead(n: int = 1, **attributes: str) -> Lead:
    return Lead(id=f"camp:+1212555{n:04d}", campaign_id="camp", phone=f"+1212555{n:04d}",
                timezones=("America/New_York",), state=LeadState.IN_PROGRESS,
                attributes=tuple(sorted(attributes.items())))


def dial(eng: CampaignEngine, n: int, at: float, **attributes: str) -> str:
    cid = f"c-camp-{n}"
    eng.handle(LeadsClaimed(at, 1, ((lead(n, **attributes), False, cid),)))
    return cid


def types(messages: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in messages]


def test_a_phone_number_shows_only_its_last_four_digits() -> None:
    assert mask_phone("+12125550123") == "+•••••••0123"
    assert mask_phone("(212) 555-0123") == "(•••) •••-0123"
    assert mask_phone("911") == "•••"  # too short to show any part of it
    assert mask_phone("") == ""


def test_the_display_name_comes_from_the_name_columns() -> None:
    assert display_name({"first_name": "Ann", "last_name": "Lee", "name": "x"}) == "Ann Lee"
    assert display_name({"name": " Bob "}) == "Bob"
    assert display_name({"city": "Albany"}) is None


def test_a_new_subscriber_of_a_logged_out_agent_gets_their_state_and_nothing_else() -> None:
    snap = snapshot_of({}, T0)
    (state,) = agent_welcome("agent-9", snap)
    assert state == {"type": "state", "now": T0, "agent": "agent-9", "state": "LOGGED_OUT",
                     "since": None, "campaign": None, "pause_reason": None,
                     "pause_requested": None, "call_id": None}


def test_a_logged_in_agent_is_seen_ready_in_their_campaign() -> None:
    snap = snapshot_of({"camp": engine()}, T0 + 2)
    (state,) = agent_welcome("agent-1", snap)
    assert (state["state"], state["campaign"], state["since"]) == ("READY", "camp", T0 + 1)


def test_when_an_answered_call_goes_to_the_agent_the_screen_pop_carries_the_lead() -> None:
    eng = engine()
    before = snapshot_of({"camp": eng}, T0 + 2)
    cid = dial(eng, 1, T0 + 3, first_name="Ann", last_name="Lee", plan="gold")
    eng.handle(CallAnswered(T0 + 5, cid))
    reserved = snapshot_of({"camp": eng}, T0 + 5, before)
    messages = agent_messages("agent-1", before, reserved)
    assert types(messages) == ["state", "screen_pop"]
    assert messages[0]["state"] == "RESERVED"
    assert messages[0]["call_id"] == cid
    assert messages[1]["call"] == {
        "id": cid, "lead_id": "camp:+12125550001", "campaign": "camp", "phone": "+•••••••0001",
        "name": "Ann Lee", "attributes": {"first_name": "Ann", "last_name": "Lee",
                                          "plan": "gold"},
        "ivr": {}, "stage": "connecting", "ended": False}
    eng.handle(CallBridged(T0 + 5.1, cid))
    talking = snapshot_of({"camp": eng}, T0 + 5.1, reserved)
    messages = agent_messages("agent-1", reserved, talking)
    assert types(messages) == ["state", "screen_pop"]
    assert messages[0]["state"] == "ON_CALL"
    assert messages[1]["call"]["stage"] == "talking"
    assert agent_messages("agent-1", talking, snapshot_of({"camp": eng}, T0 + 6, talking)) == []


def test_the_pop_outlives_the_call_through_wrap_up_and_goes_with_the_disposition() -> None:
    eng = engine()
    cid = dial(eng, 1, T0 + 3, name="Bob")
    eng.handle(CallAnswered(T0 + 5, cid))
    eng.handle(CallBridged(T0 + 5.1, cid))
    talking = snapshot_of({"camp": eng}, T0 + 6)
    eng.handle(CallEnded(T0 + 30, cid, DialOutcome.ANSWERED, 16))
    wrapping = snapshot_of({"camp": eng}, T0 + 30, talking)
    messages = agent_messages("agent-1", talking, wrapping)
    assert types(messages) == ["state", "call_ended"]
    assert messages[0]["state"] == "WRAP_UP"
    assert messages[1]["call_id"] == cid
    # Someone opening the console during wrap-up still sees the call, marked ended.
    welcome = agent_welcome("agent-1", wrapping)
    assert types(welcome) == ["state", "screen_pop"]
    assert welcome[1]["call"]["ended"] is True
    assert welcome[1]["call"]["name"] == "Bob"
    later = snapshot_of({"camp": eng}, T0 + 31, wrapping)
    assert agent_messages("agent-1", wrapping, later) == []  # no second call_ended
    eng.handle(Disposition(T0 + 40, "agent-1", "sale"))
    ready = snapshot_of({"camp": eng}, T0 + 40, later)
    messages = agent_messages("agent-1", later, ready)
    assert types(messages) == ["state"]
    assert messages[0]["state"] == "READY"
    assert "agent-1" not in ready.pops


def test_a_pause_reason_change_is_a_state_message() -> None:
    eng = engine()
    before = snapshot_of({"camp": eng}, T0 + 2)
    eng.handle(AgentPause(T0 + 3, "agent-1", "lunch"))
    after = snapshot_of({"camp": eng}, T0 + 3, before)
    (message,) = agent_messages("agent-1", before, after)
    assert (message["state"], message["pause_reason"]) == ("PAUSED", "lunch")
    eng.handle(AgentPause(T0 + 4, "agent-1", "meeting"))
    (message,) = agent_messages("agent-1", after, snapshot_of({"camp": eng}, T0 + 4, after))
    assert message["pause_reason"] == "meeting"


def test_what_the_caller_entered_in_an_ivr_is_in_the_screen_pop() -> None:
    eng = engine()
    cid = dial(eng, 1, T0 + 3)
    eng.handle(CallAnswered(T0 + 5, cid))
    entered = {cid: {"account": "12345", "language": "es"}}
    snap = snapshot_of({"camp": eng}, T0 + 5, ivr_input=entered.get)
    (_, pop) = agent_welcome("agent-1", snap)
    assert pop["call"]["ivr"] == {"account": "12345", "language": "es"}


def test_other_agents_changes_are_not_in_an_agents_feed() -> None:
    eng = engine(agents=("agent-1", "agent-2"))
    before = snapshot_of({"camp": eng}, T0 + 2)
    eng.handle(AgentPause(T0 + 3, "agent-2", "break"))
    after = snapshot_of({"camp": eng}, T0 + 3, before)
    assert agent_messages("agent-1", before, after) == []
    assert types(agent_messages("agent-2", before, after)) == ["state"]


def test_supervisors_get_agents_campaigns_and_queues_first_then_only_what_changed() -> None:
    eng = engine(agents=("agent-1", "agent-2"))
    eng.handle(AbandonStats(T0, abandoned=1, humans=40))
    first = snapshot_of({"camp": eng}, T0 + 2)
    welcome = supervisor_welcome(first)
    assert types(welcome) == ["agents", "campaigns", "queues"]
    assert [a["id"] for a in welcome[0]["agents"]] == ["agent-1", "agent-2"]
    (camp,) = welcome[1]["campaigns"]
    assert camp["id"] == "camp"
    assert camp["running"] is True
    assert (camp["humans"], camp["abandoned"], camp["abandon_rate"]) == (40, 1, 0.025)
    assert camp["agents"] == {"READY": 2}
    assert camp["calls"] == 0
    assert camp["dial_level"] == 0.0
    assert welcome[2]["queues"] == []
    assert supervisor_messages(first, snapshot_of({"camp": eng}, T0 + 3, first)) == []

    cid = dial(eng, 1, T0 + 3)
    ringing = snapshot_of({"camp": eng}, T0 + 3, first)
    (campaigns,) = supervisor_messages(first, ringing)  # agents unchanged: READY both
    assert campaigns["type"] == "campaigns"
    assert campaigns["campaigns"][0]["ringing"] == 1
    assert campaigns["campaigns"][0]["dial_level"] == 0.5  # one call for two working agents
    eng.handle(CallAnswered(T0 + 5, cid))
    eng.handle(CallBridged(T0 + 5.1, cid))
    talking = snapshot_of({"camp": eng}, T0 + 5.1, ringing)
    agents, campaigns = supervisor_messages(ringing, talking)
    on_call = [a for a in agents["agents"] if a["state"] == "ON_CALL"]
    assert [a["call_id"] for a in on_call] == [cid]
    assert campaigns["campaigns"][0]["talking"] == 1
    assert campaigns["campaigns"][0]["agents"] == {"READY": 1, "ON_CALL": 1}


def test_queues_from_a_queue_source_reach_supervisors_when_they_change() -> None:
    waiting = [QueueView("sales", 2, T0 - 30, 1)]
    first = snapshot_of({}, T0, queues=lambda now: waiting)
    assert supervisor_welcome(first)[2]["queues"] == [
        {"id": "sales", "waiting": 2, "oldest_since": T0 - 30, "agents_ready": 1}]
    waiting = [QueueView("sales", 3, T0 - 30, 1)]
    (message,) = supervisor_messages(first, snapshot_of({}, T0 + 1, queues=lambda now: waiting))
    assert message["type"] == "queues"
    assert message["queues"][0]["waiting"] == 3


def test_agents_are_listed_by_campaign_then_state() -> None:
    a = engine("alpha", agents=("agent-3",))
    b = engine("beta", agents=("agent-1", "agent-2"))
    b.handle(AgentPause(T0 + 2, "agent-1", "break"))
    message = supervisor_welcome(snapshot_of({"beta": b, "alpha": a}, T0 + 3))[0]
    assert [(x["campaign"], x["id"], x["state"]) for x in message["agents"]] == [
        ("alpha", "agent-3", "READY"), ("beta", "agent-2", "READY"),
        ("beta", "agent-1", "PAUSED")]


def test_in_preview_mode_the_lead_pops_before_it_is_dialed() -> None:
    eng = engine(mode=DialMode.PREVIEW)
    cid = dial(eng, 1, T0 + 3, first_name="Cy")
    (state, pop) = agent_welcome("agent-1", snapshot_of({"camp": eng}, T0 + 3))
    assert state["state"] == "RESERVED"
    assert state["call_id"] == cid
    assert (pop["call"]["stage"], pop["call"]["name"]) == ("preview", "Cy")
    (camp,) = supervisor_welcome(snapshot_of({"camp": eng}, T0 + 3))[1]["campaigns"]
    assert camp["calls"] == 0  # a preview is not a call in flight
