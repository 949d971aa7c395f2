"""One campaign's decisions: which calls to place, what to do when they answer, which agent
takes them, and what each attempt's record and lead become. Pure: `handle(event)` returns a
list of commands; time comes in on the events; call ids come from an injected factory.

Theory of operation
-------------------
*Pacing.* On every `Tick` the pacer (dialer.core.pacing) looks at a snapshot (ready and busy
agents, calls ringing and waiting, the abandon budget, free channels) and says how many calls
to place; a token bucket holds the trunk's calls-per-second. The engine asks the runtime to
`ClaimLeads`; the store hands out leads atomically and they come back as `LeadsClaimed`. A
claimed lead outside its calling window or on a DNC list is released (rescheduled or marked),
never dialed.

*A call* goes DIALING -> (answer) -> [AMD] -> WAITING -> CONNECTING -> TALKING -> ended, or
WAITING -> SAFE_HARBOR (not connected within `connect_limit` of the end of the greeting: the
call is abandoned, the safe-harbor message plays, its opt-out key adds the number to DNC), or
AMD -> MESSAGE / hang-up for machines, or it ends unanswered with a classified outcome.
With AMD off, the greeting is taken to end at answer. The 2-second clock is a `StartTimer`
command; its `TimerFired` event abandons the call if it is still waiting.

*Agents* follow dialer.core.agent. A human who answers is connected to the READY agent who has
waited longest; an agent who becomes READY takes the call that has waited longest.

*Matching* (the spec's ``matching:`` rules, dialer.routing.matching; agents' profiles come on
`AgentLogin`): a human goes to the best-scoring READY agent allowed to take them (required
attributes must match; nobody allowed ready: they wait, within the connect limit, then safe
harbor), and waiting humans are served longest first, each by their best agent. With
required attributes the pacer is asked once per group of leads (`_pace_groups`) and the
claim names each group's share; a lead no logged-in agent may take is given back with a
delay, never dialed.

*Records.* Every attempt is saved when placed and when anything changes (`SaveAttempt`), and
its lead is updated by the retry rules when it ends (`SaveLead`). Counts of live humans and
abandoned calls feed the pacer's abandon budget.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from enum import StrEnum

from dialer.core.agent import Agent, AgentAction, AgentState, AgentTransitionError
from dialer.core.model import AmdMode, Attempt, AttemptResult, CampaignSpec, DialMode, Lead, LeadState
from dialer.core.outcome import DialOutcome
from dialer.core.pacing import Pacer, PacingSnapshot, RateLimiter, make_pacer
from dialer.core.retry import after_attempt, dialable
from dialer.core.roster import Roster
from dialer.core.window import next_window_open
from dialer.routing.grouped import GroupLoad, group_snapshot
from dialer.routing.matching import (
    NO_AGENT,
    GroupKey,
    MatchRules,
    assign_pools,
    assign_waiting,
    best_agent,
    compatible,
    group_key,
    trim_quota,
)
from dialer.routing.profiles import AgentProfile

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------ events
@dataclass(frozen=True, slots=True)
class Tick:
    now: float


@dataclass(frozen=True, slots=True)
class LeadsClaimed:
    now: float
    requested: int
    leads: tuple[tuple[Lead, bool, str], ...]  # (lead, on a DNC list, call id to use)


@dataclass(frozen=True, slots=True)
class LeadsAvailable:
    now: float
    count: int
    # With matching rules that require attributes: dialable leads per group (the store's
    # scan of the first leads in claim order, `dialer.routing.matching.count_groups`).
    groups: tuple[tuple[GroupKey, int], ...] = ()


@dataclass(frozen=True, slots=True)
class AbandonStats:
    """The campaign's measuring window as stored: 30 days, or today in UK mode."""

    now: float
    abandoned: int
    humans: int
    machines: int = 0


@dataclass(frozen=True, slots=True)
class CallAnswered:
    now: float
    call_id: str


@dataclass(frozen=True, slots=True)
class AmdDone:
    now: float
    call_id: str
    status: str  # HUMAN, MACHINE, NOTSURE, HANGUP
    cause: str = ""


@dataclass(frozen=True, slots=True)
class CallBridged:
    now: float
    call_id: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    now: float
    call_id: str
    outcome: DialOutcome
    cause: int | None


@dataclass(frozen=True, slots=True)
class DigitPressed:
    now: float
    call_id: str
    digit: str


@dataclass(frozen=True, slots=True)
class PlaybackDone:
    now: float
    call_id: str


@dataclass(frozen=True, slots=True)
class TimerFired:
    now: float
    key: str


@dataclass(frozen=True, slots=True)
class AgentLogin:
    now: float
    agent_id: str
    profile: AgentProfile | None = None  # for matching; None: no attributes


@dataclass(frozen=True, slots=True)
class AgentPhoneAnswered:
    now: float
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentPhoneGone:
    now: float
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentPause:
    now: float
    agent_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class AgentResume:
    now: float
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentLogout:
    now: float
    agent_id: str


@dataclass(frozen=True, slots=True)
class Disposition:
    now: float
    agent_id: str
    disposition: str
    callback_at: float | None = None


@dataclass(frozen=True, slots=True)
class SetRunning:
    now: float
    running: bool


@dataclass(frozen=True, slots=True)
class PreviewDial:
    """Preview mode: the agent asks for the call to their previewed lead to be placed."""

    now: float
    agent_id: str


@dataclass(frozen=True, slots=True)
class PreviewSkip:
    """Preview mode: the agent passes on their previewed lead (it is dialed later)."""

    now: float
    agent_id: str


@dataclass(frozen=True, slots=True)
class InboundOffer:
    """An inbound caller (an IVR queue) is offered to this campaign's agent: blended work.
    The engine reserves the agent if they are still READY, else refuses."""

    now: float
    call_id: str  # the caller's channel
    agent_id: str


@dataclass(frozen=True, slots=True)
class InboundBridged:
    now: float
    call_id: str


@dataclass(frozen=True, slots=True)
class InboundEnded:
    """The inbound caller left the agent (hung up, or was never bridged)."""

    now: float
    call_id: str


Event = (
    Tick | LeadsClaimed | LeadsAvailable | AbandonStats | CallAnswered | AmdDone | CallBridged
    | CallEnded | DigitPressed | PlaybackDone | TimerFired | AgentLogin | AgentPhoneAnswered
    | AgentPhoneGone | AgentPause | AgentResume | AgentLogout | Disposition | SetRunning
    | PreviewDial | PreviewSkip | InboundOffer | InboundBridged | InboundEnded
)


# ---------------------------------------------------------------------------------- commands
@dataclass(frozen=True, slots=True)
class ClaimLeads:
    """Claim `count` leads to dial. With matching rules (`groups` not empty): that many of
    each group, in the store's order; plus `release` leads of groups no logged-in agent may
    take, which come back in `LeadsClaimed` only to be given back with a delay."""

    count: int
    groups: tuple[tuple[GroupKey, int], ...] = ()
    release: tuple[tuple[GroupKey, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Originate:
    call_id: str
    lead_id: str
    endpoint: str
    caller_id: str
    ring_timeout: float


@dataclass(frozen=True, slots=True)
class RunAmd:
    call_id: str


@dataclass(frozen=True, slots=True)
class ConnectAgent:
    call_id: str
    agent_id: str
    record: bool


@dataclass(frozen=True, slots=True)
class PlaySafeHarbor:
    call_id: str


@dataclass(frozen=True, slots=True)
class LeaveMessage:
    call_id: str


@dataclass(frozen=True, slots=True)
class RunAgentless:
    call_id: str


@dataclass(frozen=True, slots=True)
class Hangup:
    call_id: str


@dataclass(frozen=True, slots=True)
class StartTimer:
    key: str
    at: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    key: str


@dataclass(frozen=True, slots=True)
class SaveAttempt:
    attempt: Attempt


@dataclass(frozen=True, slots=True)
class SaveLead:
    lead: Lead


@dataclass(frozen=True, slots=True)
class AddDnc:
    number: str
    campaign_id: str


@dataclass(frozen=True, slots=True)
class CallAgentPhone:
    agent_id: str


@dataclass(frozen=True, slots=True)
class HangupAgentPhone:
    agent_id: str


@dataclass(frozen=True, slots=True)
class SaveAgent:
    agent: Agent


@dataclass(frozen=True, slots=True)
class StartRecording:
    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class StopRecording:
    call_id: str


@dataclass(frozen=True, slots=True)
class PlayRingback:
    """Preview mode: the agent's (nailed-up) phone hears ringing while their call is dialed."""

    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class StopRingback:
    call_id: str


@dataclass(frozen=True, slots=True)
class ConnectInbound:
    """Add the inbound caller to the agent's bridge (the agent is reserved for them)."""

    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class InboundRefused:
    """The agent offered an inbound caller was not free: the caller stays in the queue."""

    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class ApplyDisposition:
    attempt_id: str
    agent_id: str
    disposition: str
    callback_at: float | None


Command = (
    ClaimLeads | Originate | RunAmd | ConnectAgent | PlaySafeHarbor | LeaveMessage | RunAgentless
    | Hangup | StartTimer | CancelTimer | SaveAttempt | SaveLead | AddDnc | CallAgentPhone
    | HangupAgentPhone | SaveAgent | ApplyDisposition | StartRecording | StopRecording
    | PlayRingback | StopRingback | ConnectInbound | InboundRefused
)


# ------------------------------------------------------------------------------------- calls
class CallState(StrEnum):
    PREVIEW = "PREVIEW"  # preview mode: lead claimed and shown to its agent, not dialed yet
    DIALING = "DIALING"
    AMD = "AMD"
    WAITING = "WAITING"  # a human on the line, no agent yet: the 2-second clock runs
    CONNECTING = "CONNECTING"  # an agent is reserved, the bridge add is in progress
    TALKING = "TALKING"
    SAFE_HARBOR = "SAFE_HARBOR"
    MESSAGE = "MESSAGE"  # leaving a message on a machine
    AGENTLESS = "AGENTLESS"  # an outbound flow runs (agentless mode)
    HANGING_UP = "HANGING_UP"


@dataclass(slots=True)
class Call:
    id: str
    lead: Lead
    attempt: Attempt
    state: CallState = CallState.DIALING
    agent_id: str | None = None
    human: bool = False
    result: AttemptResult | None = None  # decided before the channel ends (abandoned, ...)


def connect_timer(call_id: str) -> str:
    return f"connect:{call_id}"


def wrap_timer(agent_id: str) -> str:
    return f"wrap:{agent_id}"


@dataclass
class CampaignEngine:
    spec: CampaignSpec
    pacer: Pacer | None = None
    running: bool = False
    calls: dict[str, Call] = field(default_factory=dict)
    agents: Roster = field(default_factory=Roster)  # by id, indexed by state (dialer.core.roster)
    waiting: list[str] = field(default_factory=list)  # call ids, longest waiting first
    claims_pending: int = 0
    leads_available: int = 0
    abandoned: int = 0  # in the measuring window (loaded from the store, then counted)
    humans: int = 0
    machines: int = 0
    # Since this engine started, never re-read: people reached, abandoned, AMD machine
    # verdicts (`PacingSnapshot.people_reached`; the window's counts above are re-read).
    reached_total: int = 0
    abandoned_total: int = 0
    machines_total: int = 0
    limiter: RateLimiter | None = None
    # Inbound (IVR queue) calls given to our agents: call id -> agent id, until wrap-up ends.
    inbound: dict[str, str] = field(default_factory=dict)
    # Dispositions set during a call: call id -> (agent, disposition, callback time).
    pending_dispositions: dict[str, tuple[str, str, float | None]] = field(default_factory=dict)
    # Matching (spec.matching): logged-in agents' profiles, and dialable leads per group.
    profiles: dict[str, AgentProfile] = field(default_factory=dict)
    group_leads: dict[GroupKey, int] = field(default_factory=dict)
    release_due: bool = False  # give back leads nobody may take, once per LeadsAvailable

    def __post_init__(self) -> None:
        if not isinstance(self.agents, Roster):  # a plain dict of agents given
            self.agents = Roster(self.agents)
        if self.pacer is None:
            self.pacer = make_pacer(self.spec.dial_mode, power_ratio=self.spec.power_ratio,
                                    abandon_target=self.spec.abandon_target)
        if self.limiter is None:
            # Up to one second of calls at once: carriers count calls per second.
            self.limiter = RateLimiter(cps=self.spec.max_cps, burst=max(1.0, self.spec.max_cps))

    # ---------------------------------------------------------------------------- queries
    def ready_agents(self) -> list[Agent]:
        """READY agents, longest waiting first (kept in order by the roster)."""
        return self.agents.ready()

    def snapshot(self, now: float) -> PacingSnapshot:
        agents = self.agents
        busy = tuple(now - since for since in agents.busy_since())
        wrapping = tuple(now - since for since in agents.wrapping_since())
        # Calls whose outcome is still open count as ringing: being dialed, or answered and
        # still in AMD (each may yet become a person who needs an agent). The pacer also gets
        # how long each dialed call has rung: one that has rung well past the usual answer time
        # is most likely a no-answer (docs/PACING_BENCH.md). Claims not yet dialed are fresh.
        calls = self.calls.values()
        dialing = CallState.DIALING
        ages = [now - c.attempt.originated_at for c in calls if c.state is dialing]
        in_amd = 0 if self.spec.amd is AmdMode.OFF else \
            sum(1 for c in calls if c.state is CallState.AMD)
        ringing = len(ages) + in_amd + self.claims_pending
        in_progress = len(self.calls) + self.claims_pending
        estimated = math.ceil(self._false_positives(self.machines_total))
        return PacingSnapshot(
            now=now,
            ready_agents=agents.ready_count,
            busy_agents=busy,
            wrapping_agents=wrapping,
            calls_ringing=ringing,
            calls_waiting=len(self.waiting),
            abandoned_in_window=self.abandoned + math.ceil(self.estimated_false_positives),
            humans_in_window=self.humans + math.ceil(self.estimated_false_positives),
            leads_available=max(0, self.leads_available - self.claims_pending),
            channels_free=max(0, self.spec.max_channels - in_progress),
            ringing_ages=tuple(ages),
            calls_in_amd=in_amd,
            estimated_abandons=math.ceil(self.estimated_false_positives),
            people_reached=self.reached_total + estimated,
            people_abandoned=self.abandoned_total + estimated,
        )

    @property
    def estimated_false_positives(self) -> float:
        """UK mode: people AMD took for machines, counted as abandoned (Ofcom)."""
        return self._false_positives(self.machines)

    def _false_positives(self, machines: int) -> float:
        if not self.spec.uk_mode or self.spec.amd is AmdMode.OFF:
            return 0.0
        return self.spec.amd_false_positive_rate * machines

    @property
    def abandon_rate(self) -> float:
        extra = self.estimated_false_positives
        humans = self.humans + extra
        return (self.abandoned + extra) / humans if humans else 0.0

    # ----------------------------------------------------------------------------- events
    def handle(self, event: Event) -> list[Command]:
        out: list[Command] = []
        match event:
            case Tick(now=now):
                self._pace(now, out)
            case SetRunning(running=running):
                self.running = running
            case LeadsAvailable(count=count, groups=groups):
                self.leads_available = count
                self.group_leads = dict(groups)
                self.release_due = True
            case AbandonStats(abandoned=abandoned, humans=humans, machines=machines):
                self.abandoned, self.humans, self.machines = abandoned, humans, machines
            case LeadsClaimed():
                self._claimed(event, out)
            case CallAnswered(now=now, call_id=cid):
                self._answered(cid, now, out)
            case AmdDone():
                self._amd_done(event, out)
            case CallBridged(now=now, call_id=cid):
                self._bridged(cid, now, out)
            case CallEnded():
                self._ended(event, out)
            case DigitPressed(call_id=cid, digit=digit):
                call = self.calls.get(cid)
                if call and call.state in (CallState.SAFE_HARBOR, CallState.AGENTLESS) \
                        and digit == self.spec.safe_harbor.optout_key:
                    out.append(AddDnc(call.lead.phone, self.spec.id))
                    call.lead = replace(call.lead, state=LeadState.DNC)
            case PlaybackDone(call_id=cid):
                call = self.calls.get(cid)
                if call and call.state in (CallState.SAFE_HARBOR, CallState.MESSAGE,
                                           CallState.AGENTLESS):
                    self._set(call, CallState.HANGING_UP, "PlaybackDone")
                    out.append(Hangup(cid))
            case TimerFired(now=now, key=key):
                self._timer(key, now, out)
            case AgentLogin(now=now, agent_id=aid, profile=profile):
                self.profiles[aid] = profile or AgentProfile(aid, aid)
                agent = self.agents.get(aid, Agent(aid))
                self._agent(agent, AgentAction.LOGIN, now, out)
                if self.spec.ring_agents:  # no nailed-up leg: their phone rings per call
                    self._agent(self.agents[aid], AgentAction.PHONE_UP, now, out)
                    self._offer_waiting(now, out)
                else:
                    out.append(CallAgentPhone(aid))
            case AgentPhoneAnswered(now=now, agent_id=aid):
                known = self.agents.get(aid)
                if known is not None and known.state is AgentState.CONNECTING:
                    self._agent(self.agents[aid], AgentAction.PHONE_UP, now, out)
                    self._offer_waiting(now, out)
            case AgentPhoneGone(now=now, agent_id=aid) if self.spec.ring_agents:
                self._agent_leg_gone(aid, now, out)
            case AgentPhoneGone(now=now, agent_id=aid) | AgentLogout(now=now, agent_id=aid):
                self._logout(aid, now, out)
            case AgentPause(now=now, agent_id=aid, reason=reason):
                self._agent(self._known(aid), AgentAction.PAUSE, now, out, reason=reason)
            case AgentResume(now=now, agent_id=aid):
                self._agent(self._known(aid), AgentAction.RESUME, now, out)
                self._offer_waiting(now, out)
            case Disposition():
                self._disposition(event, out)
            case PreviewDial(now=now, agent_id=aid):
                self._preview_dial(aid, now, out)
            case PreviewSkip(now=now, agent_id=aid):
                self._preview_skip(aid, now, out)
            case InboundOffer() | InboundBridged() | InboundEnded():
                self._inbound(event, out)
        return out

    def preview_of(self, agent_id: str) -> Call | None:
        """The agent's previewed call (lead shown, not dialed yet), if any."""
        agent = self.agents.get(agent_id)
        call = self.calls.get(agent.call_id) if agent and agent.call_id else None
        return call if call is not None and call.state is CallState.PREVIEW else None

    # ----------------------------------------------------------------------------- pacing
    @property
    def pacing_idle(self) -> bool:
        """A `Tick` now would do nothing and change nothing: the campaign is not running, or
        nobody is ready in a mode that dials only for a ready agent (`_pace` returns before it
        asks the pacer or the limiter). A driver may leave such ticks out."""
        return not self.running or (self.spec.dial_mode is not DialMode.AGENTLESS
                                    and self.agents.ready_count == 0)

    def _pace(self, now: float, out: list[Command]) -> None:
        if not self.running:
            return
        if self.spec.dial_mode is DialMode.PREVIEW:
            self._claim_previews(now, out)
            return
        assert self.pacer is not None
        assert self.limiter is not None
        snap = self.snapshot(now)
        if snap.ready_agents == 0 and self.spec.dial_mode is not DialMode.AGENTLESS:
            # Never dial while no agent is ready (progressive, power and predictive alike):
            # the predictive look-ahead for agents about to be free applies once one is idle.
            return
        rules = self.matching
        if rules is not None and rules.required and self.spec.dial_mode is not DialMode.AGENTLESS:
            self._pace_groups(rules, snap, now, out)
            return
        wanted = self.pacer.decide(snap)
        wanted = min(wanted, snap.leads_available, snap.channels_free)
        count = self.limiter.allow(now, wanted) if wanted > 0 else 0
        if count > 0:
            self.claims_pending += count
            out.append(ClaimLeads(count))

    def _pace_groups(self, rules: MatchRules, snap: PacingSnapshot, now: float,
                     out: list[Command]) -> None:
        """Matching with required attributes: leads come in groups (their values of the
        required attributes) that only some agents may take. Each logged-in agent paces with
        one group (`assign_pools`: a bilingual agent with the group where agents are scarcest
        for its leads) and the pacer is asked once per group with that group's agents, calls
        and humans waiting (the campaign's abandon window, leads and channels), never for a
        group with nobody ready: a pooled count would price the abandon risk as if anyone
        could take any answer (measured in dialer.sim.matching). Groups no logged-in agent
        may take are not dialed: some of their leads are claimed to be given back with a
        delay (`NO_AGENT`), so they stop filling the store's scan."""
        assert self.pacer is not None
        assert self.limiter is not None
        leads = {k: n for k, n in self.group_leads.items() if n > 0}
        logged = [self.profile(aid) for aid in self.agents]
        blocked = {k: n for k, n in leads.items() if not any(compatible(k, p) for p in logged)}
        keys = sorted(k for k in leads if k not in blocked)
        pools = assign_pools(keys, logged, {k: float(leads[k]) for k in keys})
        loads = self._group_loads(rules, keys, pools, now)
        quota: dict[GroupKey, int] = {}
        for key in keys:
            load = loads[key]
            if load.ready == 0:
                continue
            n = min(self.pacer.decide(group_snapshot(snap, load)), leads[key])
            if n > 0:
                quota[key] = n
        wanted = min(sum(quota.values()), snap.leads_available, snap.channels_free)
        count = self.limiter.allow(now, wanted) if wanted > 0 else 0
        release = tuple((k, min(n, RELEASE_BATCH)) for k, n in sorted(blocked.items())) \
            if self.release_due else ()
        if count == 0 and not release:
            return
        groups = trim_quota(quota, count)
        for key, n in groups.items():
            self.group_leads[key] = max(0, self.group_leads.get(key, 0) - n)
        self.claims_pending += count
        if release:
            self.release_due = False
        out.append(ClaimLeads(count, tuple(sorted(groups.items())), release))

    def _group_loads(self, rules: MatchRules, keys: list[GroupKey], pools: dict[str, GroupKey],
                     now: float) -> dict[GroupKey, GroupLoad]:
        """Each group's share of the pacing snapshot: its pool's agents by state, and its
        calls ringing (with their ages), in AMD and waiting."""
        ready = dict.fromkeys(keys, 0)
        busy: dict[GroupKey, list[float]] = {k: [] for k in keys}
        wrapping: dict[GroupKey, list[float]] = {k: [] for k in keys}
        for agent in self.agents.values():
            key = pools.get(agent.id)
            if key is None:
                continue
            if agent.state is AgentState.READY:
                ready[key] += 1
            elif agent.state in (AgentState.RESERVED, AgentState.ON_CALL):
                busy[key].append(now - agent.since)
            elif agent.state is AgentState.WRAP_UP:
                wrapping[key].append(now - agent.since)
        ages: dict[GroupKey, list[float]] = {k: [] for k in keys}
        in_amd = dict.fromkeys(keys, 0)
        waiting = dict.fromkeys(keys, 0)
        amd = self.spec.amd is not AmdMode.OFF
        for call in self.calls.values():
            key = group_key(rules, dict(call.lead.attributes))
            if key not in ready:
                continue
            if call.state is CallState.DIALING:
                ages[key].append(now - call.attempt.originated_at)
            elif call.state is CallState.AMD and amd:
                in_amd[key] += 1
            elif call.state is CallState.WAITING:
                waiting[key] += 1
        return {k: GroupLoad(ready[k], tuple(busy[k]), tuple(wrapping[k]), tuple(ages[k]),
                             in_amd[k], waiting[k]) for k in keys}

    # --------------------------------------------------------------------------- matching
    @property
    def matching(self) -> MatchRules | None:
        """The campaign's matching rules, or None when it has none (any agent, any lead)."""
        rules = self.spec.matching
        return None if rules.unconstrained else rules

    def profile(self, agent_id: str) -> AgentProfile:
        """A logged-in agent's routing profile (one without attributes if none was given)."""
        return self.profiles.get(agent_id) or AgentProfile(agent_id, agent_id)

    def _choose(self, lead: Lead, ready: list[Agent]) -> Agent | None:
        """The READY agent to take `lead`: the longest waiting; with matching rules, the
        best-scoring one of those allowed to take it (ties: the longest waiting). None:
        nobody ready may take it."""
        rules = self.matching
        if rules is None:
            return ready[0] if ready else None
        order = {a.id: float(i) for i, a in enumerate(ready)}  # ready() is longest first
        best = best_agent(rules, dict(lead.attributes), [self.profile(a.id) for a in ready],
                          order)
        return None if best is None else self.agents[best.id]

    def _takeable(self, lead: Lead) -> bool:
        """Some logged-in agent may take the lead (always, without required attributes)."""
        rules = self.matching
        if rules is None or not rules.required:
            return True
        key = group_key(rules, dict(lead.attributes))
        return any(compatible(key, self.profile(aid)) for aid in self.agents)

    def _offer_waiting_matched(self, rules: MatchRules, now: float, out: list[Command]) -> None:
        """Humans waiting, longest first, each to the best ready agent allowed to take them;
        one nobody ready may take keeps waiting without holding up those behind it."""
        self.waiting = [cid for cid in self.waiting
                        if (c := self.calls.get(cid)) is not None and c.state is CallState.WAITING]
        ready = self.ready_agents()
        if not self.waiting or not ready:
            return
        waiting = [(cid, dict(self.calls[cid].lead.attributes)) for cid in self.waiting]
        order = {a.id: float(i) for i, a in enumerate(ready)}
        for cid, aid in assign_waiting(rules, waiting, [self.profile(a.id) for a in ready], order):
            self.waiting.remove(cid)
            self._connect(self.calls[cid], self.agents[aid], now, out)

    def _claim_previews(self, now: float, out: list[Command]) -> None:
        """Preview: claim one lead for each READY agent who has none (a READY agent has no
        reserved call); the lead is reserved for its agent when it comes back."""
        assert self.limiter is not None
        wanted = min(len(self.ready_agents()) - self.claims_pending,
                     self.leads_available - self.claims_pending)
        count = self.limiter.allow(now, wanted) if wanted > 0 else 0
        if count > 0:
            self.claims_pending += count
            out.append(ClaimLeads(count))

    def _claimed(self, event: LeadsClaimed, out: list[Command]) -> None:
        now = event.now
        self.claims_pending = max(0, self.claims_pending - event.requested)
        window = (self.spec.window_start, self.spec.window_end)
        # Matching: leads claimed to be given back may have become takeable meanwhile (an
        # agent logged in); they must not add calls beyond what was paced.
        room = event.requested if self.matching is not None else len(event.leads)
        for lead, on_dnc, call_id in event.leads:
            reason = dialable(replace(lead, state=LeadState.READY), now=now, on_dnc=on_dnc,
                              window=window)
            if reason == "dnc":
                out.append(SaveLead(replace(lead, state=LeadState.DNC)))
                continue
            if reason == "outside_window":
                at = next_window_open(lead.timezones, now, *window)
                out.append(SaveLead(replace(lead, state=LeadState.READY, next_at=at)))
                continue
            if reason is not None:
                out.append(SaveLead(replace(lead, state=LeadState.READY)))
                continue
            if not self._takeable(lead):
                # Matching: no logged-in agent may take it. Not dialed; back after a delay.
                log.info("lead %s: not dialed (%s)", lead.id, NO_AGENT)
                out.append(SaveLead(replace(lead, state=LeadState.READY,
                                            next_at=now + NO_AGENT_DELAY)))
                continue
            if room <= 0:
                out.append(SaveLead(replace(lead, state=LeadState.READY)))
                continue
            room -= 1
            attempt = Attempt(id=call_id, campaign_id=self.spec.id, lead_id=lead.id,
                              phone=lead.phone, originated_at=now)
            if self.spec.dial_mode is DialMode.PREVIEW:
                self._preview(Call(call_id, lead, attempt, CallState.PREVIEW), now, out)
                continue
            self.calls[call_id] = Call(call_id, lead, attempt)
            log.info("call %s: placed to lead %s", call_id, lead.id)
            out.append(SaveAttempt(attempt))
            out.append(Originate(call_id, lead.id, self.spec.trunk.format(number=lead.phone),
                                 self.spec.caller_id, max(15.0, self.spec.ring_timeout)))

    # ------------------------------------------------------------------------------ calls
    def _set(self, call: Call, state: CallState, why: str) -> None:
        log.info("call %s: %s -[%s]-> %s", call.id, call.state.value, why, state.value)
        call.state = state

    def _save(self, call: Call, out: list[Command], **changes: object) -> None:
        call.attempt = replace(call.attempt, **changes)  # type: ignore[arg-type]
        out.append(SaveAttempt(call.attempt))

    def _answered(self, cid: str, now: float, out: list[Command]) -> None:
        call = self.calls.get(cid)
        if call is None or call.state is not CallState.DIALING:
            return
        assert self.pacer is not None
        self.pacer.observe_dial(now - call.attempt.originated_at, True,
                                originated_at=call.attempt.originated_at)
        self._save(call, out, answered_at=now)
        if call.agent_id is not None:  # preview: the agent heard it ring
            out.append(StopRingback(cid))
        if self.spec.amd is not AmdMode.OFF:
            self._set(call, CallState.AMD, "CallAnswered")
            out.append(RunAmd(cid))
            return
        self._human(call, now, out)

    def _amd_done(self, event: AmdDone, out: list[Command]) -> None:
        call = self.calls.get(event.call_id)
        if call is None or call.state is not CallState.AMD:
            return
        assert self.pacer is not None
        now = event.now
        machine = event.status == "MACHINE"
        self.pacer.observe_human(not machine)
        self._save(call, out, amd_status=event.status, amd_done_at=now)
        if not machine:  # HUMAN and NOTSURE go to a person: a false "machine" is worse
            self._human(call, now, out)
            return
        call.result = AttemptResult.MACHINE
        self.machines_total += 1
        self.machines += 1
        if self.spec.amd is AmdMode.MESSAGE:
            self._set(call, CallState.MESSAGE, "AmdDone(MACHINE)")
            out.append(LeaveMessage(call.id))
        else:
            self._set(call, CallState.HANGING_UP, "AmdDone(MACHINE)")
            out.append(Hangup(call.id))

    def _human(self, call: Call, now: float, out: list[Command]) -> None:
        call.human = True
        self.humans += 1
        self.reached_total += 1
        if call.attempt.amd_done_at is None:
            self._save(call, out, amd_done_at=now)  # greeting taken to end at answer
        if self.spec.dial_mode is DialMode.AGENTLESS:
            call.result = AttemptResult.AGENTLESS
            self._set(call, CallState.AGENTLESS, "human")
            out.append(RunAgentless(call.id))
            return
        reserved = self.agents.get(call.agent_id) if call.agent_id else None
        if reserved is not None and reserved.state is AgentState.RESERVED \
                and reserved.call_id == call.id:
            # Preview: the agent asked for this call and waits for it; nobody else takes it.
            self._set(call, CallState.CONNECTING, f"agent {reserved.id} waiting")
            self._save(call, out, agent_id=reserved.id)
            out.append(ConnectAgent(call.id, reserved.id, self.spec.recording))
            return
        call.agent_id = None
        agent = self._choose(call.lead, self.ready_agents())
        if agent is not None:
            self._connect(call, agent, now, out)
        else:
            self._set(call, CallState.WAITING, "human, no agent ready")
            self.waiting.append(call.id)
        out.append(StartTimer(connect_timer(call.id), now + self.spec.connect_limit))

    def _connect(self, call: Call, agent: Agent, now: float, out: list[Command]) -> None:
        self._agent(agent, AgentAction.RESERVE, now, out, call_id=call.id)
        call.agent_id = agent.id
        self._set(call, CallState.CONNECTING, f"agent {agent.id} reserved")
        self._save(call, out, agent_id=agent.id)
        out.append(ConnectAgent(call.id, agent.id, self.spec.recording))

    def _offer_waiting(self, now: float, out: list[Command]) -> None:
        rules = self.matching
        if rules is not None:
            self._offer_waiting_matched(rules, now, out)
            return
        while self.waiting:
            ready = self.ready_agents()
            if not ready:
                return
            call = self.calls.get(self.waiting.pop(0))
            if call is not None and call.state is CallState.WAITING:
                self._connect(call, ready[0], now, out)

    def _bridged(self, cid: str, now: float, out: list[Command]) -> None:
        call = self.calls.get(cid)
        if call is None or call.state is not CallState.CONNECTING or call.agent_id is None:
            return
        self._set(call, CallState.TALKING, "CallBridged")
        call.result = AttemptResult.TALKED
        out.append(CancelTimer(connect_timer(cid)))
        if self.spec.recording:
            # Files are named by call id, in Asterisk's recording directory.
            self._save(call, out, connected_at=now, recording=f"{cid}.wav")
            out.append(StartRecording(cid, call.agent_id))
        else:
            self._save(call, out, connected_at=now)
        self._agent(self.agents[call.agent_id], AgentAction.CONNECTED, now, out)

    def _timer(self, key: str, now: float, out: list[Command]) -> None:
        kind, _, ident = key.partition(":")
        if kind == "connect":
            call = self.calls.get(ident)
            if call is not None and call.state is CallState.CONNECTING and self.spec.ring_agents \
                    and call.agent_id is not None:
                # Ring-per-call: the agent's phone did not answer within the limit. The call is
                # abandoned like any other; the agent is paused (a missed call).
                out.append(HangupAgentPhone(call.agent_id))  # stop their phone ringing
                self._missed(call, now, out)
                call.agent_id = None
                self.waiting.append(call.id)
            if call is None or call.state is not CallState.WAITING:
                return  # connected in time (or gone)
            self.waiting.remove(call.id)
            self.abandoned += 1
            self.abandoned_total += 1
            assert self.pacer is not None
            self.pacer.observe_abandon()
            call.result = AttemptResult.ABANDONED
            self._set(call, CallState.SAFE_HARBOR, "connect limit passed")
            out.append(PlaySafeHarbor(call.id))
        elif kind == "wrap":
            agent = self.agents.get(ident)
            if agent is not None and agent.state is AgentState.WRAP_UP:
                self._wrap_done(agent, now, out)
                self._offer_waiting(now, out)

    def _ended(self, event: CallEnded, out: list[Command]) -> None:
        call = self.calls.pop(event.call_id, None)
        if call is None:
            return
        now = event.now
        assert self.pacer is not None
        if call.state is CallState.DIALING:
            self.pacer.observe_dial(now - call.attempt.originated_at, False,
                                    originated_at=call.attempt.originated_at)
            if call.agent_id is not None:
                out.append(StopRingback(call.id))
        if call.id in self.waiting:
            self.waiting.remove(call.id)
        out.append(CancelTimer(connect_timer(call.id)))
        if call.attempt.recording is not None:
            out.append(StopRecording(call.id))
        result = call.result
        if result is None:
            if call.human or call.state is CallState.AMD:
                result = AttemptResult.HUNG_UP_EARLY
            else:
                result = AttemptResult.from_dial(event.outcome)
        if call.state is CallState.WAITING and call.human:
            # Hung up while waiting for an agent: not connected in time from their side.
            result = AttemptResult.HUNG_UP_EARLY
        self._set(call, CallState.HANGING_UP if call.state is not CallState.HANGING_UP
                  else call.state, f"CallEnded({event.outcome.value})")
        if call.agent_id is not None and call.agent_id in self.agents:
            agent = self.agents[call.agent_id]
            if agent.call_id == call.id:
                if self.spec.ring_agents:
                    out.append(HangupAgentPhone(agent.id))  # their leg ends with the call
                if agent.state is AgentState.ON_CALL:
                    self.pacer.observe_talk(now - (call.attempt.connected_at or now))
                    self._agent(agent, AgentAction.CALL_ENDED, now, out)
                    out.append(StartTimer(wrap_timer(agent.id), now + self.spec.wrapup))
                elif agent.state is AgentState.RESERVED:
                    self._agent(agent, AgentAction.CALL_ENDED, now, out)
                    self._offer_waiting(now, out)
        self._save(call, out, ended_at=now, result=result, cause=event.cause)
        if call.lead.state is LeadState.DNC:
            out.append(SaveLead(call.lead))
        else:
            out.append(SaveLead(after_attempt(call.lead, result, now=now, rules=self.spec.retry,
                                              uk_mode=self.spec.uk_mode)))
        pending = self.pending_dispositions.pop(call.id, None)
        if pending is not None:
            aid, disposition, callback_at = pending
            out.append(ApplyDisposition(call.id, aid, disposition, callback_at))
        log.info("call %s: ended %s (cause %s)", call.id, result.value, event.cause)

    # ----------------------------------------------------------------------------- agents
    def _known(self, aid: str) -> Agent:
        agent = self.agents.get(aid)
        if agent is None:
            raise AgentTransitionError(f"agent {aid} is not logged in to campaign {self.spec.id}")
        return agent

    def _agent(self, agent: Agent, action: AgentAction, now: float, out: list[Command], *,
               call_id: str | None = None, reason: str | None = None) -> None:
        updated = agent.apply(action, now, call_id=call_id, reason=reason)
        if updated.state is not agent.state:
            log.info("agent %s: %s -[%s]-> %s", agent.id, agent.state.value, action.value,
                     updated.state.value)
        self.agents[agent.id] = updated
        out.append(SaveAgent(updated))

    def _inbound(self, event: InboundOffer | InboundBridged | InboundEnded,
                 out: list[Command]) -> None:
        now = event.now
        match event:
            case InboundOffer(call_id=cid, agent_id=aid):
                agent = self.agents.get(aid)
                if agent is None or agent.state is not AgentState.READY or self.spec.ring_agents:
                    out.append(InboundRefused(cid, aid))
                    return
                self.inbound[cid] = aid
                self._agent(agent, AgentAction.RESERVE, now, out, call_id=cid)
                out.append(ConnectInbound(cid, aid))
            case InboundBridged(call_id=cid):
                agent = self.agents.get(self.inbound.get(cid, ""))
                if agent is not None and agent.call_id == cid \
                        and agent.state is AgentState.RESERVED:
                    self._agent(agent, AgentAction.CONNECTED, now, out)
            case InboundEnded(call_id=cid):
                agent = self.agents.get(self.inbound.get(cid, ""))
                if agent is None or agent.call_id != cid:
                    self.inbound.pop(cid, None)
                    return
                if agent.state is AgentState.ON_CALL:
                    self._agent(agent, AgentAction.CALL_ENDED, now, out)
                    out.append(StartTimer(wrap_timer(agent.id), now + self.spec.wrapup))
                elif agent.state is AgentState.RESERVED:
                    self.inbound.pop(cid, None)
                    self._agent(agent, AgentAction.CALL_ENDED, now, out)
                    self._offer_waiting(now, out)

    def _wrap_done(self, agent: Agent, now: float, out: list[Command]) -> None:
        assert self.pacer is not None
        if agent.call_id is not None:
            self.inbound.pop(agent.call_id, None)
        self.pacer.observe_wrap(now - agent.since)
        self._agent(agent, AgentAction.WRAP_DONE, now, out)

    def _logout(self, aid: str, now: float, out: list[Command]) -> None:
        agent = self.agents.get(aid)
        if agent is None:
            return
        if agent.call_id and agent.call_id in self.calls:
            call = self.calls[agent.call_id]
            if call.state is CallState.PREVIEW:  # never dialed: the lead goes back as it was
                del self.calls[call.id]
                out.append(SaveLead(replace(call.lead, state=LeadState.READY)))
            elif call.state is CallState.DIALING:
                call.agent_id = None  # preview: an answer goes to whoever is ready
                out.append(StopRingback(call.id))
            elif call.state is CallState.CONNECTING:
                # The agent left before the customer reached them: find someone else.
                call.agent_id = None
                self._set(call, CallState.WAITING, "agent logged out")
                self.waiting.insert(0, call.id)
        self._agent(agent, AgentAction.LOGOUT, now, out)
        del self.agents[aid]
        out.append(HangupAgentPhone(aid))
        out.append(CancelTimer(wrap_timer(aid)))
        self._offer_waiting(now, out)

    # ---------------------------------------------------------------------------- preview
    def _preview(self, call: Call, now: float, out: list[Command]) -> None:
        """Reserve a claimed lead for the READY agent waiting longest, or give it back."""
        agent = self._choose(call.lead, self.ready_agents())
        if agent is None:
            out.append(SaveLead(replace(call.lead, state=LeadState.READY)))
            return
        self.calls[call.id] = call
        call.agent_id = agent.id
        self._agent(agent, AgentAction.RESERVE, now, out, call_id=call.id)
        log.info("call %s: lead %s previewed by agent %s", call.id, call.lead.id, agent.id)

    def _previewed(self, aid: str) -> tuple[Agent, Call]:
        agent = self._known(aid)
        call = self.preview_of(aid)
        if call is None:
            raise AgentTransitionError(f"agent {aid} has no previewed lead")
        return agent, call

    def _preview_dial(self, aid: str, now: float, out: list[Command]) -> None:
        _, call = self._previewed(aid)
        self._set(call, CallState.DIALING, f"agent {aid} dials")
        call.attempt = replace(call.attempt, originated_at=now, agent_id=aid)
        out.append(SaveAttempt(call.attempt))
        out.append(Originate(call.id, call.lead.id, self.spec.trunk.format(number=call.lead.phone),
                             self.spec.caller_id, max(15.0, self.spec.ring_timeout)))
        out.append(PlayRingback(call.id, aid))

    def _preview_skip(self, aid: str, now: float, out: list[Command]) -> None:
        agent, call = self._previewed(aid)
        del self.calls[call.id]
        out.append(SaveLead(replace(call.lead, state=LeadState.READY,
                                    next_at=now + PREVIEW_SKIP_DELAY)))
        self._agent(agent, AgentAction.RELEASE, now, out)

    # -------------------------------------------------------------------- ring-per-call
    def _missed(self, call: Call, now: float, out: list[Command]) -> None:
        """The agent rung for `call` did not take it: paused, so they are not rung again
        until they say they are ready; the call waits for someone else."""
        agent = self.agents.get(call.agent_id or "")
        if agent is not None and agent.state is AgentState.RESERVED and agent.call_id == call.id:
            self._agent(agent, AgentAction.PAUSE, now, out, reason="missed call")
            self._agent(self.agents[agent.id], AgentAction.RELEASE, now, out)
        self._set(call, CallState.WAITING, "agent's phone did not answer")

    def _agent_leg_gone(self, aid: str, now: float, out: list[Command]) -> None:
        """Ring-per-call: the agent's phone leg ended (refused, unanswered, or hung up)."""
        agent = self.agents.get(aid)
        call = self.calls.get(agent.call_id) if agent and agent.call_id else None
        if call is None:
            return
        if call.state is CallState.CONNECTING and call.agent_id == aid:
            self._missed(call, now, out)
            call.agent_id = None
            self.waiting.insert(0, call.id)
            self._offer_waiting(now, out)
        elif call.state is CallState.TALKING:  # the agent hung up: the call is over
            self._set(call, CallState.HANGING_UP, "agent hung up")
            out.append(Hangup(call.id))

    def _disposition(self, event: Disposition, out: list[Command]) -> None:
        agent = self._known(event.agent_id)
        if agent.state not in (AgentState.WRAP_UP, AgentState.ON_CALL) or agent.call_id is None:
            raise AgentTransitionError(f"agent {agent.id} has no call to set a disposition on")
        if agent.call_id in self.inbound:
            pass  # an inbound (IVR queue) call has no attempt: the disposition ends wrap-up
        elif agent.state is AgentState.ON_CALL or agent.call_id in self.calls:
            # Set during the call (or in wrap-up while the call goes on with a supervisor it
            # was escalated to): applied once the call has ended and its attempt and lead
            # are saved (`_ended`), or that save would overwrite it.
            self.pending_dispositions[agent.call_id] = (agent.id, event.disposition,
                                                        event.callback_at)
        else:
            # The attempt and lead were saved when the call ended; the runtime, which holds
            # the store, applies the disposition to them (`with_disposition`).
            out.append(ApplyDisposition(agent.call_id, agent.id, event.disposition,
                                        event.callback_at))
        if agent.state is AgentState.WRAP_UP:
            out.append(CancelTimer(wrap_timer(agent.id)))
            self._wrap_done(agent, event.now, out)
            self._offer_waiting(event.now, out)


#: Preview: a skipped lead is offered again after this many seconds (not straight back).
PREVIEW_SKIP_DELAY = 3600.0

#: Matching: a lead no logged-in agent may take is offered again after this many seconds.
NO_AGENT_DELAY = 300.0

#: Matching: at most this many leads of a group nobody may take are given back per claim.
RELEASE_BATCH = 50

#: Disposition codes an agent keys on the phone's keypad during the call or wrap-up.
PHONE_CODES: dict[str, str] = {"1": "sale", "2": "no_sale", "3": "not_interested", "4": "dnc",
                               "5": "wrong_number", "6": "answering_machine", "9": "other"}

DISPOSITIONS = frozenset({"sale", "no_sale", "callback", "dnc", "wrong_number", "other",
                          "not_interested", "answering_machine"})


def with_disposition(lead: Lead, disposition: str, callback_at: float | None) -> Lead:
    """The lead after an agent's disposition: DNC, a callback at a time, or unchanged."""
    if disposition == "dnc":
        return replace(lead, state=LeadState.DNC)
    if disposition == "callback" and callback_at is not None:
        return replace(lead, state=LeadState.READY, next_at=callback_at)
    if disposition == "wrong_number":
        return replace(lead, state=LeadState.DONE)
    return lead
