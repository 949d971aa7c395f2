"""Escalation and supervision: an agent hands a live call to a supervisor, cold or warm; a
supervisor listens to, whispers to or barges into an agent's call. Pure, like the campaign
engine it extends (`EscalationDesk.handle`: events and `now` in, commands out); the ARI work is
in `dialer.escalation_runtime`.

Theory of operation
-------------------
Agents are nailed up: each agent's phone stays in the agent's own bridge and a connected
customer is added to it (dialer.runner). Supervisors are agents with the `supervisor` skill
logged in to the same campaign; the *supervisor queue* is those of them who are READY, longest
idle first, unless the request names one. The runtime says who has the skill (`supervisors`
on each request: profiles are the runtime's), so the decision stays here.

*Cold*: the supervisor is reserved for the call and the customer is moved from the agent's
bridge to the supervisor's (`TransferCall`). Once the runtime reports the move done, the agent
goes to wrap-up and the supervisor is ON_CALL with the call: it is theirs now (its end puts
them in wrap-up; the attempt keeps the first agent in `agent_id`).

*Warm*: the supervisor is reserved, the customer is put on hold (a holding bridge with music)
and the supervisor's phone joins the agent's bridge (`StartConsult`): agent and supervisor
talk. Then `join` brings the customer back (a three-way call; the supervisor is ON_CALL);
`handover` moves the customer and the supervisor's phone to the supervisor's bridge and the
agent goes to wrap-up, as cold; `cancel` sends the supervisor's phone home and the customer back
to the agent (from a three-way call: the supervisor leaves, to wrap-up).

    cold:  TRANSFERRING --done--> closed (transferred)
    warm:  CONSULT_STARTING --done--> CONSULTING --join--> JOINING --done--> JOINED
           CONSULTING | JOINED --handover--> HANDING_OVER --done--> closed (handed_over)
           CONSULTING | JOINED --cancel--> CANCELLING --done--> closed (cancelled | joined)
    TRANSFERRING | CONSULT_STARTING --failed--> closed (failed); other stages --failed--> back
    the customer hangs up --> closed (call_ended); the agent leaves --> handed over to the
    supervisor; the supervisor leaves --> the customer goes back to the agent (supervisor_left)

*Supervision* (`MonitorStart`, one session per supervisor): listen = a snoop channel spying on
both directions of the customer's channel, put in the supervisor's bridge (they hear both
sides, nobody hears them); whisper = a snoop on the agent's phone channel spying on both
directions and whispering out (only the agent hears the supervisor); barge = the supervisor's
phone joins the agent's bridge. The supervisor is RESERVED for the call while listening or
whispering (no call is offered to them) and ON_CALL while barging (wrap-up after).

Every escalation and supervision session is an `EscalationRecord` on the call's attempt.
A bad request raises `EscalationError` (a stable `code`) before anything changes; the API runs
the same checks (`check_escalate`, `check_step`, `check_monitor`) to answer 4xx.

*Feature codes* on the agent's phone (`FeatureKeys`): `*` then a digit within
`FEATURE_TIMEOUT` seconds: `*8` cold, `*9` warm, then `*1` join, `*2` handover, `*0` cancel. A
digit without `*` stays a disposition code (dialer.core.campaign.PHONE_CODES).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from enum import StrEnum

from dialer.core.agent import Agent, AgentAction, AgentState
from dialer.core.campaign import (
    AgentLogout,
    AgentPhoneGone,
    Call,
    CallEnded,
    CallState,
    CampaignEngine,
    Command,
    Event,
    StartTimer,
    wrap_timer,
)
from dialer.core.model import EscalationRecord
from dialer.errors import DialerError

log = logging.getLogger(__name__)

SUPERVISOR_SKILL = "supervisor"


class EscalationMode(StrEnum):
    COLD = "cold"
    WARM = "warm"


class MonitorMode(StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


class Step(StrEnum):
    JOIN = "join"
    HANDOVER = "handover"
    CANCEL = "cancel"


class Stage(StrEnum):
    TRANSFERRING = "TRANSFERRING"
    CONSULT_STARTING = "CONSULT_STARTING"
    CONSULTING = "CONSULTING"
    JOINING = "JOINING"
    JOINED = "JOINED"
    HANDING_OVER = "HANDING_OVER"
    CANCELLING = "CANCELLING"


#: Stages where the runtime's work is in flight: no step is taken until it is done or failed.
PENDING = frozenset({Stage.TRANSFERRING, Stage.CONSULT_STARTING, Stage.JOINING,
                     Stage.HANDING_OVER, Stage.CANCELLING})
#: Which step each stable stage allows.
STEPS: dict[Step, frozenset[Stage]] = {
    Step.JOIN: frozenset({Stage.CONSULTING}),
    Step.HANDOVER: frozenset({Stage.CONSULTING, Stage.JOINED}),
    Step.CANCEL: frozenset({Stage.CONSULTING, Stage.JOINED}),
}
#: Stages in which the supervisor's phone is (or is being put) in the agent's bridge.
PHONE_AWAY = frozenset({Stage.CONSULT_STARTING, Stage.CONSULTING, Stage.JOINING, Stage.JOINED,
                        Stage.HANDING_OVER, Stage.CANCELLING})
#: Stages in which the customer may be in the holding bridge.
ON_HOLD = frozenset({Stage.CONSULT_STARTING, Stage.CONSULTING, Stage.JOINING,
                     Stage.HANDING_OVER, Stage.CANCELLING})


class EscalationError(DialerError):
    """A refused escalation or supervision request; nothing was changed. `code` is stable
    (the API maps it to an HTTP status)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------------------ events
@dataclass(frozen=True, slots=True)
class Escalate:
    """The agent asks for their call to go to a supervisor (`supervisor_id`, or the queue)."""

    now: float
    agent_id: str
    mode: str  # cold | warm
    supervisor_id: str | None = None
    supervisors: frozenset[str] = frozenset()  # agents with the supervisor skill (the runtime's)
    via: str = "api"


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """A warm escalation's next step: join, handover or cancel (by the agent or supervisor)."""

    now: float
    agent_id: str
    step: str
    via: str = "api"


@dataclass(frozen=True, slots=True)
class EscalationDone:
    """The runtime carried out the bridge work of `stage` for the call."""

    now: float
    call_id: str
    stage: Stage


@dataclass(frozen=True, slots=True)
class EscalationFailed:
    now: float
    call_id: str
    stage: Stage
    reason: str


@dataclass(frozen=True, slots=True)
class MonitorStart:
    now: float
    supervisor_id: str
    agent_id: str
    mode: str  # listen | whisper | barge
    supervisors: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class MonitorStarted:
    now: float
    supervisor_id: str


@dataclass(frozen=True, slots=True)
class MonitorFailed:
    now: float
    supervisor_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class MonitorStop:
    now: float
    supervisor_id: str


EscalationEvent = (
    Escalate | EscalationStep | EscalationDone | EscalationFailed | MonitorStart | MonitorStarted
    | MonitorFailed | MonitorStop
)
AnyEvent = Event | EscalationEvent


# ---------------------------------------------------------------------------------- commands
@dataclass(frozen=True, slots=True)
class TransferCall:
    """Cold: move the customer from the agent's bridge to the supervisor's."""

    call_id: str
    agent_id: str
    supervisor_id: str


@dataclass(frozen=True, slots=True)
class StartConsult:
    """Warm: the customer to a holding bridge, the supervisor's phone into the agent's bridge."""

    call_id: str
    agent_id: str
    supervisor_id: str


@dataclass(frozen=True, slots=True)
class JoinCall:
    """Warm: the customer back from hold into the agent's bridge (three-way)."""

    call_id: str
    agent_id: str
    supervisor_id: str


@dataclass(frozen=True, slots=True)
class HandOver:
    """The customer and the supervisor's phone into the supervisor's bridge; hold ended."""

    call_id: str
    agent_id: str
    supervisor_id: str


@dataclass(frozen=True, slots=True)
class CancelConsult:
    """The supervisor's phone home; the customer back into the agent's bridge (`bring_back`:
    from hold or the supervisor's bridge; not from a three-way call, where they are already
    there); hold ended."""

    call_id: str
    agent_id: str
    supervisor_id: str
    bring_back: bool = True


@dataclass(frozen=True, slots=True)
class ReturnPhone:
    """The supervisor's phone back into their own bridge (if it is still up)."""

    supervisor_id: str


@dataclass(frozen=True, slots=True)
class EndHold:
    """Remove the call's holding bridge (if any)."""

    call_id: str


@dataclass(frozen=True, slots=True)
class StartMonitor:
    supervisor_id: str
    agent_id: str
    call_id: str
    mode: MonitorMode


@dataclass(frozen=True, slots=True)
class StopMonitor:
    supervisor_id: str
    mode: MonitorMode


EscalationCommand = (
    TransferCall | StartConsult | JoinCall | HandOver | CancelConsult | ReturnPhone | EndHold
    | StartMonitor | StopMonitor
)
ESCALATION_COMMANDS = (TransferCall, StartConsult, JoinCall, HandOver, CancelConsult,
                       ReturnPhone, EndHold, StartMonitor, StopMonitor)
AnyCommand = Command | EscalationCommand
#: The stage whose work each command carries out (what `EscalationDone` reports).
COMMAND_STAGE: dict[type, Stage] = {
    TransferCall: Stage.TRANSFERRING, StartConsult: Stage.CONSULT_STARTING,
    JoinCall: Stage.JOINING, HandOver: Stage.HANDING_OVER, CancelConsult: Stage.CANCELLING,
}


# ------------------------------------------------------------------------------------- state
@dataclass(slots=True)
class Escalation:
    call_id: str
    agent_id: str
    supervisor_id: str
    mode: EscalationMode
    stage: Stage
    record: int  # index in the attempt's escalations
    previous: Stage | None = None  # the stable stage a pending step started from


@dataclass(slots=True)
class Monitor:
    supervisor_id: str
    agent_id: str
    call_id: str
    mode: MonitorMode
    record: int
    started: bool = False


# ----------------------------------------------------------------------------- feature codes
FEATURE_PREFIX = "*"
FEATURE_TIMEOUT = 3.0  # seconds from `*` to the feature's digit
FEATURE_CODES: dict[str, str] = {"8": EscalationMode.COLD, "9": EscalationMode.WARM,
                                 "1": Step.JOIN, "2": Step.HANDOVER, "0": Step.CANCEL}


@dataclass
class FeatureKeys:
    """Two-key feature codes on agents' phones: `*` and a digit. `press` says what a key is:
    a feature name (cold, warm, join, handover, cancel), "" for a key that belongs to a
    feature code but completes none (the `*`, an unknown code), None for a plain digit (a
    disposition code, as before)."""

    started: dict[str, float] = field(default_factory=dict)  # agent id -> when `*` was keyed

    def press(self, agent_id: str, digit: str, now: float) -> str | None:
        if digit == FEATURE_PREFIX:
            self.started[agent_id] = now
            return ""
        at = self.started.pop(agent_id, None)
        if at is None or now - at > FEATURE_TIMEOUT:
            return None
        return str(FEATURE_CODES.get(digit, ""))

    def forget(self, agent_id: str) -> None:
        self.started.pop(agent_id, None)


# -------------------------------------------------------------------------------------- desk
@dataclass
class EscalationDesk:
    """The escalations and supervision sessions of one campaign, deciding over its engine's
    agents and calls. `handle` takes every event of the campaign: its own, and the engine's
    (passed on to the engine after what a hang-up or logout means for an escalation)."""

    engine: CampaignEngine
    by_call: dict[str, Escalation] = field(default_factory=dict)
    monitors: dict[str, Monitor] = field(default_factory=dict)  # by supervisor id
    keys: FeatureKeys = field(default_factory=FeatureKeys)

    def handle(self, event: AnyEvent) -> list[AnyCommand]:
        out: list[AnyCommand] = []
        match event:
            case Escalate():
                self._escalate(event, out)
            case EscalationStep():
                self._step(event, out)
            case EscalationDone():
                self._done(event, out)
            case EscalationFailed():
                self._failed(event, out)
            case MonitorStart():
                self._monitor(event, out)
            case MonitorStarted(now=now, supervisor_id=sid):
                self._monitor_started(sid, now, out)
            case MonitorFailed(now=now, supervisor_id=sid, reason=reason):
                monitor = self.monitors.get(sid)
                if monitor is not None and not monitor.started:
                    log.warning("supervisor %s: %s of agent %s failed: %s", sid,
                                monitor.mode.value, monitor.agent_id, reason)
                    self._end_monitor(monitor, now, out, "failed")
            case MonitorStop(now=now, supervisor_id=sid):
                monitor = self.monitors.get(sid)
                if monitor is None:
                    raise EscalationError("no_monitor", f"supervisor {sid} is not monitoring a "
                                                        "call")
                self._end_monitor(monitor, now, out, "stopped")
            case _:
                self._before(event, out)
                out.extend(self.engine.handle(event))
        return out

    # ---------------------------------------------------------------------------- queries
    def escalation_of(self, agent_id: str) -> Escalation | None:
        """The open escalation the agent takes part in (as agent or supervisor)."""
        for esc in self.by_call.values():
            if agent_id in (esc.agent_id, esc.supervisor_id):
                return esc
        return None

    def check_escalate(self, agent_id: str, mode: str, supervisor_id: str | None,
                       supervisors: frozenset[str]) -> tuple[Call, Agent]:
        """(the agent's call, the supervisor it would go to), or EscalationError."""
        if mode not in tuple(EscalationMode):
            raise EscalationError("bad_mode", f"unknown escalation mode {mode!r} (cold or warm)")
        if self.engine.spec.ring_agents:
            raise EscalationError("not_supported", "escalation needs nailed-up agents (campaign "
                                                   f"{self.engine.spec.id} rings agents per call)")
        call = self._talking(agent_id)
        if call.id in self.by_call:
            raise EscalationError("escalation_in_progress",
                                  f"call {call.id} is already being escalated")
        return call, self._pick(agent_id, supervisor_id, supervisors)

    def check_step(self, agent_id: str, step: str) -> Escalation:
        if step not in tuple(Step):
            raise EscalationError("bad_step", f"unknown step {step!r} (join, handover, cancel)")
        self._known(agent_id)
        esc = self.escalation_of(agent_id)
        if esc is None:
            raise EscalationError("no_escalation", f"agent {agent_id} has no escalation in "
                                                   "progress")
        if esc.mode is EscalationMode.COLD or esc.stage not in STEPS[Step(step)]:
            raise EscalationError("escalation_state", f"cannot {step} a {esc.mode.value} "
                                  f"escalation while {esc.stage.value}")
        return esc

    def check_monitor(self, supervisor_id: str, agent_id: str, mode: str,
                      supervisors: frozenset[str]) -> tuple[Call, Agent]:
        """(the call to monitor, the supervisor), or EscalationError."""
        if mode not in tuple(MonitorMode):
            raise EscalationError("bad_mode",
                                  f"unknown monitor mode {mode!r} (listen, whisper or barge)")
        if self.engine.spec.ring_agents:
            raise EscalationError("not_supported", "supervision needs nailed-up agents")
        if supervisor_id == agent_id:
            raise EscalationError("same_agent", f"{agent_id} cannot monitor their own call")
        supervisor = self._supervisor(supervisor_id, supervisors)
        if supervisor_id in self.monitors:
            raise EscalationError("monitor_in_progress", f"supervisor {supervisor_id} is "
                                  "already monitoring a call (stop it first)")
        call = self._talking(agent_id)
        if supervisor.state is not AgentState.READY:
            raise EscalationError("supervisor_busy", f"supervisor {supervisor_id} is "
                                  f"{supervisor.state.value}, not READY")
        return call, supervisor

    def _known(self, agent_id: str) -> Agent:
        agent = self.engine.agents.get(agent_id)
        if agent is None:
            raise EscalationError("agent_not_logged_in", f"agent {agent_id} is not logged in "
                                  f"to campaign {self.engine.spec.id}")
        return agent

    def _talking(self, agent_id: str) -> Call:
        """The call the agent is on and owns, or EscalationError."""
        agent = self._known(agent_id)
        call = self.engine.calls.get(agent.call_id) if agent.call_id else None
        if agent.state is not AgentState.ON_CALL or call is None \
                or call.state is not CallState.TALKING or call.agent_id != agent_id:
            raise EscalationError("no_call", f"agent {agent_id} is not on a call of their own")
        return call

    def _supervisor(self, supervisor_id: str, supervisors: frozenset[str]) -> Agent:
        supervisor = self.engine.agents.get(supervisor_id)
        if supervisor is None:
            raise EscalationError("supervisor_not_logged_in", f"supervisor {supervisor_id} is "
                                  f"not logged in to campaign {self.engine.spec.id}")
        if supervisor_id not in supervisors:
            raise EscalationError("not_a_supervisor", f"agent {supervisor_id} does not have the "
                                  f"{SUPERVISOR_SKILL} skill")
        return supervisor

    def _pick(self, agent_id: str, supervisor_id: str | None,
              supervisors: frozenset[str]) -> Agent:
        """The named supervisor if READY, else the READY supervisor idle longest."""
        if supervisor_id is not None:
            if supervisor_id == agent_id:
                raise EscalationError("same_agent", f"{agent_id} cannot escalate to themselves")
            supervisor = self._supervisor(supervisor_id, supervisors)
            if supervisor.state is not AgentState.READY:
                raise EscalationError("supervisor_busy", f"supervisor {supervisor_id} is "
                                      f"{supervisor.state.value}, not READY")
            return supervisor
        for agent in self.engine.ready_agents():  # longest idle first
            if agent.id in supervisors and agent.id != agent_id:
                return agent
        raise EscalationError("no_supervisor_free", "no supervisor is READY in campaign "
                              f"{self.engine.spec.id}")

    # ------------------------------------------------------------------------ escalations
    def _escalate(self, event: Escalate, out: list[AnyCommand]) -> None:
        call, supervisor = self.check_escalate(event.agent_id, event.mode, event.supervisor_id,
                                               event.supervisors)
        now, aid, sid = event.now, event.agent_id, supervisor.id
        mode = EscalationMode(event.mode)
        self._agent(supervisor, AgentAction.RESERVE, now, out, call_id=call.id)
        record = self._add_record(call, EscalationRecord(
            at=now, kind=mode.value, agent_id=aid, supervisor_id=sid, via=event.via), out)
        if mode is EscalationMode.COLD:
            esc = Escalation(call.id, aid, sid, mode, Stage.TRANSFERRING, record)
            out.append(TransferCall(call.id, aid, sid))
        else:
            esc = Escalation(call.id, aid, sid, mode, Stage.CONSULT_STARTING, record)
            out.append(StartConsult(call.id, aid, sid))
        self.by_call[call.id] = esc
        log.info("call %s: agent %s escalates %s to supervisor %s (%s)", call.id, aid,
                 mode.value, sid, event.via)

    def _step(self, event: EscalationStep, out: list[AnyCommand]) -> None:
        esc = self.check_step(event.agent_id, event.step)
        step = Step(event.step)
        esc.previous = esc.stage
        c, a, s = esc.call_id, esc.agent_id, esc.supervisor_id
        match step:
            case Step.JOIN:
                esc.stage = Stage.JOINING
                out.append(JoinCall(c, a, s))
            case Step.HANDOVER:
                esc.stage = Stage.HANDING_OVER
                out.append(HandOver(c, a, s))
            case Step.CANCEL:
                esc.stage = Stage.CANCELLING
                out.append(CancelConsult(c, a, s, bring_back=esc.previous is not Stage.JOINED))
        log.info("call %s: escalation %s -[%s by %s]-> %s", c, esc.previous.value, step.value,
                 event.agent_id, esc.stage.value)

    def _done(self, event: EscalationDone, out: list[AnyCommand]) -> None:
        esc = self.by_call.get(event.call_id)
        if esc is None or esc.stage is not event.stage:
            return  # closed meanwhile (hang-up, logout): nothing left to do
        now = event.now
        match event.stage:
            case Stage.TRANSFERRING:
                self._hand_over(esc, now, out, "transferred")
            case Stage.HANDING_OVER:
                self._hand_over(esc, now, out, "handed_over")
            case Stage.CONSULT_STARTING:
                esc.stage = Stage.CONSULTING
                self._update_record(esc.call_id, esc.record, out, outcome="consulted",
                                    outcome_at=now)
            case Stage.JOINING:
                esc.stage = Stage.JOINED
                supervisor = self.engine.agents.get(esc.supervisor_id)
                if supervisor is not None and supervisor.state is AgentState.RESERVED:
                    self._agent(supervisor, AgentAction.CONNECTED, now, out)
                self._update_record(esc.call_id, esc.record, out, outcome="joined",
                                    outcome_at=now)
            case Stage.CANCELLING:
                joined = esc.previous is Stage.JOINED
                self._close(esc, now, out, None if joined else "cancelled")
            case Stage.CONSULTING | Stage.JOINED:
                pass

    def _failed(self, event: EscalationFailed, out: list[AnyCommand]) -> None:
        esc = self.by_call.get(event.call_id)
        if esc is None or esc.stage is not event.stage:
            return
        log.warning("call %s: escalation %s failed: %s", esc.call_id, event.stage.value,
                    event.reason)
        if event.stage in (Stage.TRANSFERRING, Stage.CONSULT_STARTING):
            self._close(esc, event.now, out, "failed")
        elif esc.previous is not None:
            esc.stage, esc.previous = esc.previous, None  # as before the step: try again

    def _hand_over(self, esc: Escalation, now: float, out: list[AnyCommand],
                   outcome: str) -> None:
        """The call is the supervisor's now; the agent goes to wrap-up."""
        del self.by_call[esc.call_id]
        call = self.engine.calls.get(esc.call_id)
        supervisor = self.engine.agents.get(esc.supervisor_id)
        if call is None or supervisor is None:
            return
        if supervisor.state is AgentState.RESERVED:
            self._agent(supervisor, AgentAction.CONNECTED, now, out)
        agent = self.engine.agents.get(esc.agent_id)
        if agent is not None and agent.call_id == call.id and agent.state is AgentState.ON_CALL:
            self._agent(agent, AgentAction.CALL_ENDED, now, out)
            out.append(StartTimer(wrap_timer(agent.id), now + self.engine.spec.wrapup))
        call.agent_id = supervisor.id
        self._update_record(call.id, esc.record, out, outcome=outcome, outcome_at=now,
                            ended_at=now)
        log.info("call %s: now with supervisor %s (%s)", call.id, supervisor.id, outcome)
        # A supervision of the agent on this call has nothing left to watch.
        for monitor in [m for m in self.monitors.values()
                        if m.call_id == call.id and m.agent_id == esc.agent_id]:
            self._end_monitor(monitor, now, out, "call_moved")

    def _close(self, esc: Escalation, now: float, out: list[AnyCommand],
               outcome: str | None) -> None:
        """The escalation ends with the call back with (or still with) the agent: the
        supervisor is released (READY) or, from a three-way call, goes to wrap-up."""
        self.by_call.pop(esc.call_id, None)
        self._release(esc.supervisor_id, esc.call_id, now, out)
        changes: dict[str, object] = {"ended_at": now}
        if outcome is not None:
            changes.update(outcome=outcome, outcome_at=now)
        self._update_record(esc.call_id, esc.record, out, **changes)

    def _release(self, supervisor_id: str, call_id: str, now: float,
                 out: list[AnyCommand]) -> None:
        supervisor = self.engine.agents.get(supervisor_id)
        if supervisor is None or supervisor.call_id != call_id:
            return
        if supervisor.state is AgentState.RESERVED:
            self._agent(supervisor, AgentAction.RELEASE, now, out)
            core: list[Command] = []
            self.engine._offer_waiting(now, core)  # a waiting customer may take them now
            out.extend(core)
        elif supervisor.state is AgentState.ON_CALL:
            self._agent(supervisor, AgentAction.CALL_ENDED, now, out)
            out.append(StartTimer(wrap_timer(supervisor_id), now + self.engine.spec.wrapup))

    # ------------------------------------------------------------------------ supervision
    def _monitor(self, event: MonitorStart, out: list[AnyCommand]) -> None:
        call, supervisor = self.check_monitor(event.supervisor_id, event.agent_id, event.mode,
                                              event.supervisors)
        mode = MonitorMode(event.mode)
        self._agent(supervisor, AgentAction.RESERVE, event.now, out, call_id=call.id)
        record = self._add_record(call, EscalationRecord(
            at=event.now, kind=mode.value, agent_id=event.agent_id,
            supervisor_id=supervisor.id), out)
        self.monitors[supervisor.id] = Monitor(supervisor.id, event.agent_id, call.id, mode,
                                               record)
        out.append(StartMonitor(supervisor.id, event.agent_id, call.id, mode))
        log.info("call %s: supervisor %s %s agent %s", call.id, supervisor.id, mode.value,
                 event.agent_id)

    def _monitor_started(self, supervisor_id: str, now: float, out: list[AnyCommand]) -> None:
        monitor = self.monitors.get(supervisor_id)
        if monitor is None or monitor.started:
            return
        monitor.started = True
        supervisor = self.engine.agents.get(supervisor_id)
        if monitor.mode is MonitorMode.BARGE and supervisor is not None \
                and supervisor.state is AgentState.RESERVED:
            self._agent(supervisor, AgentAction.CONNECTED, now, out)
        self._update_record(monitor.call_id, monitor.record, out, outcome="started",
                            outcome_at=now)

    def _end_monitor(self, monitor: Monitor, now: float, out: list[AnyCommand],
                     outcome: str) -> None:
        del self.monitors[monitor.supervisor_id]
        out.append(StopMonitor(monitor.supervisor_id, monitor.mode))
        self._release(monitor.supervisor_id, monitor.call_id, now, out)
        self._update_record(monitor.call_id, monitor.record, out, outcome=outcome,
                            outcome_at=now, ended_at=now)

    # ------------------------------------------------- what hang-ups and logouts mean here
    def _before(self, event: Event, out: list[AnyCommand]) -> None:
        match event:
            case CallEnded(now=now, call_id=cid):
                esc = self.by_call.get(cid)
                if esc is not None:
                    if esc.stage in ON_HOLD:
                        out.append(EndHold(cid))
                    if esc.stage in PHONE_AWAY:
                        out.append(ReturnPhone(esc.supervisor_id))
                    self._close(esc, now, out, "call_ended" if esc.stage in PENDING
                                or esc.stage is Stage.CONSULTING else None)
                for monitor in [m for m in self.monitors.values() if m.call_id == cid]:
                    self._end_monitor(monitor, now, out, "call_ended")
            case AgentLogout(now=now, agent_id=aid) | AgentPhoneGone(now=now, agent_id=aid):
                self.keys.forget(aid)
                for esc in [e for e in self.by_call.values()
                            if aid in (e.agent_id, e.supervisor_id)]:
                    self._party_left(esc, aid, now, out)
                for monitor in [m for m in self.monitors.values()
                                if aid in (m.agent_id, m.supervisor_id)]:
                    left = "agent_left" if aid == monitor.agent_id else "supervisor_left"
                    self._end_monitor(monitor, now, out, left)
            case _:
                pass

    def _party_left(self, esc: Escalation, aid: str, now: float,
                    out: list[AnyCommand]) -> None:
        if aid == esc.supervisor_id:
            # The customer goes back to the agent (the supervisor's phone, if still up, home:
            # the engine then hangs it up with their logout).
            if esc.stage is not Stage.JOINED:
                out.append(CancelConsult(esc.call_id, esc.agent_id, esc.supervisor_id))
            self._close(esc, now, out, "supervisor_left" if esc.stage is not Stage.JOINED
                        else None)
            return
        # The agent left: the call goes to the supervisor, as a handover. A cold transfer's
        # move was already carried out (commands run before the next event).
        if esc.stage is not Stage.TRANSFERRING:
            out.append(HandOver(esc.call_id, esc.agent_id, esc.supervisor_id))
        self._hand_over(esc, now, out, "agent_left")

    # -------------------------------------------------------------------------- helpers
    def _agent(self, agent: Agent, action: AgentAction, now: float, out: list[AnyCommand],
               *, call_id: str | None = None) -> None:
        core: list[Command] = []
        self.engine._agent(agent, action, now, core, call_id=call_id)
        out.extend(core)

    def _add_record(self, call: Call, record: EscalationRecord, out: list[AnyCommand]) -> int:
        escalations = (*call.attempt.escalations, record)
        core: list[Command] = []
        self.engine._save(call, core, escalations=escalations)
        out.extend(core)
        return len(escalations) - 1

    def _update_record(self, call_id: str, index: int, out: list[AnyCommand],
                       **changes: object) -> None:
        call = self.engine.calls.get(call_id)
        if call is None or index >= len(call.attempt.escalations):
            return
        records = list(call.attempt.escalations)
        records[index] = replace(records[index], **changes)  # type: ignore[arg-type]
        core: list[Command] = []
        self.engine._save(call, core, escalations=tuple(records))
        out.extend(core)
