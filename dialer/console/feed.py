"""The real-time feed, pure: views of the live state and the messages between two of them.

Theory of operation. The campaign engines (`dialer.core.campaign.CampaignEngine`) hold the
live state: agents by id and calls by id, each call with its lead. `snapshot_of` reads them
(never changes them) into a `Snapshot` of plain frozen views; the publisher (`dialer.console.ws`)
takes one every few hundred milliseconds and sends each subscriber only what changed:

- an agent's feed: `state` when their state (or pause reason, or campaign) changes;
  `screen_pop` when a call is assigned to them (the lead, its attributes, the phone number
  masked but for its last four digits, and what the caller entered in an IVR, if anything);
  `call_ended` when the customer is gone (the screen pop stays on screen through wrap-up:
  the disposition is set then);
- the supervisors' feed: `agents` (every logged-in agent), `campaigns` (live figures per
  running campaign) and `queues` (inbound queues: none yet, `QueueSource` is where they plug
  in), each sent whole when any part of it changed.

A new subscriber first gets everything (`agent_welcome`, `supervisor_welcome`), then diffs.

Why poll and diff rather than subscribe: the engines have no change hook, and reading a few
hundred agents and calls from memory four times a second costs far less than the events it
would replace; the engines stay untouched. A screen pop outlives its call in the engine (the
call is dropped when the customer hangs up, but the agent wraps it up): `snapshot_of` carries
the previous snapshot's pop, marked ended, while the agent still holds that call id.

Messages are JSON objects with a `type` and the server time `now` (POSIX seconds), so a page
can show "time in state" without trusting its own clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dialer.core.agent import AgentState
from dialer.core.campaign import CallState, CampaignEngine

Message = dict[str, Any]

#: call id -> what the caller entered in an IVR before reaching the agent (None: no IVR).
IvrInput = Callable[[str], Mapping[str, str] | None]


@dataclass(frozen=True, slots=True)
class QueueView:
    """An inbound queue as the wallboard shows it."""

    id: str
    waiting: int  # callers (and callbacks) waiting
    oldest_since: float | None  # when the longest-waiting entry joined (None: nobody waits)
    agents_ready: int  # agents of the queue who could take a call now


#: now -> the inbound queues. Inbound ACD queues (dialer.routing.queue) have no runtime yet;
#: when they do, the server passes a source here and the wallboard shows them.
QueueSource = Callable[[float], Sequence[QueueView]]


@dataclass(frozen=True, slots=True)
class AgentView:
    id: str
    campaign: str
    state: AgentState
    since: float  # when the current state began (POSIX seconds)
    pause_reason: str | None = None
    pause_requested: str | None = None  # a pause asked for during a call: after wrap-up
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class ScreenPop:
    call_id: str
    lead_id: str
    campaign: str
    phone: str  # masked: only the last four digits show
    name: str | None  # from the lead's name attributes, if any
    attributes: tuple[tuple[str, str], ...]  # the lead's custom columns, sorted by name
    ivr: tuple[tuple[str, str], ...] = ()  # what the caller entered in an IVR, sorted
    stage: str = "talking"  # preview | dialing | connecting | talking
    ended: bool = False  # the customer is gone (the agent is wrapping up)


@dataclass(frozen=True, slots=True)
class CampaignView:
    id: str
    name: str
    dial_mode: str
    running: bool
    calls: int  # calls in flight (not previews)
    ringing: int  # being dialed or in AMD
    waiting: int  # people answered, waiting for an agent (the 2-second clock runs)
    talking: int  # with an agent (or being connected to one)
    humans: int  # in the abandon-rate window
    abandoned: int
    abandon_rate: float
    abandon_target: float
    dial_level: float  # calls in flight per working agent (READY, RESERVED, ON_CALL, WRAP_UP)
    agents: tuple[tuple[str, int], ...]  # logged-in agents by state


@dataclass(frozen=True, slots=True)
class Snapshot:
    now: float
    agents: Mapping[str, AgentView] = field(default_factory=dict)
    pops: Mapping[str, ScreenPop] = field(default_factory=dict)  # by agent id
    campaigns: Mapping[str, CampaignView] = field(default_factory=dict)
    queues: tuple[QueueView, ...] = ()


EMPTY = Snapshot(0.0)

NAME_KEYS = (("first_name", "last_name"), ("name",), ("full_name",), ("company",))
WORKING = frozenset({AgentState.READY, AgentState.RESERVED, AgentState.ON_CALL,
                     AgentState.WRAP_UP})
STAGES: Mapping[CallState, str] = {CallState.PREVIEW: "preview", CallState.DIALING: "dialing",
                                   CallState.CONNECTING: "connecting",
                                   CallState.TALKING: "talking"}
STATE_ORDER = {state: i for i, state in enumerate(AgentState)}


def mask_phone(phone: str) -> str:
    """Every digit but the last four as `•` (an agent needs no full number: the dialer dials)."""
    digits = sum(c.isdigit() for c in phone)
    shown = 0
    out = []
    for c in reversed(phone):
        if c.isdigit():
            shown += 1
            out.append(c if shown <= 4 and digits > 4 else "•")
        else:
            out.append(c)
    return "".join(reversed(out))


def display_name(attributes: Mapping[str, str]) -> str | None:
    for keys in NAME_KEYS:
        parts = [attributes[k].strip() for k in keys if attributes.get(k, "").strip()]
        if parts:
            return " ".join(parts)
    return None


# ---------------------------------------------------------------------------- snapshots
def snapshot_of(engines: Mapping[str, CampaignEngine], now: float, previous: Snapshot = EMPTY,
                ivr_input: IvrInput | None = None, queues: QueueSource | None = None) -> Snapshot:
    """The live state of `engines` (read only) at `now`; `previous` carries wrap-up pops."""
    agents: dict[str, AgentView] = {}
    live: dict[str, ScreenPop] = {}
    campaigns: dict[str, CampaignView] = {}
    for cid, engine in engines.items():
        for agent in engine.agents.values():
            agents[agent.id] = AgentView(agent.id, cid, agent.state, agent.since,
                                         agent.pause_reason, agent.pause_requested,
                                         agent.call_id)
        for call in engine.calls.values():
            stage = STAGES.get(call.state)
            if call.agent_id is None or stage is None:
                continue
            attrs = dict(call.lead.attributes)
            entered = ivr_input(call.id) if ivr_input is not None else None
            live[call.agent_id] = ScreenPop(
                call.id, call.lead.id, cid, mask_phone(call.lead.phone), display_name(attrs),
                tuple(sorted(attrs.items())), tuple(sorted((entered or {}).items())), stage)
        campaigns[cid] = campaign_view(engine)
    pops: dict[str, ScreenPop] = {}
    for aid, view in agents.items():
        if view.call_id is None:
            continue
        pop = live.get(aid)
        if pop is not None and pop.call_id == view.call_id:
            pops[aid] = pop
            continue
        before = previous.pops.get(aid)
        if before is not None and before.call_id == view.call_id:
            pops[aid] = before if before.ended else replace(before, ended=True)
    return Snapshot(now, agents, pops, campaigns, tuple(queues(now)) if queues else ())


def campaign_view(engine: CampaignEngine) -> CampaignView:
    spec = engine.spec
    counts: dict[AgentState, int] = {}
    for agent in engine.agents.values():
        counts[agent.state] = counts.get(agent.state, 0) + 1
    ringing = talking = calls = 0
    for call in engine.calls.values():
        if call.state is CallState.PREVIEW:
            continue
        calls += 1
        if call.state in (CallState.DIALING, CallState.AMD):
            ringing += 1
        elif call.state in (CallState.CONNECTING, CallState.TALKING):
            talking += 1
    waiting = len(engine.waiting)
    working = sum(n for state, n in counts.items() if state in WORKING)
    return CampaignView(
        spec.id, spec.name, spec.dial_mode.value, engine.running, calls, ringing, waiting,
        talking, engine.humans, engine.abandoned, round(engine.abandon_rate, 4),
        spec.abandon_target, round(calls / working, 2) if working else 0.0,
        tuple((state.value, counts[state]) for state in AgentState if state in counts))


# ----------------------------------------------------------------------------- messages
def state_message(aid: str, snap: Snapshot) -> Message:
    view = snap.agents.get(aid)
    if view is None:
        return {"type": "state", "now": snap.now, "agent": aid,
                "state": AgentState.LOGGED_OUT.value, "since": None, "campaign": None,
                "pause_reason": None, "pause_requested": None, "call_id": None}
    return {"type": "state", "now": snap.now, "agent": aid, "state": view.state.value,
            "since": view.since, "campaign": view.campaign, "pause_reason": view.pause_reason,
            "pause_requested": view.pause_requested, "call_id": view.call_id}


def pop_message(aid: str, pop: ScreenPop, now: float) -> Message:
    return {"type": "screen_pop", "now": now, "agent": aid, "call": {
        "id": pop.call_id, "lead_id": pop.lead_id, "campaign": pop.campaign,
        "phone": pop.phone, "name": pop.name, "attributes": dict(pop.attributes),
        "ivr": dict(pop.ivr), "stage": pop.stage, "ended": pop.ended}}


def ended_message(aid: str, call_id: str, now: float) -> Message:
    return {"type": "call_ended", "now": now, "agent": aid, "call_id": call_id}


def _state_key(view: AgentView | None) -> tuple[object, ...] | None:
    if view is None:
        return None
    return (view.state, view.since, view.campaign, view.pause_reason, view.pause_requested,
            view.call_id)


def agent_welcome(aid: str, snap: Snapshot) -> list[Message]:
    """Everything a new subscriber to `aid`'s feed needs: their state, then their pop."""
    out = [state_message(aid, snap)]
    pop = snap.pops.get(aid)
    if pop is not None:
        out.append(pop_message(aid, pop, snap.now))
    return out


def agent_messages(aid: str, before: Snapshot, after: Snapshot) -> list[Message]:
    """What changed for agent `aid` from `before` to `after`, in the order to apply it:
    state, then the old call's end, then the new call's screen pop."""
    out: list[Message] = []
    if _state_key(before.agents.get(aid)) != _state_key(after.agents.get(aid)):
        out.append(state_message(aid, after))
    old, new = before.pops.get(aid), after.pops.get(aid)
    if old is not None and not old.ended and (
            new is None or new.call_id != old.call_id or new.ended):
        out.append(ended_message(aid, old.call_id, after.now))
    if new is not None and not new.ended and new != old:
        out.append(pop_message(aid, new, after.now))
    return out


def agents_message(snap: Snapshot) -> Message:
    views = sorted(snap.agents.values(),
                   key=lambda v: (v.campaign, STATE_ORDER[v.state], v.since, v.id))
    return {"type": "agents", "now": snap.now, "agents": [
        {"id": v.id, "campaign": v.campaign, "state": v.state.value, "since": v.since,
         "pause_reason": v.pause_reason, "call_id": v.call_id} for v in views]}


def campaigns_message(snap: Snapshot) -> Message:
    return {"type": "campaigns", "now": snap.now, "campaigns": [
        {"id": c.id, "name": c.name, "dial_mode": c.dial_mode, "running": c.running,
         "calls": c.calls, "ringing": c.ringing, "waiting": c.waiting, "talking": c.talking,
         "humans": c.humans, "abandoned": c.abandoned, "abandon_rate": c.abandon_rate,
         "abandon_target": c.abandon_target, "dial_level": c.dial_level,
         "agents": dict(c.agents)} for c in sorted(snap.campaigns.values(), key=lambda c: c.id)]}


def queues_message(snap: Snapshot) -> Message:
    return {"type": "queues", "now": snap.now, "queues": [
        {"id": q.id, "waiting": q.waiting, "oldest_since": q.oldest_since,
         "agents_ready": q.agents_ready} for q in snap.queues]}


def supervisor_welcome(snap: Snapshot) -> list[Message]:
    return [agents_message(snap), campaigns_message(snap), queues_message(snap)]


def supervisor_messages(before: Snapshot, after: Snapshot) -> list[Message]:
    out: list[Message] = []
    if before.agents != after.agents:
        out.append(agents_message(after))
    if before.campaigns != after.campaigns:
        out.append(campaigns_message(after))
    if before.queues != after.queues:
        out.append(queues_message(after))
    return out
