"""The asyncio runtime of campaigns: ARI events in, the core's commands out.

`Dialer` owns one `CampaignRunner` per running campaign and routes every ARI item to the runner
that owns the channel (by the ids it chose). The ARI listener only translates and enqueues; each
runner's task takes its inbox in order, asks the core (`CampaignEngine.handle`) what to do, and
carries the commands out against ARI and the store. Commands of one call run in order; calls
run concurrently (originates are their own tasks).

Latency and cost: the events waiting in the inbox are handled as one batch. Telephony commands
run at once (an answered customer is added to the agent's bridge before any record is
written); the batch's records (attempts, agents, finished leads; the last version of each) go
to a writer task that writes them in one store transaction (batches that queue up behind a
write are merged into the next), and only then runs the commands that need them on record
(`AFTER_WRITES`: an originate, so a restart finds every call placed). The event loop of a
runner therefore never waits for the store. A process killed between
the bridge and the write leaves a record one step behind Asterisk: recovery reads the missing
facts (answered, connected to which agent) from Asterisk's channels and bridges.

Ids: customer channel = attempt id = `c-<campaign>-<random>`; an agent's phone channel is
`agent-<agent>-<random>` and their bridge `agentbr-<ARI app>-<agent>`. Everything the runtime needs to
resume after a restart is in the store (in-flight attempts, campaign status) or in Asterisk
(channels, bridges).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any

from dialer.ari import (
    Ari,
    AriItem,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelLeftBridge,
    PlaybackFinished,
    StasisStart,
    StreamReady,
)
from dialer.ari.outcome import ChannelOutcome
from dialer.core.agent import AgentState
from dialer.core.campaign import (
    PHONE_CODES,
    AbandonStats,
    AddDnc,
    AgentLogin,
    AgentPhoneAnswered,
    AgentPhoneGone,
    AmdDone,
    ApplyDisposition,
    CallAgentPhone,
    CallAnswered,
    CallBridged,
    CallEnded,
    CampaignEngine,
    CancelTimer,
    ClaimLeads,
    Command,
    ConnectAgent,
    ConnectInbound,
    DigitPressed,
    Disposition,
    Hangup,
    HangupAgentPhone,
    InboundBridged,
    InboundEnded,
    InboundOffer,
    InboundRefused,
    LeadsAvailable,
    LeadsClaimed,
    LeaveMessage,
    Originate,
    PlaybackDone,
    PlayRingback,
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
    StopRingback,
    Tick,
    TimerFired,
    with_disposition,
)
from dialer.core.escalation import (
    ESCALATION_COMMANDS,
    SUPERVISOR_SKILL,
    AnyCommand,
    AnyEvent,
    EscalationDesk,
)
from dialer.core.model import Attempt, AttemptResult, CampaignSpec, Lead
from dialer.core.outcome import DialOutcome
from dialer.core.pacing import Estimator, PredictivePacer
from dialer.core.retry import after_attempt
from dialer.errors import AriError, DialerError
from dialer.escalation_runtime import EscalationRuntime
from dialer.metrics import METRICS, Metrics
from dialer.routing.matching import GroupKey, count_groups, pick_leads
from dialer.routing.profiles import AgentProfile, ProfileSet
from dialer.store.base import Store

log = logging.getLogger(__name__)

TICK = 0.25  # pacing tick (s): a pacing round every TICK, on a fixed grid as in dialer.sim
LEADS_REFRESH = 2.0  # how often the dialable-lead count is re-read (s)
MATCH_SCAN = 1000  # matching: leads scanned (in claim order) to count and claim by group
STATS_REFRESH = 30.0  # how often the abandon window is re-read (s)
PACER_SAVE = 60.0  # how often the predictive pacer's estimates are saved (s)
PACER_STATE_MAX_AGE = 7 * 86400.0  # saved estimates older than this are not taken up (s)
WINDOW_30_DAYS = 30 * 86400.0
UK_DAY = 86400.0  # seconds


async def cancel_task(task: asyncio.Task[Any], deadline: float = 10.0) -> None:
    """Cancel and wait, cancelling again if the request was swallowed (seen on Python 3.11 with
    the Redis client: an await completed normally with the cancellation lost)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not task.done() and loop.time() < end:
        task.cancel()
        await asyncio.wait({task}, timeout=0.2)
    if not task.done():
        log.error("task %s did not stop within %s s", task.get_name(), deadline)
    elif not task.cancelled() and task.exception() is not None:
        log.error("task %s had failed: %s", task.get_name(), task.exception())


RINGBACK = "tone:ring;tonezone=us"  # what an agent hears while their preview call rings
BATCH = 64  # most queued events taken as one batch (one store transaction)
# Carried out only once the batch's records are written: a call is placed only when its
# attempt is on record (a restart after SIGKILL finds and closes every call it placed); a
# disposition reads the attempt it changes.
AFTER_WRITES = (Originate, ApplyDisposition)
# Records with no command waiting on them are held until the next pacing round (at most
# TICK), or at most this long (s) when no round comes, so the writes of several calls and
# steps share one transaction: about 9 store transactions per call placed become about 1.3 at
# the benchmark's 2.4 calls/s. A record is that much behind the core at most; a restart
# completes a record that lags Asterisk from Asterisk itself (`_recover`).
WRITE_LINGER = 0.3


def _attempt_of(command: Command) -> str | None:
    """The attempt a command waiting on the writes (`AFTER_WRITES`) acts on."""
    match command:
        case Originate(call_id=cid):
            return cid
        case ApplyDisposition(attempt_id=aid):
            return aid
    return None


def _wake_up(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass(slots=True)
class _Writes:
    """The records one batch writes, last version of each (dicts keep first-seen order)."""

    attempts: dict[str, Attempt] = field(default_factory=dict)
    leads: dict[str, Lead] = field(default_factory=dict)
    agents: dict[str, dict[str, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.attempts or self.leads or self.agents)

    def merge(self, later: _Writes) -> None:
        """Add a later batch's records (its versions win)."""
        self.attempts.update(later.attempts)
        self.leads.update(later.leads)
        self.agents.update(later.agents)


def agent_bridge(app: str, agent_id: str) -> str:
    """An agent's bridge, named by the dialer's ARI app too: several dialer processes (one app
    each) share an Asterisk without touching each other's bridges, and a restarted process
    (same app) finds its own."""
    return f"agentbr-{app}-{agent_id}"


class CampaignRunner:
    def __init__(self, spec: CampaignSpec, ari: Ari, store: Store,
                 clock: Callable[[], float] = time.time, metrics: Metrics = METRICS) -> None:
        self.spec = spec
        self.ari = ari
        self.store = store
        self.clock = clock
        self.engine = CampaignEngine(spec)
        # Escalations and supervision decide over the engine's agents and calls; every event
        # goes through the desk to the engine (dialer.core.escalation).
        self.desk = EscalationDesk(self.engine)
        self.escalation = EscalationRuntime(self, agent_bridge)
        self.inbox: asyncio.Queue[AnyEvent] = asyncio.Queue()
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.outcomes: dict[str, ChannelOutcome] = {}  # customer channel -> what ARI said
        self.agent_channels: dict[str, str] = {}  # agent id -> phone channel id
        self.playbacks: dict[str, str] = {}  # playback id -> call id
        self.connect_started: dict[str, float] = {}  # call id -> perf_counter at ConnectAgent
        self.connect_latencies: list[float] = []
        self.metrics = metrics.campaign(spec.id)
        self.ready_since: dict[str, float] = {}  # agent id -> when they became READY
        self.rounds = 0  # pacing rounds (every TICK), and the ticks among them handed to the core
        self.ticks = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._main: asyncio.Task[None] | None = None
        self._next_round = 0.0  # (loop time) when the next pacing round is due
        self._round_timer: asyncio.TimerHandle | None = None
        self._refreshing = False  # a lead-count / abandon-stats refresh is in flight
        self._stopped = False
        self._last_leads = self._last_stats = self._last_pacer_save = 0.0
        self._told_refused = False  # logged that the restored answer rate was dropped
        # Batches of records (and the commands that wait for them) for the writer task.
        self._outbox: asyncio.Queue[tuple[_Writes, list[Command]]] = asyncio.Queue()
        self.write_linger = WRITE_LINGER  # (s) see WRITE_LINGER; 0 writes each batch at once
        self._wake: asyncio.Future[None] | None = None  # ends the writer's linger early
        # Done once the batch `_run` is handling has handed its records to the writer: a
        # batch's telephony commands are carried out before its records are queued, so a
        # client who saw their effect (a bridge) may ask before the records exist.
        self._in_batch: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        # Told of each attempt once it has ended and is on record (webhooks); must not block.
        self.on_attempt_ended: list[Callable[[Attempt], None]] = []
        # Inbound (IVR queue) callers given to our agents: channel -> agent, and who to tell
        # whether the caller reached the agent (answered(channel, agent)) or not (refused).
        self.inbound_channels: dict[str, str] = {}
        # Runs an IVR flow on one of our answered calls (set by the server when it has an
        # IVR): (channel, flow id, lead, campaign id) -> started. Calls on a flow are the
        # flow's to end (it plays, takes keys, hangs up); the core only hears the end.
        self.run_flow: Callable[[str, str, Lead, str], Awaitable[bool]] | None = None
        self.flow_calls: set[str] = set()  # agentless calls on a flow: it takes their keys
        self.inbound_replies: dict[str, tuple[Callable[[str, str], None],
                                              Callable[[str], None]]] = {}
        # Queue callbacks (an IVR caller's place kept): channel -> the number to dial once
        # the agent is reserved; the answered customer then joins the agent's bridge.
        self.callback_numbers: dict[str, str] = {}

    # ------------------------------------------------------------------------ lifecycle
    async def start(self, running: bool) -> None:
        await self._recover()
        await self._load_pacer()
        self._last_leads = self._last_stats = self._last_pacer_save = self.clock()
        await self._refresh_stats()  # a store error here fails the start
        await self._refresh(self._last_leads)  # the lead count (the stats were just read)
        if self._stopped:  # stopped while starting: start nothing that would outlive it
            return
        self.inbox.put_nowait(SetRunning(self.clock(), running))
        self._main = asyncio.create_task(self._run(), name=f"campaign-{self.spec.id}")
        self._writer = asyncio.create_task(self._write_out(), name=f"records-{self.spec.id}")
        self._next_round = asyncio.get_running_loop().time()
        self._schedule_round()

    async def stop(self) -> None:
        self._stopped = True
        if self._round_timer is not None:
            self._round_timer.cancel()
            self._round_timer = None
        if self._main is not None:
            await cancel_task(self._main)
        if self._writer is not None:  # let the records already decided reach the store
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.settle(), 5)
        if self._main is not None:  # then what the pacer learnt, for the next start
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._save_pacer(), 5)
        for task in (self._writer, *self._tasks):
            if task is not None:
                await cancel_task(task)
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()

    def post(self, event: AnyEvent) -> None:
        self.inbox.put_nowait(event)

    def _schedule_round(self) -> None:
        if self._round_timer is not None:
            self._round_timer.cancel()
        self._round_timer = asyncio.get_running_loop().call_at(self._next_round, self._round)

    def _round(self) -> None:
        """A pacing round: a `Tick` for the core (left out when the engine would ignore it,
        unless events wait in the inbox: they may make an agent ready before the tick is
        handled), the records held back go to the store (the writer's linger ends with the
        round: no timer of its own wakes the process), and the lead count (every
        LEADS_REFRESH) and abandon window (every STATS_REFRESH) are re-read in the background.
        The next round is due TICK after this one was (a fixed grid, the simulator's cadence;
        after a stall of the loop the grid starts again from now)."""
        loop = asyncio.get_running_loop()
        self._next_round += TICK
        if self._next_round <= loop.time():
            self._next_round = loop.time() + TICK
        self._schedule_round()
        now = self.clock()
        self.rounds += 1
        if not self._refreshing and now - self._last_leads >= LEADS_REFRESH:
            self._refreshing = True
            self._spawn(self._refresh(now))
        if self.ari.ready and not (self.engine.pacing_idle and self.inbox.empty()):
            self.post(Tick(now))
            self.ticks += 1
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _refresh(self, now: float) -> None:
        try:
            self._last_leads = now
            with contextlib.suppress(DialerError):
                self.post(await self._leads_available(now))
            if now - self._last_stats >= STATS_REFRESH:
                self._last_stats = now
                with contextlib.suppress(DialerError):
                    await self._refresh_stats()
            if now - self._last_pacer_save >= PACER_SAVE:
                self._last_pacer_save = now
                await self._save_pacer()
        finally:
            self._refreshing = False

    async def _save_pacer(self) -> None:
        """Save the predictive pacer's online estimates and its budget's lift
        (`PredictivePacer.export_state`), so a restarted process, or tomorrow's start, does not
        learn the campaign from scratch. A store error is logged: the next save tries again."""
        pacer = self.engine.pacer
        if not isinstance(pacer, PredictivePacer) or not isinstance(pacer.model, Estimator):
            return
        if pacer.model.restored_refused and not self._told_refused:
            self._told_refused = True
            log.info("campaign %s: today's calls do not fit the saved answer rate or share of "
                     "people (a new list?); the pacer dropped it and learns today's",
                     self.spec.id)
        state = pacer.export_state()
        text = json.dumps({"saved_at": self.clock(), "pacer": state}, separators=(",", ":"))
        try:
            await self.store.save_pacer_state(self.spec.id, text)
        except DialerError as exc:
            log.warning("campaign %s: saving the pacer's estimates failed: %s", self.spec.id, exc)

    async def _load_pacer(self) -> None:
        """Start the predictive pacer from its saved estimates (up to PACER_STATE_MAX_AGE old;
        `Estimator.restore_state` trusts the saved answer rate as a few answers' worth). Saved
        estimates that cannot be read are logged and left alone: the pacer starts afresh."""
        pacer = self.engine.pacer
        if not isinstance(pacer, PredictivePacer) or not isinstance(pacer.model, Estimator):
            return
        try:
            text = await self.store.load_pacer_state(self.spec.id)
        except DialerError as exc:
            log.warning("campaign %s: the pacer's saved estimates could not be read (%s); it "
                        "starts afresh", self.spec.id, exc)
            return
        if text is None:
            return
        try:
            saved = json.loads(text)
            if not isinstance(saved, dict):
                raise ValueError("not a JSON object")
            saved_at = saved.get("saved_at")
            if isinstance(saved_at, bool) or not isinstance(saved_at, int | float) \
                    or not math.isfinite(saved_at):
                raise ValueError(f"saved_at must be a time, not {saved_at!r}")
            age = self.clock() - saved_at
            if age > PACER_STATE_MAX_AGE:
                log.info("campaign %s: the pacer's saved estimates are %.1f days old; it starts "
                         "afresh", self.spec.id, age / 86400.0)
                return
            pacer.restore_state(saved.get("pacer"))
        except (ValueError, OverflowError, RecursionError) as exc:  # JSONDecodeError: a ValueError
            log.warning("campaign %s: the pacer's saved estimates are not usable (%s); it "
                        "starts afresh", self.spec.id, str(exc)[:300])
            return
        log.info("campaign %s: the pacer starts from its estimates saved %.0f s ago (from %d "
                 "dials)", self.spec.id, max(0.0, age), pacer.model.restored_dials)

    async def _refresh_stats(self) -> None:
        now = self.clock()
        # US: a rolling 30 days; UK: the calendar day (midnight to midnight, UTC here; the
        # store buckets by UTC day, which is UK time outside British Summer Time).
        since = now - (now % UK_DAY) if self.spec.uk_mode else now - WINDOW_30_DAYS
        abandoned, humans = await self.store.abandon_stats(self.spec.id, since)
        machines = await self.store.machine_count(self.spec.id, since)
        self.post(AbandonStats(now, abandoned, humans, machines))

    async def _run(self) -> None:
        """Take the queued events (up to BATCH, including those that arrive meanwhile) as one
        batch: hand each to the core and carry out its telephony commands at once, in order
        (an answered customer is bridged before anything is written); then pass the batch's
        records, with the commands that must follow them (`AFTER_WRITES`), to the writer task,
        so this loop never waits for the store."""
        while True:
            event = await self.inbox.get()
            self._in_batch = handled = asyncio.get_running_loop().create_future()
            try:
                await self._batch(event)
            finally:
                handled.set_result(None)

    async def _batch(self, event: AnyEvent) -> None:
        """One batch of `_run`, from its first event."""
        writes = _Writes()
        later: list[Command] = []
        for taken in range(1, BATCH + 1):
            try:
                commands = self.desk.handle(event)
            except DialerError as exc:
                log.warning("campaign %s: %s", self.spec.id, exc)
                commands = []
            for command in commands:
                if isinstance(command, SaveAttempt | SaveAgent | SaveLead):
                    self._record(command, writes)
                elif isinstance(command, AFTER_WRITES):
                    later.append(command)
                else:
                    await self._carry_out(command)
            # Events that came in meanwhile join the batch (an answered customer's bridge
            # entry often arrives during its addChannel): one write for both.
            if taken == BATCH or self.inbox.empty():
                break
            event = self.inbox.get_nowait()
        if writes or later:
            self._outbox.put_nowait((writes, later))

    async def _write_out(self) -> None:
        """The writer: batches in order, each written in one store transaction, then its
        waiting commands. Batches that queued up while a write was in flight are merged into
        the next one (group commit: the busier, the fewer round trips per call)."""
        while True:
            writes, later = await self._outbox.get()
            merged = 1
            if not later and self.write_linger > 0:
                loop = asyncio.get_running_loop()
                self._wake = wake = loop.create_future()
                timer = loop.call_later(self.write_linger, _wake_up, wake)
                try:
                    await wake
                finally:
                    timer.cancel()
                    self._wake = None
            while not self._outbox.empty():
                more, more_later = self._outbox.get_nowait()
                writes.merge(more)
                later += more_later
                merged += 1
            try:
                unsaved = await self._write(writes)
                for command in later:
                    # never place a call, or apply a disposition, whose attempt is not on record
                    if unsaved is None or _attempt_of(command) in unsaved:
                        log.warning("campaign %s: %s not carried out: its records were not "
                                    "saved", self.spec.id, type(command).__name__)
                        self._command_failed(command)
                    else:
                        await self._carry_out(command)
            finally:
                for _ in range(merged):
                    self._outbox.task_done()

    async def settle(self) -> None:
        """End the writer's linger now and wait until every record decided so far is written,
        those of the batch being handled included (its commands may already show: a bridge)."""
        batch = self._in_batch
        if batch is not None and not batch.done():
            await asyncio.shield(batch)
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        await self._outbox.join()

    async def _carry_out(self, command: AnyCommand) -> None:
        try:
            await self._execute(command)
        except (AriError, DialerError) as exc:
            log.warning("campaign %s: %s failed: %s", self.spec.id, type(command).__name__, exc)
            self._command_failed(command)

    def _record(self, command: SaveAttempt | SaveAgent | SaveLead, writes: _Writes) -> None:
        """Note a record to write with the batch (the last version of each record wins)."""
        match command:
            case SaveAttempt(attempt=attempt):
                if attempt.ended_at is not None and attempt.result is not None:
                    self.metrics.call_ended(attempt.result)  # the engine ends a call once
                writes.attempts[attempt.id] = attempt
            case SaveLead(lead=lead):
                writes.leads[lead.id] = lead
            case SaveAgent(agent=agent):
                if agent.state is AgentState.READY:
                    self.ready_since[agent.id] = agent.since
                else:
                    ready_since = self.ready_since.pop(agent.id, None)
                    if ready_since is not None and agent.state is AgentState.RESERVED:
                        self.metrics.agent_idle.observe(agent.since - ready_since)
                writes.agents[agent.id] = {
                    "state": agent.state.value, "since": repr(agent.since),
                    "campaign": self.spec.id, "call": agent.call_id or "",
                    "pause_reason": agent.pause_reason or "",
                    "channel": self.agent_channels.get(agent.id, "")}

    async def _write(self, writes: _Writes) -> frozenset[str] | None:
        """Write the batch's records in one transaction. The ids of the attempts the store
        refused (the rest of the batch is written), or None if the store failed (nothing is)."""
        if not writes:
            return frozenset()
        try:
            refused = await self.store.save_batch(list(writes.attempts.values()), writes.agents,
                                                  list(writes.leads.values()))
        except DialerError as exc:
            log.warning("campaign %s: saving %d attempts, %d leads, %d agents failed: %s",
                        self.spec.id, len(writes.attempts), len(writes.leads),
                        len(writes.agents), exc)
            return None
        for refusal in refused:
            log.warning("campaign %s: %s", self.spec.id, refusal)
        unsaved = frozenset(r.record_id for r in refused if r.kind == "attempt")
        for attempt in writes.attempts.values():
            if attempt.ended_at is not None and attempt.id not in unsaved:
                self._attempt_ended(attempt)
        return unsaved

    def _attempt_ended(self, attempt: Attempt) -> None:
        for listener in self.on_attempt_ended:
            try:
                listener(attempt)
            except Exception:  # a listener's bug must not stop the records
                log.exception("campaign %s: attempt %s: listener failed", self.spec.id,
                              attempt.id)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _command_failed(self, command: AnyCommand) -> None:
        now = self.clock()
        match command:
            case ConnectAgent(call_id=cid, agent_id=aid):
                # The customer could not be added to the agent's bridge: hang up rather than
                # leave them in silence (counted through the normal end of the call), and log
                # the agent out, whose bridge is broken, so no later call is routed there.
                self._spawn(self.ari.rest.hangup(cid))
                self.post(AgentPhoneGone(now, aid))
            case Originate(call_id=cid):
                self.post(CallEnded(now, cid, DialOutcome.FAILED, None))
            case CallAgentPhone(agent_id=aid):
                self.post(AgentPhoneGone(now, aid))
            case ConnectInbound(call_id=cid):
                self.inbound_channels.pop(cid, None)
                self.post(InboundEnded(now, cid))
                self._inbound_refused(cid)

    # -------------------------------------------------------------------------- commands
    async def _execute(self, command: AnyCommand) -> None:
        ari, store = self.ari, self.store
        if isinstance(command, ESCALATION_COMMANDS):
            await self.escalation.execute(command)
            return
        match command:
            case ClaimLeads(count=count, groups=groups, release=release) if groups or release:
                self._spawn(self._claim_groups(count, dict(groups), dict(release)))
            case ClaimLeads(count=count):
                self._spawn(self._claim(count))
            case Originate(call_id=cid, endpoint=endpoint, caller_id=caller_id,
                           ring_timeout=ring):
                self.outcomes[cid] = ChannelOutcome(cid)
                self.metrics.originated.inc()
                local = endpoint.startswith("Local/")
                self._spawn(self._originate(cid, endpoint, caller_id, ring, local))
            case RunAmd(call_id=cid):
                await ari.rest.continue_in_dialplan(cid, "dialer-amd", "run", 1)
            case ConnectAgent(call_id=cid, agent_id=aid) if self.spec.ring_agents:
                self.connect_started[cid] = time.perf_counter()
                self._spawn(self._ring_agent(cid, aid))
            case ConnectAgent(call_id=cid, agent_id=aid):
                self.connect_started[cid] = time.perf_counter()
                await ari.rest.add_channel(agent_bridge(self.ari.app, aid), cid)
            case ConnectInbound(call_id=cid, agent_id=aid) if cid in self.callback_numbers:
                self.inbound_channels[cid] = aid  # dial now; bridged on answer (StasisStart)
                number = self.callback_numbers[cid]
                endpoint = self.spec.trunk.format(number=number)
                await self.ari.originate(
                    endpoint, channel_id=cid, ring_timeout=self.spec.ring_timeout,
                    caller_id=self.spec.caller_id,
                    formats="ulaw" if endpoint.startswith("Local/") else None,
                    variables={"DIALER_CAMPAIGN": self.spec.id})
            case ConnectInbound(call_id=cid, agent_id=aid):
                self.inbound_channels[cid] = aid
                await ari.rest.add_channel(agent_bridge(self.ari.app, aid), cid)
            case InboundRefused(call_id=cid):
                self._inbound_refused(cid)
            case PlayRingback(call_id=cid, agent_id=aid):
                phone = self.agent_channels.get(aid)
                if phone is not None:  # the agent's phone, in their bridge, hears it ring
                    await ari.rest.play(phone, [RINGBACK], playback_id=f"rb-{cid}")
            case StopRingback(call_id=cid):
                await ari.rest.stop_playback(f"rb-{cid}")
            case PlaySafeHarbor(call_id=cid) if self.spec.safe_harbor.flow \
                    and await self._start_flow(cid, self.spec.safe_harbor.flow):
                pass
            case PlaySafeHarbor(call_id=cid):
                pid = f"sh-{cid}"
                self.playbacks[pid] = cid
                await ari.rest.play(cid, self._safe_harbor_media(), playback_id=pid)
            case LeaveMessage(call_id=cid):
                pid = f"msg-{cid}"
                self.playbacks[pid] = cid
                await ari.rest.play(cid, ["sound:silence/1", "sound:vm-goodbye"], playback_id=pid)
            case RunAgentless(call_id=cid) if self.spec.flow \
                    and await self._start_flow(cid, self.spec.flow, takes_keys=True):
                pass
            case RunAgentless(call_id=cid):
                # No flow (or no IVR on this server): a built-in message, then the end.
                pid = f"msg-{cid}"
                self.playbacks[pid] = cid
                await ari.rest.play(cid, ["sound:hello-world", "sound:vm-goodbye"], playback_id=pid)
            case Hangup(call_id=cid):
                await ari.rest.hangup(cid)
            case StartTimer(key=key, at=at):
                self._start_timer(key, at)
            case CancelTimer(key=key):
                handle = self.timers.pop(key, None)
                if handle is not None:
                    handle.cancel()
            case SaveAttempt() | SaveLead() | SaveAgent():
                # On its own (`_run` groups a batch's records into one write instead).
                writes = _Writes()
                self._record(command, writes)
                if await self._write(writes) != frozenset():
                    raise DialerError(f"{type(command).__name__} could not be written")
            case AddDnc(number=number, campaign_id=campaign_id):
                await store.dnc_add(number, campaign_id)
            case CallAgentPhone(agent_id=aid):
                self._spawn(self._call_agent(aid))
            case HangupAgentPhone(agent_id=aid):
                channel = self.agent_channels.pop(aid, None)
                if channel is not None:
                    await ari.rest.hangup(channel)
                await ari.rest.destroy_bridge(agent_bridge(self.ari.app, aid))
            case StartRecording(call_id=cid, agent_id=aid):
                await ari.rest.record_bridge(agent_bridge(self.ari.app, aid), cid)
            case StopRecording(call_id=cid):
                await ari.rest.stop_recording(cid)
            case ApplyDisposition(attempt_id=aid_, disposition=disp, callback_at=cb):
                await self._apply_disposition(aid_, disp, cb)

    async def _start_flow(self, cid: str, flow: str, *, takes_keys: bool = False) -> bool:
        """Hand an answered call to an IVR flow; False (the built-in message plays instead)
        when this server has no IVR or the flow is not in the live flow set."""
        call = self.engine.calls.get(cid)
        if self.run_flow is None or call is None:
            log.warning("campaign %s: call %s: no IVR to run flow '%s'; built-in message",
                        self.spec.id, cid, flow)
            return False
        if not await self.run_flow(cid, flow, call.lead, self.spec.id):
            return False
        if takes_keys:
            self.flow_calls.add(cid)
        return True

    async def _bridge_callback(self, channel: str, agent_id: str) -> None:
        try:
            await self.ari.rest.add_channel(agent_bridge(self.ari.app, agent_id), channel)
        except (AriError, DialerError) as exc:
            log.warning("callback %s: bridging to %s failed: %s", channel, agent_id, exc)
            await self.ari.rest.hangup(channel)

    def offer_inbound(self, channel: str, agent_id: str,
                      answered: Callable[[str, str], None], refused: Callable[[str], None]) -> None:
        """Offer an inbound caller (in our Stasis app) to one of our agents."""
        self.inbound_replies[channel] = (answered, refused)
        self.post(InboundOffer(self.clock(), channel, agent_id))

    def offer_callback(self, channel: str, number: str, agent_id: str,
                       answered: Callable[[str, str], None],
                       refused: Callable[[str], None]) -> None:
        """Reserve one of our agents for a queue callback, then dial the customer."""
        self.callback_numbers[channel] = number
        self.offer_inbound(channel, agent_id, answered, refused)

    def _inbound_refused(self, channel: str) -> None:
        self.callback_numbers.pop(channel, None)
        replies = self.inbound_replies.pop(channel, None)
        if replies is not None:
            replies[1](channel)

    def _safe_harbor_media(self) -> list[str]:
        # Seller name and callback number, then the opt-out instruction. Until prompts are
        # rendered per campaign (IVR issue), stock prompts stand in, followed by the digits.
        digits = [f"digits:{d}" for d in self.spec.safe_harbor.callback_number if d.isdigit()]
        return ["sound:silence/1", "sound:agent-unavail", *digits[:15], "sound:vm-goodbye"]

    def _start_timer(self, key: str, at: float) -> None:
        old = self.timers.pop(key, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self.timers.pop(key, None)
            self.post(TimerFired(self.clock(), key))

        self.timers[key] = loop.call_later(max(0.0, at - self.clock()), fire)

    async def _leads_available(self, now: float) -> LeadsAvailable:
        count = await self.store.dialable_count(self.spec.id, now)
        rules = self.spec.matching
        if not rules.required:
            return LeadsAvailable(now, count)
        # Matching: the dialable leads per group, among the first MATCH_SCAN in claim order.
        scanned = await self.store.scan_dialable(self.spec.id, now, rules.required, MATCH_SCAN)
        groups = count_groups(rules, scanned)
        return LeadsAvailable(now, count, tuple(sorted(groups.items())))

    async def _claim_groups(self, count: int, groups: dict[GroupKey, int],
                            release: dict[GroupKey, int]) -> None:
        """Matching: claim each group's first leads (in the store's order, among the first
        MATCH_SCAN), and those of `release` that the engine gives back with a delay."""
        now = self.clock()
        claimed: list[tuple[Lead, bool, str]] = []
        try:
            rules = self.spec.matching
            scanned = await self.store.scan_dialable(self.spec.id, now, rules.required,
                                                     MATCH_SCAN)
            picks = [(lead_id, f"c-{self.spec.id}-{uuid.uuid4().hex[:12]}")
                     for lead_id in pick_leads(rules, scanned, groups, release)]
            claimed = [(lead, on_dnc, cid) for lead, cid, on_dnc
                       in await self.store.claim_listed(self.spec.id, now, picks)]
        finally:
            self.post(LeadsClaimed(now, count, tuple(claimed)))

    async def _claim(self, count: int) -> None:
        now = self.clock()
        claimed: list[tuple[Lead, bool, str]] = []
        try:
            ids = [f"c-{self.spec.id}-{uuid.uuid4().hex[:12]}" for _ in range(count)]
            claimed = [(lead, on_dnc, cid) for lead, cid, on_dnc
                       in await self.store.claim_leads(self.spec.id, now, ids)]
        finally:
            self.post(LeadsClaimed(now, count, tuple(claimed)))

    async def _originate(self, cid: str, endpoint: str, caller_id: str, ring: float,
                         local: bool) -> None:
        try:
            await self.ari.originate(endpoint, channel_id=cid, ring_timeout=ring,
                                     caller_id=caller_id, formats="ulaw" if local else None,
                                     variables={"DIALER_CAMPAIGN": self.spec.id})
        except (AriError, DialerError) as exc:
            log.warning("call %s: originate failed: %s", cid, exc)
            self.metrics.originate_errors.inc()
            self.outcomes.pop(cid, None)
            self.post(CallEnded(self.clock(), cid, DialOutcome.FAILED, None))

    async def _call_agent(self, aid: str) -> None:
        channel = f"agent-{aid}-{uuid.uuid4().hex[:8]}"
        self.agent_channels[aid] = channel
        up = self.ari.expect(StasisStart, lambda e: e.channel.id == channel)
        gone = self.ari.expect(ChannelDestroyed, lambda e: e.channel.id == channel)
        try:
            await self.ari.originate(f"PJSIP/{aid}", channel_id=channel, ring_timeout=30,
                                     caller_id=f"Dialer <{self.spec.id}>")
            waits: set[asyncio.Future[Any]] = {up, gone}
            done, _ = await asyncio.wait(waits, timeout=40,
                                         return_when=asyncio.FIRST_COMPLETED)
            if up not in done:
                raise DialerError(f"agent {aid}: phone did not answer")
            await self.ari.rest.destroy_bridge(agent_bridge(self.ari.app, aid))
            await self.ari.rest.create_bridge(agent_bridge(self.ari.app, aid), name=f"agent {aid}")
            await self.ari.rest.add_channel(agent_bridge(self.ari.app, aid), channel)
            self.post(AgentPhoneAnswered(self.clock(), aid))
        except (AriError, DialerError) as exc:
            log.warning("agent %s: login call failed: %s", aid, exc)
            self.agent_channels.pop(aid, None)
            await self.ari.rest.hangup(channel)
            self.post(AgentPhoneGone(self.clock(), aid))
        finally:
            for fut in (up, gone):
                fut.cancel()

    async def _ring_agent(self, cid: str, aid: str) -> None:
        """Ring-per-call: call the agent's phone for customer `cid` (who waits in Stasis); once
        it answers, put both in the agent's bridge. The engine's connect timer decides when it
        is too late (it hangs this leg up); a leg that fails reports AgentPhoneGone."""
        channel = f"agent-{aid}-{uuid.uuid4().hex[:8]}"
        self.agent_channels[aid] = channel
        up = self.ari.expect(StasisStart, lambda e: e.channel.id == channel)
        gone = self.ari.expect(ChannelDestroyed, lambda e: e.channel.id == channel)
        bridge = agent_bridge(self.ari.app, aid)
        try:
            await self.ari.originate(f"PJSIP/{aid}", channel_id=channel, ring_timeout=30,
                                     caller_id=f"Dialer <{self.spec.id}>")
            waits: set[asyncio.Future[Any]] = {up, gone}
            done, _ = await asyncio.wait(waits, timeout=40, return_when=asyncio.FIRST_COMPLETED)
            if up not in done:
                raise DialerError(f"agent {aid}: phone did not answer")
            call = self.engine.calls.get(cid)
            if self.agent_channels.get(aid) != channel or call is None \
                    or call.agent_id != aid:
                await self.ari.rest.hangup(channel)  # answered too late: the call moved on
                return
            await self.ari.rest.destroy_bridge(bridge)
            await self.ari.rest.create_bridge(bridge, name=f"agent {aid}")
            await self.ari.rest.add_channel(bridge, channel, cid)
        except (AriError, DialerError) as exc:
            log.warning("agent %s: ringing for call %s failed: %s", aid, cid, exc)
            await self.ari.rest.hangup(channel)
            if self.agent_channels.get(aid) == channel:
                del self.agent_channels[aid]
                self.post(AgentPhoneGone(self.clock(), aid))
        finally:
            for fut in (up, gone):
                fut.cancel()

    async def _apply_disposition(self, attempt_id: str, disposition: str,
                                 callback_at: float | None) -> None:
        attempt = await self.store.get_attempt(attempt_id)
        if attempt is None:
            return
        await self.store.save_attempt(replace(attempt, disposition=disposition))
        lead = await self.store.get_lead(attempt.lead_id)
        if lead is None:
            return
        if disposition == "dnc":
            await self.store.dnc_add(lead.phone, self.spec.id)
        updated = with_disposition(lead, disposition, callback_at)
        if updated != lead:
            await self.store.finish_lead(updated)

    # ---------------------------------------------------------------------- ARI events in
    def on_ari(self, item: AriItem) -> None:
        """Translate one ARI item about our channels into core events (never blocks)."""
        now = self.clock()
        match item:
            case StasisStart(channel=ch, args=args) if ch.id in self.outcomes:
                self.outcomes[ch.id].feed(item)
                if args and args[0] == "amd-continue":
                    status = args[1] if len(args) > 1 else "NOTSURE"
                    self.post(AmdDone(now, ch.id, status, args[2] if len(args) > 2 else ""))
                else:
                    self.post(CallAnswered(now, ch.id))
            case ChannelEnteredBridge(channel=ch) if ch.id in self.outcomes:
                started = self.connect_started.pop(ch.id, None)
                if started is not None:
                    latency = time.perf_counter() - started
                    self.connect_latencies.append(latency)
                    self.metrics.connect_latency.observe(latency)
                self.post(CallBridged(now, ch.id))
            case StasisStart(channel=ch) if ch.id in self.callback_numbers \
                    and ch.id in self.inbound_channels:
                del self.callback_numbers[ch.id]  # the customer answered the callback
                self._spawn(self._bridge_callback(ch.id, self.inbound_channels[ch.id]))
            case ChannelEnteredBridge(channel=ch) if ch.id in self.inbound_channels:
                self.post(InboundBridged(now, ch.id))
                replies = self.inbound_replies.pop(ch.id, None)
                if replies is not None:
                    replies[0](ch.id, self.inbound_channels[ch.id])
            case ChannelLeftBridge(channel=ch) | ChannelDestroyed(channel=ch) \
                    if ch.id in self.inbound_channels:
                del self.inbound_channels[ch.id]
                self._inbound_refused(ch.id)  # if it never reached the agent
                self.post(InboundEnded(now, ch.id))
                if isinstance(item, ChannelLeftBridge):  # dropped from the agent's bridge
                    self._spawn(self.ari.rest.hangup(ch.id))
            case ChannelDtmfReceived(channel=ch) if ch.id in self.flow_calls:
                # An agentless flow's keys are its own (its opt-out goes to the DNC list
                # itself). A safe-harbor flow's opt-out key reaches the core too, which marks
                # the lead DNC as with the built-in message.
                pass
            case ChannelDtmfReceived(channel=ch, digit=digit) if ch.id in self.outcomes:
                self.post(DigitPressed(now, ch.id, digit))
            case ChannelDtmfReceived(channel=ch, digit=digit) if ch.id in self.agent_channels.values():
                aid = next(a for a, c in self.agent_channels.items() if c == ch.id)
                agent = self.engine.agents.get(aid)
                if self.escalation.phone_key(aid, digit, now):
                    pass  # a feature code (*8 cold, *9 warm escalation, ...)
                elif digit in PHONE_CODES and agent is not None and agent.call_id is not None:
                    self.post(Disposition(now, aid, PHONE_CODES[digit]))
            case PlaybackFinished(playback=pb) if pb.id in self.playbacks:
                self.post(PlaybackDone(now, self.playbacks.pop(pb.id)))
            case ChannelDestroyed(channel=ch) if ch.id in self.outcomes:
                self.flow_calls.discard(ch.id)
                tracker = self.outcomes.pop(ch.id)
                tracker.feed(item)
                self.connect_started.pop(ch.id, None)
                self.post(CallEnded(now, ch.id, tracker.outcome, tracker.cause))
            case ChannelDestroyed(channel=ch) if ch.id in self.agent_channels.values():
                aid = next(a for a, c in self.agent_channels.items() if c == ch.id)
                del self.agent_channels[aid]
                self.post(AgentPhoneGone(now, aid))
            case _:
                if hasattr(item, "peer") or hasattr(item, "channel"):
                    channel = getattr(item, "peer", None) or getattr(item, "channel", None)
                    cid = getattr(channel, "id", None)
                    if cid in self.outcomes:
                        self.outcomes[cid].feed(item)

    def owns(self, channel_id: str) -> bool:
        return channel_id in self.outcomes or channel_id in self.agent_channels.values() \
            or channel_id in self.inbound_channels

    # --------------------------------------------------------------------------- recovery
    async def _recover(self) -> None:
        """After a restart: close every attempt left in flight, record it, free its lead."""
        now = self.clock()
        channels = {c.id: c for c in await self.ari.rest.list_channels()}
        live = set(channels)
        bridges = {b.id: b for b in await self.ari.rest.list_bridges()}
        await self.escalation.recover(bridges)  # holding bridges a previous run left
        prefix = agent_bridge(self.ari.app, "")
        # Telephony runs ahead of the records (`_run`), so a process killed in between leaves
        # an attempt whose record lags Asterisk by one step: read the missing facts from
        # Asterisk (a channel Up was answered; one in an agent's bridge was connected).
        connected_to = {ch: bid.removeprefix(prefix) for bid, b in bridges.items()
                        if bid.startswith(prefix) for ch in b.channels}
        for attempt in await self.store.in_flight_attempts(self.spec.id):
            if attempt.id in live:
                await self.ari.rest.hangup(attempt.id)
            agent = connected_to.get(attempt.id)
            if agent is not None and attempt.connected_at is None:
                attempt = replace(attempt, connected_at=now, agent_id=attempt.agent_id or agent)
            if attempt.id in channels and channels[attempt.id].state == "Up" \
                    and attempt.answered_at is None:
                attempt = replace(attempt, answered_at=now)
            if attempt.connected_at is not None:
                result = AttemptResult.TALKED
            elif attempt.amd_done_at is not None or attempt.answered_at is not None:
                result = AttemptResult.HUNG_UP_EARLY
            else:
                result = AttemptResult.FAILED
            ended = replace(attempt, ended_at=now, result=result)
            await self.store.save_attempt(ended)
            self._attempt_ended(ended)
            self.metrics.call_ended(result)
            lead = await self.store.get_lead(attempt.lead_id)
            if lead is not None:
                await self.store.finish_lead(after_attempt(
                    lead, result, now=now, rules=self.spec.retry, uk_mode=self.spec.uk_mode))
            log.warning("campaign %s: closed attempt %s left by a previous run (%s)",
                        self.spec.id, attempt.id, result.value)
        # Leads claimed by the previous run that never got as far as an attempt record were
        # not dialed (the attempt is saved before the originate): give them back unchanged.
        for lead_id, attempt_id in (await self.store.in_flight_leads(self.spec.id)).items():
            if attempt_id in live:
                await self.ari.rest.hangup(attempt_id)
            await self.store.reschedule_lead(lead_id, now)
        for agent_id in await self.store.list_agents():
            data = await self.store.get_agent(agent_id)
            if data and data.get("campaign") == self.spec.id \
                    and data.get("state") != AgentState.LOGGED_OUT.value:
                # Their phone leg died with the old process's bridge ownership: log them out;
                # they log in again (the phone rings once). Only our own phone channel and
                # bridge are touched (another dialer may hold the same agent id).
                bridge = bridges.get(agent_bridge(self.ari.app, agent_id))
                phones = {data.get("channel", "")} | set(bridge.channels if bridge else ())
                for channel in phones & live:
                    if channel.startswith(f"agent-{agent_id}-"):
                        await self.ari.rest.hangup(channel)
                await self.ari.rest.destroy_bridge(agent_bridge(self.ari.app, agent_id))
                await self.store.save_agent(agent_id, {**data, "state": "LOGGED_OUT"})


class Dialer:
    """All running campaigns of this process, and the routing of ARI items to them."""

    def __init__(self, ari: Ari, store: Store, clock: Callable[[], float] = time.time,
                 metrics: Metrics = METRICS, profiles: ProfileSet | None = None) -> None:
        self.ari = ari
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self._event_lag = metrics.ari_event_lag
        self.runners: dict[str, CampaignRunner] = {}
        # Shared with every runner (`CampaignRunner.on_attempt_ended`): webhooks listen here.
        self.on_attempt_ended: list[Callable[[Attempt], None]] = []
        # Agents' routing profiles: the profiles file, and what each agent gave at login.
        self.profiles = profiles
        self.agent_profiles: dict[str, AgentProfile] = {}
        # Runs an IVR flow on an answered campaign call (agentless, safe harbor): the server
        # sets it when it has an IVR (`CampaignRunner.run_flow`).
        self.run_flow: Callable[[str, str, Lead, str], Awaitable[bool]] | None = None
        self._unlisten = ari.listen(self._route)

    def _route(self, item: AriItem) -> None:
        if isinstance(item, StreamReady):
            if item.reconnect:
                self.metrics.ari_reconnects.inc()
            return
        stamped = getattr(item, "timestamp", 0.0)  # Asterisk's wall clock, ms resolution
        if stamped > 0:
            self._event_lag.observe(max(0.0, time.time() - stamped))
        for runner in self.runners.values():
            runner.on_ari(item)

    async def settle(self) -> None:
        """Every record the runners have decided is on record when this returns (the API
        calls it before handling a request, so clients read their own writes)."""
        for runner in tuple(self.runners.values()):
            await runner.settle()

    def runner_for_agent(self, agent_id: str) -> CampaignRunner | None:
        for runner in self.runners.values():
            if agent_id in runner.engine.agents:
                return runner
        return None

    async def start_campaign(self, campaign_id: str) -> CampaignRunner:
        spec = await self.store.get_campaign(campaign_id)
        if spec is None:
            raise DialerError(f"unknown campaign '{campaign_id}'")
        runner = self.runners.get(campaign_id)
        if runner is None:
            runner = CampaignRunner(spec, self.ari, self.store, self.clock, self.metrics)
            runner.on_attempt_ended = self.on_attempt_ended
            runner.escalation.supervisors = self.supervisor_ids
            runner.run_flow = self.run_flow
            self.runners[campaign_id] = runner
            await runner.start(running=True)
        else:
            runner.post(SetRunning(self.clock(), True))
        await self.store.set_campaign_status(campaign_id, "running")
        return runner

    async def pause_campaign(self, campaign_id: str) -> None:
        runner = self.runners.get(campaign_id)
        if runner is None:
            raise DialerError(f"campaign '{campaign_id}' is not running")
        runner.post(SetRunning(self.clock(), False))
        await self.store.set_campaign_status(campaign_id, "paused")

    async def resume_all(self) -> list[str]:
        """At start-up: resume the campaigns that were running before a restart."""
        resumed = []
        for campaign_id in await self.store.running_campaigns():
            await self.start_campaign(campaign_id)
            resumed.append(campaign_id)
        return resumed

    def login_agent(self, campaign_id: str, agent_id: str,
                    profile: AgentProfile | None = None) -> None:
        """Log an agent in; `profile` (skills, attributes given at login) wins over the
        profiles file's entry for them."""
        runner = self.runners.get(campaign_id)
        if runner is None:
            raise DialerError(f"campaign '{campaign_id}' is not running")
        other = self.runner_for_agent(agent_id)
        if other is not None:
            raise DialerError(f"agent {agent_id} is already logged in to {other.spec.id}")
        if profile is not None:
            self.agent_profiles[agent_id] = profile
        else:
            self.agent_profiles.pop(agent_id, None)
        runner.post(AgentLogin(self.clock(), agent_id, self.agent_profile(agent_id)))

    def supervisor_ids(self) -> frozenset[str]:
        """Logged-in agents (any campaign) whose profile has the supervisor skill."""
        return frozenset(aid for runner in self.runners.values() for aid in runner.engine.agents
                         if (profile := self.agent_profile(aid)) is not None
                         and profile.skill(SUPERVISOR_SKILL) > 0)

    def agent_profile(self, agent_id: str) -> AgentProfile | None:
        """The agent's routing profile: given at login, else from the profiles file."""
        given = self.agent_profiles.get(agent_id)
        if given is not None:
            return given
        return self.profiles.get(agent_id) if self.profiles is not None else None

    def offer_callback(self, agent_id: str, channel: str, number: str,
                       answered: Callable[[str, str], None],
                       refused: Callable[[str], None]) -> bool:
        """A queue callback: reserve the agent in their campaign, then dial `number` on its
        trunk and bridge the answer to them. False: the agent is not logged in here."""
        runner = self.runner_for_agent(agent_id)
        if runner is None:
            return False
        runner.offer_callback(channel, number, agent_id, answered, refused)
        return True

    def offer_inbound(self, agent_id: str, channel: str, answered: Callable[[str, str], None],
                      refused: Callable[[str], None]) -> bool:
        """Offer an inbound caller to an agent through the agent's campaign (whose engine
        reserves them, or refuses if they are no longer free). False: not logged in here."""
        runner = self.runner_for_agent(agent_id)
        if runner is None:
            return False
        runner.offer_inbound(channel, agent_id, answered, refused)
        return True

    async def close(self) -> None:
        self._unlisten()
        for runner in self.runners.values():
            await runner.stop()
