"""Metrics: the not-dialing reason, the live gauges computed from a campaign engine, the store
facts read at scrape time (in-memory store), the exposition a scrape renders, and the runtime's
counters where they are updated. No testbed, no mocks: real engines driven by events."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dialer.ari import Ari, StreamReady
from dialer.ari.events import UnknownEvent
from dialer.config import AriConfig, Secret
from dialer.core.agent import Agent, AgentState
from dialer.core.campaign import (
    AbandonStats,
    AgentLogin,
    AgentPhoneAnswered,
    CallAnswered,
    CallBridged,
    CampaignEngine,
    LeadsAvailable,
    LeadsClaimed,
    SaveAgent,
    SaveAttempt,
    SetRunning,
)
from dialer.core.model import (
    Attempt,
    AttemptResult,
    CampaignSpec,
    DialMode,
    Lead,
    LeadState,
    SafeHarbor,
)
from dialer.metrics import (
    ANSWERED_RESULTS,
    CampaignView,
    Metrics,
    NotDialing,
    StoreFacts,
    campaign_view,
    not_dialing_reason,
    read_store_facts,
)
from dialer.runner import CampaignRunner, Dialer
from dialer.store.base import StoreUnavailable
from dialer.store.memory import MemoryStore

# 2026-11-24 15:00 UTC = 10:00 in New York: inside the calling window.
NOON = datetime(2026, 11, 24, 15, 0, tzinfo=UTC).timestamp()
NIGHT = datetime(2026, 11, 25, 4, 0, tzinfo=UTC).timestamp()  # 23:00 in New York
NY = ("America/New_York",)


def spec(mode: DialMode = DialMode.PROGRESSIVE, **kw: object) -> CampaignSpec:
    return CampaignSpec(
        id="camp", name="Camp", dial_mode=mode, trunk="PJSIP/{number}@carrier",
        caller_id="Acme <+15550100>", safe_harbor=SafeHarbor("Acme", "+15550100"),
        max_cps=100, **kw,  # type: ignore[arg-type]
    )


def engine_with(mode: DialMode = DialMode.PROGRESSIVE, *, agents: int = 0, leads: int = 10,
                running: bool = True, **kw: object) -> CampaignEngine:
    engine = CampaignEngine(spec(mode, **kw))
    engine.handle(SetRunning(NOON, running))
    engine.handle(LeadsAvailable(NOON, leads))
    for i in range(agents):
        engine.handle(AgentLogin(NOON, f"agent-{i}"))
        engine.handle(AgentPhoneAnswered(NOON, f"agent-{i}"))
    return engine


def connect_call(engine: CampaignEngine, n: int = 1) -> str:
    """Dial a lead, answer it, bridge it to the longest-ready agent: that agent is ON_CALL."""
    cid = f"call-{n}"
    lead = Lead(f"L{n}", engine.spec.id, f"+1212555{n:04d}", NY, state=LeadState.IN_PROGRESS)
    engine.handle(LeadsClaimed(NOON + 1, 1, ((lead, False, cid),)))
    engine.handle(CallAnswered(NOON + 3, cid))
    engine.handle(CallBridged(NOON + 3.01, cid))
    return cid


# ------------------------------------------------------------------------ not dialing
def test_a_paused_campaign_is_not_dialing_because_paused_whatever_else_holds() -> None:
    engine = engine_with(agents=0, leads=0, running=False)
    assert not_dialing_reason(engine, ari_ready=False) is NotDialing.PAUSED


def test_with_the_ari_event_stream_down_asterisk_is_unreachable() -> None:
    engine = engine_with(agents=2)
    assert not_dialing_reason(engine, ari_ready=False) is NotDialing.ASTERISK_UNREACHABLE


def test_with_no_dialable_lead_the_leads_are_exhausted_unless_they_wait_for_their_window() -> None:
    engine = engine_with(agents=2, leads=0)
    assert not_dialing_reason(engine, ari_ready=True) is NotDialing.LEADS_EXHAUSTED
    assert not_dialing_reason(engine, ari_ready=True, window_closed=True) \
        is NotDialing.OUTSIDE_CALLING_WINDOW


@pytest.mark.parametrize("mode", [DialMode.PROGRESSIVE, DialMode.POWER, DialMode.PREDICTIVE])
def test_with_no_agent_logged_in_no_mode_with_agents_dials(mode: DialMode) -> None:
    assert not_dialing_reason(engine_with(mode), ari_ready=True) is NotDialing.NO_READY_AGENTS


def test_progressive_waits_for_a_ready_agent_but_predictive_dials_ahead_of_a_busy_one() -> None:
    for mode, reason in ((DialMode.PROGRESSIVE, NotDialing.NO_READY_AGENTS),
                         (DialMode.PREDICTIVE, None)):
        engine = engine_with(mode, agents=1)
        connect_call(engine)
        assert engine.agents["agent-0"].state is AgentState.ON_CALL
        assert not_dialing_reason(engine, ari_ready=True) is reason, mode


def test_predictive_at_its_abandon_ceiling_says_so() -> None:
    engine = engine_with(DialMode.PREDICTIVE, agents=1)
    engine.handle(AbandonStats(NOON, abandoned=3, humans=100))  # 3 % = the target
    assert not_dialing_reason(engine, ari_ready=True) is NotDialing.ABANDON_CEILING
    engine.handle(AbandonStats(NOON, abandoned=2, humans=100))
    assert not_dialing_reason(engine, ari_ready=True) is None


def test_agentless_needs_no_agent_and_progressive_ignores_the_abandon_ceiling() -> None:
    assert not_dialing_reason(engine_with(DialMode.AGENTLESS), ari_ready=True) is None
    engine = engine_with(DialMode.PROGRESSIVE, agents=1)
    engine.handle(AbandonStats(NOON, abandoned=10, humans=100))
    assert not_dialing_reason(engine, ari_ready=True) is None


# ------------------------------------------------------------------------ live gauges
def test_one_call_on_one_of_two_agents_gives_dial_level_and_occupancy_of_one_half() -> None:
    engine = engine_with(agents=2)
    connect_call(engine)
    view = campaign_view(engine, ari_ready=True, facts=StoreFacts(7, 1, 40, False))
    assert view == CampaignView(
        campaign="camp", calls_in_flight=1, calls_waiting=0,
        agents={AgentState.CONNECTING: 0, AgentState.READY: 1, AgentState.RESERVED: 0,
                AgentState.ON_CALL: 1, AgentState.WRAP_UP: 0, AgentState.PAUSED: 0},
        dial_level=0.5, occupancy=0.5, abandon_ratio=0.0, abandon_today_ratio=0.025,
        abandon_target=0.03, leads_dialable=10, leads_remaining=7, not_dialing=None)


def test_with_no_working_agent_dial_level_and_occupancy_are_left_out_not_zero() -> None:
    engine = engine_with(agents=0)
    engine.agents["agent-9"] = Agent("agent-9", AgentState.PAUSED, NOON)
    view = campaign_view(engine, ari_ready=True, facts=None)
    assert (view.dial_level, view.occupancy) == (None, None)
    assert view.agents[AgentState.PAUSED] == 1
    # Without store facts, the store-derived gauges are unknown rather than zero.
    assert (view.leads_remaining, view.abandon_today_ratio) == (None, None)


def test_in_uk_mode_today_is_the_measuring_window_itself() -> None:
    engine = engine_with(agents=1, uk_mode=True)
    engine.handle(AbandonStats(NOON, abandoned=1, humans=50))
    view = campaign_view(engine, ari_ready=True, facts=StoreFacts(0, 0, 0, False))
    assert view.abandon_today_ratio == view.abandon_ratio == 0.02


# ------------------------------------------------------------------------ store facts
async def test_leads_waiting_for_their_calling_window_at_night_read_as_window_closed() -> None:
    store = MemoryStore()
    engine = engine_with(agents=1, leads=0)
    morning = datetime(2026, 11, 25, 13, 0, tzinfo=UTC).timestamp()  # 08:00 in New York
    await store.add_leads("camp", [Lead("camp:1", "camp", "+12125550001", NY, next_at=morning),
                                   Lead("camp:2", "camp", "+12125550002", NY,
                                        state=LeadState.DONE)])
    facts = await read_store_facts(store, engine, NIGHT)
    assert facts == StoreFacts(leads_remaining=1, abandoned_today=0, humans_today=0,
                               window_closed=True)
    # The same lead at noon, due later (a retry), is not a closed window: leads are used up.
    assert not (await read_store_facts(store, engine, NOON)).window_closed


async def test_todays_abandon_counts_come_from_the_attempts_ended_today() -> None:
    store = MemoryStore()
    engine = engine_with(agents=1)
    for i, (result, day) in enumerate([(AttemptResult.ABANDONED, NOON),
                                       (AttemptResult.TALKED, NOON),
                                       (AttemptResult.ABANDONED, NOON - 86400)]):
        await store.save_attempt(Attempt(f"a{i}", "camp", f"L{i}", "+12125550001", day - 60,
                                         ended_at=day, result=result))
    facts = await read_store_facts(store, engine, NOON + 60)
    assert (facts.abandoned_today, facts.humans_today) == (1, 2)


# --------------------------------------------------------------------------- scrapes
def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, _ = metrics.render()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples}


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


def dialer_with(metrics: Metrics, store: MemoryStore, *engines: CampaignEngine) -> Dialer:
    """A real Dialer and runners (nothing connected: ARI is not ready) around these engines."""
    ari = Ari(AriConfig("http://127.0.0.1:1", "dialer", Secret("secret"), "unit"))
    dialer = Dialer(ari, store, lambda: NOON, metrics)
    for engine in engines:
        runner = CampaignRunner(engine.spec, ari, store, lambda: NOON, metrics)
        runner.engine = engine
        dialer.runners[engine.spec.id] = runner
    return dialer


async def test_a_scrape_exports_each_running_campaigns_live_state_from_its_engine() -> None:
    metrics, store = Metrics(), MemoryStore()
    engine = engine_with(agents=2)
    connect_call(engine)
    await store.add_leads("camp", [Lead("camp:1", "camp", "+12125550001", NY)])
    await metrics.refresh(dialer_with(metrics, store, engine))
    c = {"campaign": "camp"}
    assert value(metrics, "dialer_calls_in_flight", **c) == 1
    assert value(metrics, "dialer_dial_level", **c) == 0.5
    assert value(metrics, "dialer_agent_occupancy_ratio", **c) == 0.5
    assert value(metrics, "dialer_agents", **c, state="ON_CALL") == 1
    assert value(metrics, "dialer_agents", **c, state="PAUSED") == 0
    assert value(metrics, "dialer_leads_remaining", **c) == 1
    assert value(metrics, "dialer_abandon_target_ratio", **c) == 0.03
    assert value(metrics, "dialer_abandon_today_ratio", **c) == 0
    # ARI is not connected in this test: exactly that reason is 1, every other one 0.
    reasons = {r.value: value(metrics, "dialer_campaign_not_dialing", **c, reason=r.value)
               for r in NotDialing}
    assert reasons == {r.value: float(r is NotDialing.ASTERISK_UNREACHABLE) for r in NotDialing}
    # The live state is read at each scrape, not copied: a change shows at the next render.
    engine.agents.clear()
    assert value(metrics, "dialer_agents", **c, state="ON_CALL") == 0
    assert value(metrics, "dialer_dial_level", **c) is None


async def test_when_the_store_fails_a_scrape_still_exports_the_engines_gauges() -> None:
    class DownStore(MemoryStore):
        async def count_leads(self, campaign_id: str) -> dict[str, int]:
            raise StoreUnavailable("Redis does not answer")

    metrics = Metrics()
    await metrics.refresh(dialer_with(metrics, DownStore(), engine_with(agents=1)))
    assert value(metrics, "dialer_calls_in_flight", campaign="camp") == 0
    assert value(metrics, "dialer_leads_remaining", campaign="camp") is None


async def test_once_the_dialer_is_gone_a_scrape_has_no_live_campaign_gauges() -> None:
    metrics = Metrics()
    await metrics.refresh(dialer_with(metrics, MemoryStore(), engine_with()))
    assert value(metrics, "dialer_calls_in_flight", campaign="camp") == 0
    await metrics.refresh(None)
    assert value(metrics, "dialer_calls_in_flight", campaign="camp") is None
    assert value(metrics, "dialer_campaign_not_dialing", campaign="camp", reason="paused") is None


def test_a_campaigns_counters_exist_at_zero_before_its_first_call() -> None:
    metrics = Metrics()
    metrics.campaign("camp")
    for result in AttemptResult:
        assert value(metrics, "dialer_calls_total", campaign="camp", result=result.value) == 0
    for name in ("dialer_calls_answered_total", "dialer_calls_originated_total",
                 "dialer_originate_errors_total", "dialer_agent_connect_latency_seconds_count",
                 "dialer_agent_idle_seconds_count"):
        assert value(metrics, name, campaign="camp") == 0, name


def test_every_metric_follows_the_naming_rules_and_has_no_id_labels() -> None:
    metrics = Metrics()
    metrics.campaign("camp")
    body, _ = metrics.render()
    for family in text_string_to_metric_families(body.decode()):
        assert family.name.startswith("dialer_"), family.name
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples), family.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
        for sample in family.samples:
            assert set(sample.labels) <= {"campaign", "result", "state", "reason", "le"}, sample


def test_two_metrics_objects_keep_separate_registries() -> None:
    first, second = Metrics(), Metrics()
    first.campaign("camp").call_ended(AttemptResult.BUSY)
    assert value(first, "dialer_calls_total", campaign="camp", result="busy") == 1
    assert value(second, "dialer_calls_total", campaign="camp", result="busy") is None


def test_only_answered_results_count_toward_the_answer_rate() -> None:
    metrics = Metrics()
    camp = metrics.campaign("camp")
    for result in AttemptResult:
        camp.call_ended(result)
    assert value(metrics, "dialer_calls_answered_total", campaign="camp") == len(ANSWERED_RESULTS)
    assert sum(value(metrics, "dialer_calls_total", campaign="camp", result=r.value) or 0
               for r in AttemptResult) == len(AttemptResult)


# ----------------------------------------------------------------- runtime counters
async def test_an_agent_ready_for_12_s_then_reserved_adds_a_12_s_idle_gap() -> None:
    metrics, store = Metrics(), MemoryStore()
    runner = dialer_with(metrics, store, engine_with()).runners["camp"]
    await runner._execute(SaveAgent(Agent("agent-0", AgentState.READY, NOON)))
    await runner._execute(SaveAgent(Agent("agent-0", AgentState.RESERVED, NOON + 12, call_id="c")))
    await runner._execute(SaveAgent(Agent("agent-0", AgentState.ON_CALL, NOON + 12.1)))
    assert value(metrics, "dialer_agent_idle_seconds_count", campaign="camp") == 1
    assert value(metrics, "dialer_agent_idle_seconds_sum", campaign="camp") == 12


async def test_a_call_is_counted_by_result_when_its_attempt_is_saved_ended() -> None:
    metrics, store = Metrics(), MemoryStore()
    runner = dialer_with(metrics, store, engine_with()).runners["camp"]
    placed = Attempt("c1", "camp", "L1", "+12125550001", NOON)
    await runner._execute(SaveAttempt(placed))
    assert value(metrics, "dialer_calls_total", campaign="camp", result="machine") == 0
    await runner._execute(SaveAttempt(replace(placed, ended_at=NOON + 9,
                                              result=AttemptResult.MACHINE)))
    assert value(metrics, "dialer_calls_total", campaign="camp", result="machine") == 1
    assert value(metrics, "dialer_calls_answered_total", campaign="camp") == 1


def test_ari_events_feed_the_lag_histogram_and_reconnects_are_counted() -> None:
    metrics = Metrics()
    dialer = dialer_with(metrics, MemoryStore())
    dialer._route(UnknownEvent(time.time() - 0.5, "Whatever"))
    dialer._route(UnknownEvent(0.0, "Unstamped"))  # an unparsable timestamp is not a lag
    dialer._route(StreamReady(reconnect=False, channels=(), bridges=()))
    dialer._route(StreamReady(reconnect=True, channels=(), bridges=()))
    assert value(metrics, "dialer_ari_event_lag_seconds_count") == 1
    assert 0.5 <= (value(metrics, "dialer_ari_event_lag_seconds_sum") or 0) < 5
    assert value(metrics, "dialer_ari_event_stream_reconnects_total") == 1

