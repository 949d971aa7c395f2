"""A discrete-event simulator that drives the campaign core on virtual time.

Theory of operation
-------------------
The simulator is the second driver of `dialer.core.campaign.CampaignEngine` (the first is the
asyncio runtime, dialer.runner): it feeds the engine the same events the runtime translates from
ARI and the store, and carries out the engine's commands against a simulated telephone network,
agents and lead store instead of Asterisk and Redis. All decisions — pacing, lead checks, the
call and agent state machines, the 2-second rule, retries — are the core's; nothing here
decides how many calls to place.

One heap of (time, seq, kind, ...) entries is the clock. Like the runtime, each campaign gets a
`Tick` every `TICK` s, a `LeadsAvailable` every `LEADS_REFRESH` s and an `AbandonStats` (the
store's day buckets for the last 30 days, or today in UK mode) every `STATS_REFRESH` s. Commands
come back and are executed in order, in simulated form:

    ClaimLeads     -> leads from the in-memory pool (store order), LeadsClaimed after 5 ms
    Originate      -> the customer's outcome is drawn now: CallAnswered after the ring time,
                      or CallEnded busy / failed / no answer
    RunAmd         -> AmdDone after the greeting, with the AMD's (possibly wrong) verdict
    ConnectAgent   -> CallBridged after 50 ms; the customer then talks and hangs up (CallEnded)
    PlaySafeHarbor -> PlaybackDone after the message (and maybe the opt-out key first)
    LeaveMessage   -> PlaybackDone after the message
    Hangup         -> CallEnded after 50 ms
    StartTimer / CancelTimer -> heap entries, invalidated by a token
    CallAgentPhone -> AgentPhoneAnswered after 2 s
    SaveAgent / SaveAttempt  -> the metrics ledger; SaveLead -> back into the pool
    AddDnc, ApplyDisposition, StartRecording, StopRecording, HangupAgentPhone -> recorded only

Randomness: customer outcomes are drawn from a stream seeded by (seed, campaign, lead, attempt
number), so every policy meets the same customers in the same order of leads (common random
numbers: comparisons between policies are paired); agents' wrap-ups and breaks from per-agent
streams. The same seed gives the same run, bit for bit.

Several campaigns may share one clock (matched sub-pools: each group of agents is a campaign of
its own with its own leads, since the core has no agent-lead matching).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from heapq import heappop, heappush
from typing import Any
from zoneinfo import ZoneInfo

from dialer.core.agent import AgentState
from dialer.core.campaign import (
    AbandonStats,
    AddDnc,
    AgentLogin,
    AgentLogout,
    AgentPause,
    AgentPhoneAnswered,
    AgentResume,
    AmdDone,
    ApplyDisposition,
    CallAgentPhone,
    CallAnswered,
    CallBridged,
    CallEnded,
    CallState,
    CampaignEngine,
    CancelTimer,
    ClaimLeads,
    Command,
    ConnectAgent,
    DigitPressed,
    Disposition,
    Event,
    Hangup,
    HangupAgentPhone,
    LeadsAvailable,
    LeadsClaimed,
    LeaveMessage,
    Originate,
    PlaybackDone,
    PlaySafeHarbor,
    RunAgentless,
    RunAmd,
    SaveAgent,
    SaveAttempt,
    SaveLead,
    SetRunning,
    StartRecording,
    StartTimer,
    StopRecording,
    Tick,
    TimerFired,
)
from dialer.core.model import AmdMode, CampaignSpec, Lead, LeadState, RetryRules, SafeHarbor
from dialer.core.outcome import DialOutcome
from dialer.core.pacing import Estimator, Pacer, PredictivePacer
from dialer.core.window import in_window, parse_hhmm
from dialer.sim.metrics import (
    BIN,
    Ledger,
    RunResult,
    Series,
    percentile,
    rolling_worst,
    worst_counted_day,
    worst_rate,
)
from dialer.sim.policy import Policy
from dialer.sim.probe import AgentOracle, RingingProbe
from dialer.sim.scenario import Scenario

# The runtime's cadences (dialer.runner: TICK, LEADS_REFRESH, STATS_REFRESH); a test keeps
# them equal (the runtime's rounds are on a fixed grid too).
TICK = 0.25
LEADS_REFRESH = 2.0
STATS_REFRESH = 30.0

CLAIM_LATENCY = 0.005  # store round trip
CONNECT_LATENCY = 0.05  # bridge add of a nailed-up agent (BENCHMARKS.md: < 1 ms on loopback)
HANGUP_LATENCY = 0.05
PHONE_ANSWER = 2.0  # the agent picks up the login call
DRAIN = 40.0  # after the day's dialing stops, agents stay for the calls still ringing
RETRY_CHECK = 2.0  # a leaving agent who is still busy looks again after this
WRAP_LIMIT = 120.0  # the campaign's wrap-up timer: a backstop, agents key a disposition first
MACHINE_TALK = (5.0, 15.0)  # an agent who reaches a machine hangs up after this (uniform)

# Heap entry kinds.
_EVENT, _TIMER, _TICK, _LEADS, _STATS, _CLAIM, _LOGIN, _LEAVE, _PAUSE, _RESUME, _DISPO, \
    _DAY_START, _DAY_END = range(13)

_FAILED_CAUSES = {DialOutcome.BUSY: 17, DialOutcome.NO_ANSWER: 19, DialOutcome.CONGESTION: 34}
_BUSY_STATES = (AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP)


def _lognormal_params(mean: float, cv: float) -> tuple[float, float]:
    sigma2 = math.log1p(cv * cv)
    return math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2)


@dataclass(slots=True)
class _Call:
    """The simulator's side of one call: the customer's drawn behaviour."""

    desk: int
    human: bool
    machine: bool
    talk: float
    greeting: float
    verdict: str  # what AMD will say
    optout: bool
    ended: bool = False  # a CallEnded is scheduled or delivered
    recorded: bool = False
    ends_at: float | None = None  # when the talk ends, once the bridge is asked for


class LeadPool:
    """Leads in the store's claim order: fresh leads (imported at the start, next_at = start)
    first, then retries whose next_at has come, earliest first. Unlimited (`size` None): fresh
    leads never run out, so retries are only counted."""

    __slots__ = ("campaign_id", "fresh", "prefix", "retries", "retry_count", "seq", "size",
                 "start", "zones")

    def __init__(self, campaign_id: str, zone: str, size: int | None, start: float) -> None:
        self.campaign_id = campaign_id
        self.prefix = f"{campaign_id}-L"
        self.zones = (zone,)
        self.size = size
        self.start = start
        self.fresh = 0  # fresh leads handed out so far (= leads used)
        self.retries: list[tuple[float, int, Lead]] = []
        self.retry_count = 0
        self.seq = 0

    def index(self, lead: Lead) -> int:
        return int(lead.id[len(self.prefix):])

    def take(self, now: float) -> Lead | None:
        if self.size is None or self.fresh < self.size:
            i = self.fresh
            self.fresh += 1
            return Lead(id=f"{self.prefix}{i}", campaign_id=self.campaign_id,
                        phone=f"+1202{i:07d}"[-12:], timezones=self.zones,
                        state=LeadState.IN_PROGRESS, next_at=self.start)
        if self.retries and self.retries[0][0] <= now:
            return replace(heappop(self.retries)[2], state=LeadState.IN_PROGRESS)
        return None

    def put(self, lead: Lead) -> None:
        if lead.state is not LeadState.READY:
            return
        self.retry_count += 1
        if self.size is None:
            return  # never claimed before the endless fresh leads: not kept
        self.seq += 1
        heappush(self.retries, (max(lead.next_at, lead.lockout_until), self.seq, lead))

    def available(self, now: float) -> int:
        if self.size is None:
            return 10**9
        return self.size - self.fresh + sum(1 for t, _, _ in self.retries if t <= now)


@dataclass(slots=True)
class _Desk:
    """One campaign: the core engine, its leads, its agents, its timers."""

    index: int
    engine: CampaignEngine
    pool: LeadPool
    agents: list[str]
    timers: dict[str, int]
    base_seed: int
    cps: float
    claims: deque[tuple[float, int]]
    claimed_last_second: int = 0


def campaign_spec(scenario: Scenario, policy: Policy, campaign_id: str, cps: float,
                  channels: int) -> CampaignSpec:
    return CampaignSpec(
        id=campaign_id, name=campaign_id, dial_mode=policy.mode, trunk="SIM/{number}",
        caller_id="Sim <+15550100>",
        safe_harbor=SafeHarbor(seller="Sim", callback_number="+15550100"),
        power_ratio=policy.ratio, max_cps=cps, max_channels=channels, amd=scenario.amd,
        uk_mode=scenario.uk_mode, amd_false_positive_rate=scenario.amd_fp_estimate,
        wrapup=WRAP_LIMIT, window_start="08:00", window_end="21:00", retry=RetryRules())


class Simulator:
    """One run: a scenario, a policy, a seed. `run()` returns the measured `RunResult`.

    `pacer_factory` (optional) builds each campaign's pacer instead of the policy, for tests
    and experiments; it must return a `dialer.core.pacing` pacer."""

    def __init__(self, scenario: Scenario, policy: Policy, seed: int = 1, *, strict: bool = False,
                 series: bool = False,
                 pacer_factory: Callable[[CampaignSpec], Pacer] | None = None) -> None:
        self.scenario = scenario
        self.policy = policy
        self.seed = seed
        self.strict = strict
        self.want_series = series
        self.ledger = Ledger()
        self.heap: list[tuple[float, int, int, int, Any]] = []
        self.seq = 0
        self.now = 0.0
        self.events = 0
        self.calls: dict[str, _Call] = {}
        self.live_calls = 0
        self.call_seq = 0
        self.dnc: set[str] = set()
        self._pending: dict[str, Lead] = {}  # call id -> lead, while LeadsClaimed is handled
        # For `AgentOracle` only (kept when a campaign's pacer has one: `_knowing`): when
        # each agent in wrap-up keys the disposition, and when each agent is to go on a break,
        # step out or leave (when each call put through ends is `_Call.ends_at`).
        self._knowing = False
        self._dispo_at: dict[str, float] = {}
        self._away: dict[str, list[float]] = {}
        self.zone = ZoneInfo(scenario.zone)
        cust = scenario.customers
        self._ring = _lognormal_params(cust.ring_mean, 0.4)
        self._talk = _lognormal_params(cust.talk_mean, cust.talk_cv)
        self._live_const = cust.live if isinstance(cust.live, float | int) else None
        self.days = self._shifts()
        self.first_start = self.days[0][0]
        staff = scenario.staff
        cps, channels = scenario.carrier.sized(staff.agents, cust.live_mean)
        self.channels = channels
        groups = max(1, staff.groups)
        self.desks: list[_Desk] = []
        for g in range(groups):
            cid = f"sim{g}" if groups > 1 else "sim"
            spec = campaign_spec(scenario, policy, cid, cps / groups, max(1, channels // groups))
            pacer = pacer_factory(spec) if pacer_factory else \
                policy.pacer(spec, cust.live_mean, cust.machine)
            engine = CampaignEngine(spec, pacer=pacer)
            if isinstance(pacer, RingingProbe):
                pacer.truth = self._humans_to_come(engine)
            inner = getattr(pacer, "inner", pacer)  # a probe's pacer
            if isinstance(inner, PredictivePacer) and isinstance(inner.model, AgentOracle):
                self._knowing = True
                inner.model.free_times = _values(self.free_at(engine))
            size = None if scenario.leads is None else scenario.leads // groups
            agents = [f"{cid}-a{i}" for i in range(g, staff.agents, groups)]
            self.desks.append(_Desk(g, engine, LeadPool(cid, scenario.zone, size, self.first_start),
                                    agents, {}, (seed * 1_000_003 + g) << 34, spec.max_cps,
                                    deque()))
        self.agent_rng: dict[str, random.Random] = {}
        self._handlers: dict[type, Callable[[_Desk, Any], None]] = {
            ClaimLeads: self._claim, Originate: self._originate, RunAmd: self._amd,
            ConnectAgent: self._connect, PlaySafeHarbor: self._safe_harbor,
            LeaveMessage: self._message, RunAgentless: self._message, Hangup: self._hangup,
            StartTimer: self._start_timer, CancelTimer: self._cancel_timer,
            SaveAttempt: self._save_attempt, SaveLead: self._save_lead, AddDnc: self._add_dnc,
            CallAgentPhone: self._agent_phone, HangupAgentPhone: self._ignore,
            SaveAgent: self._save_agent, ApplyDisposition: self._ignore,
            StartRecording: self._ignore, StopRecording: self._ignore,
        }

    # --------------------------------------------------------------------------- calendar
    def _shifts(self) -> list[tuple[float, float]]:
        """(start, end of dialing) of each day's shift, POSIX seconds."""
        staff = self.scenario.staff
        minutes = parse_hhmm(staff.shift_start)
        out = []
        for d in range(self.scenario.days):
            day = self.scenario.start + timedelta(days=d)
            local = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60,
                             tzinfo=self.zone)
            start = local.timestamp()
            out.append((start, start + staff.shift_hours * 3600.0))
        return out

    def _push(self, t: float, kind: int, desk: int, payload: Any = None) -> None:
        self.seq += 1
        heappush(self.heap, (t, self.seq, kind, desk, payload))

    def _event(self, t: float, desk: int, event: Event) -> None:
        self.seq += 1
        heappush(self.heap, (t, self.seq, _EVENT, desk, event))

    # -------------------------------------------------------------------------------- run
    def run(self) -> RunResult:
        cpu0 = time.process_time()
        for day, (start, end) in enumerate(self.days):
            for desk in self.desks:
                self._push(start, _DAY_START, desk.index, day)
                self._push(end, _DAY_END, desk.index, day)
        handlers = self._handlers
        heap = self.heap
        desks = self.desks
        while heap:
            t, _, kind, d, payload = heappop(heap)
            self.now = t
            desk = desks[d]
            if kind == _EVENT:
                self._deliver(desk, payload, handlers)
            elif kind == _TICK:
                self._deliver(desk, Tick(t), handlers)
                if t + TICK < payload:
                    self._push(t + TICK, _TICK, d, payload)
            elif kind == _TIMER:
                key, token = payload
                if desk.timers.get(key) == token:
                    del desk.timers[key]
                    self._deliver(desk, TimerFired(t, key), handlers)
            elif kind == _CLAIM:
                self._claimed(desk, payload)
            elif kind == _LEADS:
                self._deliver(desk, LeadsAvailable(t, desk.pool.available(t)), handlers)
                if t + LEADS_REFRESH < payload:
                    self._push(t + LEADS_REFRESH, _LEADS, d, payload)
            elif kind == _STATS:
                abandoned, humans, machines = self.ledger.window_counts(t, self.scenario.uk_mode,
                                                                          desk.index)
                self._deliver(desk, AbandonStats(t, abandoned, humans, machines), handlers)
                if t + STATS_REFRESH < payload:
                    self._push(t + STATS_REFRESH, _STATS, d, payload)
            elif kind == _DISPO:
                self._disposition(desk, payload)
            elif kind == _LOGIN:
                self._login(desk, payload)
            elif kind == _LEAVE:
                self._leave(desk, payload)
            elif kind == _PAUSE:
                self._pause(desk, payload)
            elif kind == _RESUME:
                self._resume(desk, payload)
            elif kind == _DAY_START:
                self._day_start(desk, payload)
            elif kind == _DAY_END:
                self._deliver(desk, SetRunning(t, False), handlers)
                for aid in desk.agents:
                    self._push(t + DRAIN, _LEAVE, d, (aid, None))
        self.ledger.close_all(self.now)
        return self._result(time.process_time() - cpu0)

    def _deliver(self, desk: _Desk, event: Event,
                 handlers: dict[type, Callable[[_Desk, Any], None]]) -> None:
        self.events += 1
        for command in desk.engine.handle(event):
            handlers[type(command)](desk, command)
        if type(event) is CallBridged:
            self._bridged(desk, event)

    # ------------------------------------------------------------------------ the day
    def _day_start(self, desk: _Desk, day: int) -> None:
        start, end = self.days[day]
        t = start
        self._deliver(desk, SetRunning(t, True), self._handlers)
        self._push(t, _LEADS, desk.index, end)
        self._push(t, _STATS, desk.index, end)
        self._push(t + TICK, _TICK, desk.index, end)
        staff = self.scenario.staff
        length = end - start
        knowing = self._knowing
        for aid in desk.agents:
            rng = self._agent_rng(aid)
            away: list[float] = self._away.setdefault(aid, []) if knowing else []
            login = start + rng.uniform(0.0, 60.0)
            leave = end
            if staff.churn:
                login = start + rng.uniform(0.0, 2 * 3600.0) if rng.random() < 0.5 else login
                if rng.random() < 0.2:
                    leave = start + length * rng.uniform(0.5, 0.9)
                steps = rng.randint(0, 2)
                for _ in range(steps):
                    out = rng.uniform(login + 600.0, max(login + 601.0, leave - 1200.0))
                    self._push(out, _LEAVE, desk.index, (aid, out + rng.uniform(300.0, 1200.0)))
                    away.append(out)
            self._push(login, _LOGIN, desk.index, aid)
            away.append(end + DRAIN)  # `_DAY_END`'s leaving
            if leave < end:
                self._push(leave, _LEAVE, desk.index, (aid, None))
                away.append(leave)
            for _ in range(staff.breaks):
                at = rng.uniform(login + 1800.0, max(login + 1801.0, leave - 1800.0))
                self._push(at, _PAUSE, desk.index, (aid, staff.break_minutes * 60.0))
                away.append(at)

    def _agent_rng(self, aid: str) -> random.Random:
        rng = self.agent_rng.get(aid)
        if rng is None:
            rng = self.agent_rng[aid] = random.Random(f"{self.seed}:{aid}")
        return rng

    def _state(self, desk: _Desk, aid: str) -> AgentState:
        agent = desk.engine.agents.get(aid)
        return agent.state if agent is not None else AgentState.LOGGED_OUT

    def _login(self, desk: _Desk, aid: str) -> None:
        if self._state(desk, aid) is AgentState.LOGGED_OUT and self._on_shift():
            self._deliver(desk, AgentLogin(self.now, aid), self._handlers)

    def _on_shift(self) -> bool:
        return any(start <= self.now < end for start, end in self.days)

    def _leave(self, desk: _Desk, payload: tuple[str, float | None]) -> None:
        aid, back_at = payload
        agent = desk.engine.agents.get(aid)
        if agent is None:
            return
        if agent.state in _BUSY_STATES:
            if agent.pause_requested is None:
                self._deliver(desk, AgentPause(self.now, aid, "leaving"), self._handlers)
            self._push(self.now + RETRY_CHECK, _LEAVE, desk.index, payload)
            return
        self._deliver(desk, AgentLogout(self.now, aid), self._handlers)
        if back_at is not None:
            self._push(back_at, _LOGIN, desk.index, aid)

    def _pause(self, desk: _Desk, payload: tuple[str, float]) -> None:
        aid, seconds = payload
        state = self._state(desk, aid)
        if state is AgentState.READY or state in _BUSY_STATES:
            agent = desk.engine.agents[aid]
            if agent.pause_requested is None:
                self._deliver(desk, AgentPause(self.now, aid, "break"), self._handlers)
                self._push(self.now + seconds, _RESUME, desk.index, aid)

    def _resume(self, desk: _Desk, aid: str) -> None:
        agent = desk.engine.agents.get(aid)
        if agent is None:
            return
        if agent.state is AgentState.PAUSED and agent.pause_reason == "break":
            self._deliver(desk, AgentResume(self.now, aid), self._handlers)
        elif agent.pause_requested == "break":  # still finishing a call: back right after it
            self._push(self.now + RETRY_CHECK, _RESUME, desk.index, aid)

    def _disposition(self, desk: _Desk, payload: tuple[str, str]) -> None:
        aid, call_id = payload
        agent = desk.engine.agents.get(aid)
        if agent is not None and agent.state is AgentState.WRAP_UP and agent.call_id == call_id:
            self._deliver(desk, Disposition(self.now, aid, "no_sale"), self._handlers)

    # ----------------------------------------------------------------------- commands
    def _ignore(self, desk: _Desk, command: Command) -> None:
        pass

    def _claim(self, desk: _Desk, command: ClaimLeads) -> None:
        now, n = self.now, command.count
        ledger = self.ledger
        if ledger.ready_count(desk.index) == 0:
            ledger.claims_no_ready += n
        if ledger.available_count(desk.index) == 0:
            ledger.claims_no_agents += n
        # Carrier CPS: the engine's limiter promises at most burst + cps × t in any window t;
        # checked over every 1-s window ending at a claim (burst = max(1, cps)).
        claims = desk.claims
        claims.append((now, n))
        desk.claimed_last_second += n
        while claims[0][0] <= now - 1.0:
            desk.claimed_last_second -= claims.popleft()[1]
        if desk.claimed_last_second > max(1.0, desk.cps) + desk.cps + 1e-6:
            ledger.cps_excess += 1
        leads: list[tuple[Lead, bool, str]] = []
        for _ in range(n):
            lead = desk.pool.take(now)
            if lead is None:
                break
            self.call_seq += 1
            leads.append((lead, lead.phone in self.dnc, f"c{self.call_seq}"))
        self._push(now + CLAIM_LATENCY, _CLAIM, desk.index, (n, tuple(leads)))

    def _claimed(self, desk: _Desk, payload: tuple[int, tuple[tuple[Lead, bool, str], ...]]) -> None:
        n, leads = payload
        # A lead the engine does not dial comes back through SaveLead; one it dials, through
        # Originate (the call id says which lead: kept here until then).
        self._pending = {cid: lead for lead, _, cid in leads}
        self._deliver(desk, LeadsClaimed(self.now, n, leads), self._handlers)
        self._pending = {}

    def _originate(self, desk: _Desk, command: Originate) -> None:
        now = self.now
        lead = self._pending[command.call_id]
        pool = desk.pool
        ledger = self.ledger
        ledger.dials += 1
        ledger.dial_bins[int(now // BIN)] += 1
        self.live_calls += 1
        if self.live_calls > ledger.max_channels_used:
            ledger.max_channels_used = self.live_calls
        if self.strict and not in_window(lead.timezones, now, "08:00", "21:00"):
            ledger.outside_window += 1
        cust = self.scenario.customers
        rng = random.Random(desk.base_seed + pool.index(lead) * 16 + min(lead.attempts, 15))
        u = rng.random()
        live = self._live_const if self._live_const is not None else self._live_now(cust.live_at)
        cid = command.call_id
        ring_mu, ring_sigma = self._ring
        ring = min(command.ring_timeout - 0.5, max(1.5, rng.lognormvariate(ring_mu, ring_sigma)))
        talk = rng.lognormvariate(*self._talk)
        optout = rng.random() < cust.optout
        if u < live + cust.machine:
            human = u < live
            if human:
                greeting = rng.uniform(*cust.greeting)
                verdict = "MACHINE" if rng.random() < cust.amd_fp else "HUMAN"
            else:
                greeting = rng.uniform(*cust.machine_greeting)
                verdict = "HUMAN" if rng.random() < cust.amd_fn else "MACHINE"
                talk = rng.uniform(*MACHINE_TALK)
            self.calls[cid] = _Call(desk.index, human, not human, talk, greeting, verdict, optout)
            self._event(now + ring, desk.index, CallAnswered(now + ring, cid))
            return
        self.calls[cid] = _Call(desk.index, False, False, 0.0, 0.0, "", False, ended=True)
        u -= live + cust.machine
        if u < cust.busy:
            outcome, at = DialOutcome.BUSY, rng.uniform(1.0, 4.0)
        elif u < cust.busy + cust.failed:
            outcome, at = DialOutcome.CONGESTION, rng.uniform(0.3, 2.0)
        else:
            outcome, at = DialOutcome.NO_ANSWER, command.ring_timeout
        self._event(now + at, desk.index,
                    CallEnded(now + at, cid, outcome, _FAILED_CAUSES[outcome]))

    def _live_now(self, live_at: Callable[[float], float]) -> float:
        for start, end in self.days:
            if self.now < end + DRAIN:
                return live_at(max(0.0, (self.now - start) / (end - start)))
        return live_at(1.0)

    def _amd(self, desk: _Desk, command: RunAmd) -> None:
        call = self.calls[command.call_id]
        at = self.now + call.greeting
        self._event(at, desk.index, AmdDone(at, command.call_id, call.verdict))

    def _connect(self, desk: _Desk, command: ConnectAgent) -> None:
        at = self.now + CONNECT_LATENCY
        call = self.calls.get(command.call_id)
        if call is not None:
            call.ends_at = at + call.talk  # as `_bridged` will schedule it
        self._event(at, desk.index, CallBridged(at, command.call_id))

    def _bridged(self, desk: _Desk, event: CallBridged) -> None:
        engine_call = desk.engine.calls.get(event.call_id)
        call = self.calls.get(event.call_id)
        if engine_call is None or call is None or call.ended or engine_call.agent_id is None:
            return
        call.ended = True  # the customer (or the machine) hangs up after the talk
        at = self.now + call.talk
        self._event(at, desk.index, CallEnded(at, event.call_id, DialOutcome.ANSWERED, 16))

    def _safe_harbor(self, desk: _Desk, command: PlaySafeHarbor) -> None:
        call = self.calls[command.call_id]
        length = self.scenario.customers.safe_harbor_seconds
        if call.optout:
            at = self.now + length * 0.75
            self._event(at, desk.index, DigitPressed(at, command.call_id,
                                                     desk.engine.spec.safe_harbor.optout_key))
        self._event(self.now + length, desk.index, PlaybackDone(self.now + length, command.call_id))

    def _message(self, desk: _Desk, command: LeaveMessage | RunAgentless) -> None:
        at = self.now + self.scenario.customers.message_seconds
        self._event(at, desk.index, PlaybackDone(at, command.call_id))

    def _hangup(self, desk: _Desk, command: Hangup) -> None:
        call = self.calls.get(command.call_id)
        if call is None or call.ended:
            return
        call.ended = True
        at = self.now + HANGUP_LATENCY
        self._event(at, desk.index, CallEnded(at, command.call_id, DialOutcome.ANSWERED, 16))

    def _start_timer(self, desk: _Desk, command: StartTimer) -> None:
        self.seq += 1
        desk.timers[command.key] = self.seq
        heappush(self.heap, (command.at, self.seq, _TIMER, desk.index, (command.key, self.seq)))

    def _cancel_timer(self, desk: _Desk, command: CancelTimer) -> None:
        desk.timers.pop(command.key, None)

    def _save_attempt(self, desk: _Desk, command: SaveAttempt) -> None:
        attempt = command.attempt
        if attempt.ended_at is None:
            return
        call = self.calls.pop(attempt.id, None)
        if call is None:
            return  # recorded already
        self.live_calls -= 1
        self.ledger.attempt(attempt, call.human and attempt.amd_status == "MACHINE", desk.index)

    def _save_lead(self, desk: _Desk, command: SaveLead) -> None:
        desk.pool.put(command.lead)

    def _add_dnc(self, desk: _Desk, command: AddDnc) -> None:
        self.dnc.add(command.number)
        self.ledger.optouts += 1

    def _agent_phone(self, desk: _Desk, command: CallAgentPhone) -> None:
        at = self.now + PHONE_ANSWER
        self._event(at, desk.index, AgentPhoneAnswered(at, command.agent_id))

    def _save_agent(self, desk: _Desk, command: SaveAgent) -> None:
        agent = command.agent
        if self.ledger.agent(agent, desk.index) and agent.state is AgentState.WRAP_UP and agent.call_id:
            rng = self._agent_rng(agent.id)
            wrap = self._draw_wrap(rng)
            self._push(self.now + wrap, _DISPO, desk.index, (agent.id, agent.call_id))
            if self._knowing:
                self._dispo_at[agent.id] = self.now + wrap

    def _draw_wrap(self, rng: random.Random) -> float:
        return min(WRAP_LIMIT - 1.0, rng.gammavariate(4.0, self.scenario.staff.wrap_mean / 4.0))

    def free_at(self, engine: CampaignEngine) -> Callable[[], dict[str, float]]:
        """For `AgentOracle` (what the simulator knows and no pacer may): when each of the
        campaign's agents on a call or in wrap-up will key the disposition — the call's drawn
        end (from when the bridge is asked for) plus the wrap-up the agent's stream will draw
        next, or the wrap-up already drawn. Agents who asked for a break after the call, or
        whose break, step-out or leaving time comes before then, are left out: they will not
        be READY. Those times are drawn at the start of the day, so the stream's next draw is
        the wrap-up."""
        def times() -> dict[str, float]:
            calls = self.calls
            out: dict[str, float] = {}
            for agent in engine.agents.values():
                if agent.pause_requested:
                    continue  # goes on a break after this call: not free for a while
                if agent.state is AgentState.WRAP_UP:
                    out[agent.id] = self._dispo_at.get(agent.id, self.now)
                elif agent.state in (AgentState.RESERVED, AgentState.ON_CALL):
                    call_id = agent.call_id or ""
                    seen = peeked.get(agent.id)
                    if seen is None or seen[0] != call_id:
                        peek.setstate(self._agent_rng(agent.id).getstate())
                        seen = peeked[agent.id] = (call_id, self._draw_wrap(peek))
                    call = calls.get(call_id)
                    ends = call.ends_at if call is not None else None
                    out[agent.id] = (self.now if ends is None else ends) + seen[1]
                else:
                    continue
                free = out[agent.id]
                if any(self.now <= b <= free for b in self._away.get(agent.id, ())):
                    del out[agent.id]  # off on a break, or leaving, after the call
            return out
        peeked: dict[str, tuple[str, float]] = {}  # agent -> (call, the wrap-up it will draw)
        peek = random.Random(0)  # a copy of an agent's stream, to read its next draw
        return times

    def _humans_to_come(self, engine: CampaignEngine) -> Callable[[], int]:
        """Diagnostics only: how many calls still ringing or in AMD will reach a person (what
        the simulator knows and no pacer may)."""
        def count() -> int:
            calls = self.calls
            return sum(1 for cid, c in engine.calls.items()
                       if c.state in (CallState.DIALING, CallState.AMD)
                       and cid in calls and calls[cid].human and calls[cid].verdict != "MACHINE")
        return count

    # ------------------------------------------------------------------------- result
    def _result(self, cpu: float) -> RunResult:
        led = self.ledger
        idx = {s: i for i, s in enumerate(AgentState)}
        talk = led.seconds[idx[AgentState.ON_CALL]]
        idle = led.seconds[idx[AgentState.READY]] + led.seconds[idx[AgentState.RESERVED]]
        wrap = led.seconds[idx[AgentState.WRAP_UP]]
        avail = talk + idle + wrap
        humans = sum(c[0] for c in led.days.values())
        abandoned = sum(c[1] for c in led.days.values())
        true_h = sum(c[2] for c in led.days.values())
        true_a = sum(c[3] for c in led.days.values())
        connects = led.results.get("talked", 0)
        return RunResult(
            scenario=self.scenario.name, policy=self.policy.label, seed=self.seed,
            agents=self.scenario.staff.agents, agent_hours=avail / 3600.0,
            talk_min_per_hour=talk / 60.0 / (avail / 3600.0) if avail else 0.0,
            occupancy=talk / (talk + idle) if talk + idle else 0.0,
            oracle=self.scenario.oracle_talk_min_per_hour,
            humans=humans, abandoned=abandoned, abandon=abandoned / humans if humans else 0.0,
            abandon_30d=led.worst_campaign(lambda t: rolling_worst(t, (0, 1))),
            abandon_day=led.worst_campaign(lambda t: worst_rate(t, (0, 1))),
            abandon_hour=led.worst_campaign(lambda t: worst_rate(t, (0, 1), min_humans=20),
                                            hourly=True),
            true_abandon=true_a / true_h if true_h else 0.0,
            true_abandon_day=led.worst_campaign(lambda t: worst_rate(t, (2, 3))),
            idle_gap_p95=percentile(led.idle_gaps, 0.95),
            wait_p50=percentile(led.waits, 0.5), wait_p99=percentile(led.waits, 0.99),
            dials=led.dials, connects=connects,
            dials_per_connect=led.dials / connects if connects else math.inf,
            leads_used=sum(d.pool.fresh for d in self.desks), machines=led.machines,
            amd_false_positives=led.amd_false_positives,
            claims_no_ready=led.claims_no_ready, claims_no_agents=led.claims_no_agents,
            cps_excess=led.cps_excess, max_channels_used=led.max_channels_used,
            channels=self.channels, outside_window=led.outside_window, events=self.events,
            cpu_seconds=cpu, agent_days=avail / 3600.0 / 8.0,
            results=tuple(sorted(led.results.items())),
            series=self._series() if self.want_series else None,
            uk_mode=self.scenario.uk_mode,
            abandon_day_counted=max((worst_counted_day(led.desk_days[d.index],
                                                       _fp_estimate(d.engine.spec))
                                     for d in self.desks), default=0.0))

    def _series(self) -> Series:
        led = self.ledger
        first = int(self.first_start // BIN)
        last = max([first, *led.avail_bins.keys()])
        ts, live, tmh, ab, cum = [], [], [], [], []
        h_sum = a_sum = 0
        start, end = self.days[0]
        for b in range(first, last + 1):
            avail = led.avail_bins.get(b, 0.0)
            if avail <= 0.0:
                continue
            cell = led.bins.get(b, [0, 0, 0, 0, 0])
            h_sum += cell[0]
            a_sum += cell[1]
            mid = (b + 0.5) * BIN
            ts.append((mid - self.first_start) / 3600.0)
            live.append(self.scenario.customers.live_at(min(1.0, max(0.0, (mid - start) / (end - start)))))
            tmh.append(led.talk_bins.get(b, 0.0) / 60.0 / (avail / 3600.0))
            ab.append(cell[1] / cell[0] if cell[0] else 0.0)
            cum.append(a_sum / h_sum if h_sum else 0.0)
        return Series(tuple(ts), tuple(live), tuple(tmh), tuple(ab), tuple(cum))


def _values(times: Callable[[], dict[str, float]]) -> Callable[[], list[float]]:
    return lambda: list(times().values())


def _fp_estimate(spec: CampaignSpec) -> float:
    """The share of AMD machine verdicts a campaign counts as abandoned people: its estimate
    of AMD false positives in UK mode with AMD on, else 0 (`CampaignEngine._false_positives`)."""
    return spec.amd_false_positive_rate if spec.uk_mode and spec.amd is not AmdMode.OFF else 0.0


def simulate(scenario: Scenario, policy: Policy, seed: int = 1, **kw: Any) -> RunResult:
    return Simulator(scenario, policy, seed, **kw).run()


WARM_SEED_OFFSET = 1000  # the warm run's "yesterday" is the same scenario on seed + this


def simulate_warm(scenario: Scenario, policy: Policy, seed: int = 1, **kw: Any) -> RunResult:
    """A run whose predictive pacers start from what they learnt "yesterday": the same
    scenario on seed + WARM_SEED_OFFSET (other customers, other draws), its pacers' estimates
    exported at the end and passed through JSON, as the runtime keeps them in Redis
    (`CampaignRunner._save_pacer` / `_load_pacer`, `PredictivePacer.restore_state`).
    Yesterday's abandons are not carried: the window starts empty as in a cold run.
    ValueError for a policy whose pacer keeps no estimates."""
    learnt: dict[str, Pacer] = {}
    cust = scenario.customers

    def remember(spec: CampaignSpec) -> Pacer:
        pacer = learnt[spec.id] = policy.pacer(spec, cust.live_mean, cust.machine)
        if not isinstance(pacer, PredictivePacer) or not isinstance(pacer.model, Estimator):
            raise ValueError(f"policy {policy.label!r} keeps no estimates to start warm from")
        return pacer

    Simulator(scenario, policy, seed + WARM_SEED_OFFSET, pacer_factory=remember).run()
    saved = {cid: json.loads(json.dumps(p.export_state())) for cid, p in learnt.items()
             if isinstance(p, PredictivePacer)}
    # Both runs are on the scenario's dates: yesterday's calls still ringing at its end were
    # placed `days` earlier than today's clock says (the runtime's wall clock needs no shift).
    for state in saved.values():
        for row in state["pending"]:
            row[0] -= scenario.days * 86400.0

    def restore(spec: CampaignSpec) -> Pacer:
        pacer = policy.pacer(spec, cust.live_mean, cust.machine)
        assert isinstance(pacer, PredictivePacer)
        pacer.restore_state(saved[spec.id])
        return pacer

    result = Simulator(scenario, policy, seed, pacer_factory=restore, **kw).run()
    return replace(result, policy=f"{result.policy} (warm)")
