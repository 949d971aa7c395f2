"""Every Prometheus metric of the dialer, defined in one place.

Names follow Prometheus conventions: `dialer_` prefix, base units (seconds, ratios 0-1),
`_total` for counters, `_seconds` for durations. Labels are only the campaign id, the attempt
result, the agent state and the not-dialing reason: never a call, lead or agent id.

Two kinds of metric:

* Things that *happen* are counters and histograms, updated where they happen in the runtime
  (`dialer.runner`): calls by result, originates and their errors, answer-to-agent connect
  latency, agent idle gaps, ARI event lag. Each campaign's label values are created at zero
  when its runner starts (`Metrics.campaign`), so `rate()` sees the first increase and the
  dashboard's queries have series before the first call ends.
* Things that *are* (calls in flight, agents by state, abandon rate, leads, why a campaign is
  not dialing) are read from the live `Dialer` at scrape time by `LiveCollector`, so there is
  no second copy of the core's state to drift. What only the store knows (today's abandon
  counts, leads left, whether the waiting leads are outside their calling window) is read by
  `Metrics.refresh` just before the scrape renders.

Answer rate is a PromQL ratio: ``rate(dialer_calls_answered_total)`` over
``rate(dialer_calls_total)``. The Grafana dashboard is `docker/grafana/dashboards/dialer.json`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from redis.exceptions import RedisError

from dialer.core.agent import AgentState
from dialer.core.model import AttemptResult, DialMode, LeadState
from dialer.core.window import in_window
from dialer.errors import DialerError

if TYPE_CHECKING:
    from dialer.core.campaign import CampaignEngine
    from dialer.runner import Dialer
    from dialer.store.base import Store

log = logging.getLogger(__name__)

# No `<name>_created` series beside each counter and histogram: in the text format they are
# gauges named like metrics of their own (`dialer_calls_created` reads as "calls created") and
# Prometheus does not use them. Process-wide, and this module is the process's only user.
disable_created_metrics()  # type: ignore[no-untyped-call]  # un-annotated upstream

# Results where the far end answered (a person or a machine): the numerator of the answer rate.
ANSWERED_RESULTS = frozenset({
    AttemptResult.TALKED, AttemptResult.AGENTLESS, AttemptResult.ABANDONED,
    AttemptResult.MACHINE, AttemptResult.HUNG_UP_EARLY,
})

# Agents in these states count toward dial level and occupancy ("logged in and working");
# PAUSED and CONNECTING (their phone is still ringing) do not.
WORKING = (AgentState.READY, AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP)
ENGAGED = (AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP)
# Every state an agent of a running campaign can be in (a logged-out agent leaves the engine).
AGENT_STATES: tuple[AgentState, ...] = tuple(s for s in AgentState if s is not AgentState.LOGGED_OUT)

# Answer-to-bridged on this machine is 1.4-4.5 ms (TESTBED.md); the 2-second rule is the top.
CONNECT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
IDLE_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

WINDOW_SAMPLE = 20  # READY leads looked at to tell "outside the calling window" from "exhausted"


class NotDialing(StrEnum):
    """Why a campaign places no calls (or, for abandon_ceiling, why it dials ahead of its agents
    only on its small recovery budget, or not at all in UK mode when the estimated AMD false
    positives alone hold the window near the ceiling)."""

    PAUSED = "paused"
    ASTERISK_UNREACHABLE = "asterisk_unreachable"
    LEADS_EXHAUSTED = "leads_exhausted"
    OUTSIDE_CALLING_WINDOW = "outside_calling_window"
    NO_READY_AGENTS = "no_ready_agents"
    ABANDON_CEILING = "abandon_ceiling"


@dataclass(frozen=True, slots=True)
class StoreFacts:
    """What only the store knows about a campaign, read just before a scrape."""

    leads_remaining: int  # READY (now or later) + IN_PROGRESS
    abandoned_today: int
    humans_today: int
    window_closed: bool  # no lead is dialable, some wait, and those sampled are outside hours


def not_dialing_reason(engine: CampaignEngine, *, ari_ready: bool,
                       window_closed: bool = False) -> NotDialing | None:
    """The first reason, in this order, that keeps the campaign from dialing; None if it can.

    `engine.leads_available` is the runtime's count of leads dialable now (refreshed every
    2 s). `window_closed` says the leads that remain are waiting for their calling window
    (from `StoreFacts`); otherwise no dialable lead means the leads are exhausted for now."""
    if not engine.running:
        return NotDialing.PAUSED
    if not ari_ready:
        return NotDialing.ASTERISK_UNREACHABLE
    if engine.leads_available <= 0:
        return NotDialing.OUTSIDE_CALLING_WINDOW if window_closed else NotDialing.LEADS_EXHAUSTED
    mode = engine.spec.dial_mode
    if mode is DialMode.AGENTLESS:
        return None
    ready = sum(1 for a in engine.agents.values() if a.state is AgentState.READY)
    engaged = sum(1 for a in engine.agents.values() if a.state in ENGAGED)
    # Predictive pacing may dial for agents about to finish a call; the others need a ready one.
    if ready == 0 and (mode is not DialMode.PREDICTIVE or engaged == 0):
        return NotDialing.NO_READY_AGENTS
    # At the ceiling the predictive pacer dials ahead only on its floor budget, a fraction of
    # the target, to bring the window's rate back down (dialer.core.pacing).
    if mode is DialMode.PREDICTIVE and engine.abandon_rate >= engine.spec.abandon_target:
        return NotDialing.ABANDON_CEILING
    return None


@dataclass(frozen=True, slots=True)
class CampaignView:
    """One campaign's live gauges at one instant (pure: built from the engine and facts)."""

    campaign: str
    calls_in_flight: int
    calls_waiting: int
    agents: Mapping[AgentState, int]
    dial_level: float | None  # calls in flight per working agent; None with no agent working
    occupancy: float | None  # engaged / working agents; None with no agent working
    abandon_ratio: float  # the measuring window: 30 days, or today in UK mode
    abandon_today_ratio: float | None  # None when the store could not be read
    abandon_target: float
    leads_dialable: int
    leads_remaining: int | None
    not_dialing: NotDialing | None


def campaign_view(engine: CampaignEngine, *, ari_ready: bool,
                  facts: StoreFacts | None) -> CampaignView:
    agents: dict[AgentState, int] = dict.fromkeys(AGENT_STATES, 0)
    for agent in engine.agents.values():
        if agent.state in agents:
            agents[agent.state] += 1
    working = sum(agents[s] for s in WORKING)
    engaged = sum(agents[s] for s in ENGAGED)
    in_flight = len(engine.calls)
    if engine.spec.uk_mode:
        today: float | None = engine.abandon_rate  # the UK window is the calendar day
    elif facts is None:
        today = None
    else:
        today = facts.abandoned_today / facts.humans_today if facts.humans_today else 0.0
    return CampaignView(
        campaign=engine.spec.id,
        calls_in_flight=in_flight,
        calls_waiting=len(engine.waiting),
        agents=agents,
        dial_level=in_flight / working if working else None,
        occupancy=engaged / working if working else None,
        abandon_ratio=engine.abandon_rate,
        abandon_today_ratio=today,
        abandon_target=engine.spec.abandon_target,
        leads_dialable=max(0, engine.leads_available - engine.claims_pending),
        leads_remaining=None if facts is None else facts.leads_remaining,
        not_dialing=not_dialing_reason(engine, ari_ready=ari_ready,
                                       window_closed=facts is not None and facts.window_closed),
    )


async def read_store_facts(store: Store, engine: CampaignEngine, now: float) -> StoreFacts:
    cid, spec = engine.spec.id, engine.spec
    counts = await store.count_leads(cid)
    ready = counts[LeadState.READY.value]
    abandoned = humans = 0
    if not spec.uk_mode:  # UK mode's window is today already: the engine has it
        abandoned, humans = await store.abandon_stats(cid, now - now % 86400)
    window_closed = False
    if engine.leads_available <= 0 < ready:
        sample = await store.list_leads(cid, state=LeadState.READY, limit=WINDOW_SAMPLE)
        window_closed = bool(sample) and not any(
            lead.timezones and in_window(lead.timezones, now, spec.window_start, spec.window_end)
            for lead in sample)
    return StoreFacts(ready + counts[LeadState.IN_PROGRESS.value], abandoned, humans,
                      window_closed)


def _family(name: str, doc: str, labels: Iterable[str] = ("campaign",)) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


class LiveCollector:
    """Gauges computed at scrape time from the live `Dialer` set by `Metrics.refresh`."""

    def __init__(self) -> None:
        self.dialer: Dialer | None = None
        self.facts: dict[str, StoreFacts] = {}

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def _families(self) -> list[GaugeMetricFamily]:
        return [
            _family("dialer_calls_in_flight", "Calls placed and not yet ended"),
            _family("dialer_calls_waiting", "Answered people waiting for an agent"),
            _family("dialer_dial_level",
                    "Calls in flight per working agent (ready, reserved, on a call, wrap-up)"),
            _family("dialer_abandon_ratio", "Abandoned calls / calls answered by a person, in "
                    "the measuring window (30 days, or today in UK mode)"),
            _family("dialer_abandon_today_ratio",
                    "Abandoned calls / calls answered by a person, today (UTC day)"),
            _family("dialer_abandon_target_ratio", "The campaign's abandon-rate ceiling"),
            _family("dialer_agents", "Agents logged in to the campaign, by state",
                    ("campaign", "state")),
            _family("dialer_agent_occupancy_ratio",
                    "Working agents who are reserved, on a call or in wrap-up"),
            _family("dialer_leads_dialable", "Leads that could be dialed now"),
            _family("dialer_leads_remaining", "Leads not finished: ready (now or later) or in "
                    "progress"),
            _family("dialer_campaign_not_dialing",
                    "1 for the reason the campaign is not dialing (abandon_ceiling: at the abandon "
                    "ceiling, dialing ahead of its agents only on its recovery budget), 0 for the "
                    "others", ("campaign", "reason")),
        ]

    def collect(self) -> Iterable[Metric]:
        dialer = self.dialer
        families = self._families()
        if dialer is None:
            return families
        (in_flight, waiting, level, abandon, today, target, agents, occupancy, dialable,
         remaining, not_dialing) = families
        ari_ready = dialer.ari.ready
        for cid, runner in list(dialer.runners.items()):
            view = campaign_view(runner.engine, ari_ready=ari_ready, facts=self.facts.get(cid))
            label = [cid]
            in_flight.add_metric(label, view.calls_in_flight)
            waiting.add_metric(label, view.calls_waiting)
            if view.dial_level is not None:
                level.add_metric(label, view.dial_level)
            abandon.add_metric(label, view.abandon_ratio)
            if view.abandon_today_ratio is not None:
                today.add_metric(label, view.abandon_today_ratio)
            target.add_metric(label, view.abandon_target)
            for state, count in view.agents.items():
                agents.add_metric([cid, state.value], count)
            if view.occupancy is not None:
                occupancy.add_metric(label, view.occupancy)
            dialable.add_metric(label, view.leads_dialable)
            if view.leads_remaining is not None:
                remaining.add_metric(label, view.leads_remaining)
            for reason in NotDialing:
                not_dialing.add_metric([cid, reason.value], 1 if view.not_dialing is reason else 0)
        return families


class CampaignMetrics:
    """One campaign's counters and histograms, label values bound once (the hot path only
    increments)."""

    def __init__(self, metrics: Metrics, campaign_id: str) -> None:
        self.results = {r: metrics.calls.labels(campaign_id, r.value) for r in AttemptResult}
        self.answered = metrics.calls_answered.labels(campaign_id)
        self.originated = metrics.calls_originated.labels(campaign_id)
        self.originate_errors = metrics.originate_errors.labels(campaign_id)
        self.connect_latency = metrics.connect_latency.labels(campaign_id)
        self.agent_idle = metrics.agent_idle.labels(campaign_id)

    def call_ended(self, result: AttemptResult) -> None:
        self.results[result].inc()
        if result in ANSWERED_RESULTS:
            self.answered.inc()


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.ari_stream_up = Gauge(
            "dialer_ari_event_stream_up", "1 while the ARI event WebSocket is connected", registry=r
        )
        self.ari_reconnects = Counter(
            "dialer_ari_event_stream_reconnects_total", "ARI event WebSocket reconnections",
            registry=r,
        )
        self.ari_event_lag = Histogram(
            "dialer_ari_event_lag_seconds",
            "From Asterisk's timestamp on an ARI event to the dialer routing it", registry=r,
            buckets=LAG_BUCKETS,
        )
        self.calls = Counter(
            "dialer_calls_total", "Call attempts ended, by result", ["campaign", "result"],
            registry=r,
        )
        self.calls_answered = Counter(
            "dialer_calls_answered_total",
            "Call attempts ended that had been answered (by a person or a machine)",
            ["campaign"], registry=r,
        )
        self.calls_originated = Counter(
            "dialer_calls_originated_total", "Calls placed (originates asked of Asterisk)",
            ["campaign"], registry=r,
        )
        self.originate_errors = Counter(
            "dialer_originate_errors_total", "Originates that Asterisk refused or that failed",
            ["campaign"], registry=r,
        )
        self.connect_latency = Histogram(
            "dialer_agent_connect_latency_seconds",
            "From handing an answered person to an agent to their entering the agent's bridge",
            ["campaign"], registry=r, buckets=CONNECT_BUCKETS,
        )
        self.agent_idle = Histogram(
            "dialer_agent_idle_seconds", "Time an agent waited ready before being given a call",
            ["campaign"], registry=r, buckets=IDLE_BUCKETS,
        )
        self.ivr_calls = Counter(
            "dialer_ivr_calls_total", "IVR calls ended, by flow and how they ended",
            ["flow", "outcome"], registry=r,
        )
        self.ivr_calls_active = Gauge(
            "dialer_ivr_calls_active", "Calls running an IVR flow now", registry=r,
        )
        self.ivr_flow_problems = Counter(
            "dialer_ivr_flow_problems_total",
            "Runtime flow problems (template error, missing prompt, failed TTS), by flow",
            ["flow"], registry=r,
        )
        self.ivr_reloads = Counter(
            "dialer_ivr_reloads_total", "Flow set reloads that went live", registry=r,
        )
        self.ivr_reload_failures = Counter(
            "dialer_ivr_reload_failures_total",
            "Flow set reloads refused because a file had errors (the last good set stays live)",
            registry=r,
        )
        self.ivr_flowset_errors = Gauge(
            "dialer_ivr_flowset_errors",
            "Errors in the flow files on disk at the last reload (0: the files on disk are live)",
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "dialer_webhook_deliveries_total",
            "Webhook deliveries and tries by result: delivered, retried (a try failed, another "
            "follows), failed (gave up), rejected (a 4xx: not retried), dropped (queue full or "
            "shut down)",
            ["result"], registry=r,
        )
        self.live = LiveCollector()
        r.register(self.live)

    def campaign(self, campaign_id: str) -> CampaignMetrics:
        return CampaignMetrics(self, campaign_id)

    async def refresh(self, dialer: Dialer | None) -> None:
        """Point the live gauges at `dialer` and read what only the store knows. A campaign
        whose store read fails is exported without the store-derived gauges."""
        self.live.dialer = dialer
        if dialer is None:
            self.live.facts = {}
            return
        now = dialer.clock()
        runners = list(dialer.runners.items())
        results = await asyncio.gather(
            *(read_store_facts(dialer.store, runner.engine, now) for _, runner in runners),
            return_exceptions=True)
        facts: dict[str, StoreFacts] = {}
        for (cid, _), result in zip(runners, results, strict=True):
            if isinstance(result, StoreFacts):
                facts[cid] = result
            elif isinstance(result, DialerError | RedisError | OSError):
                log.warning("metrics: campaign %s: cannot read the store: %s", cid, result)
            else:
                raise result
        self.live.facts = facts

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


METRICS = Metrics()
