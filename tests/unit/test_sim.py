"""The simulator: seeded, small runs checked for invariants (never for timings)."""

from __future__ import annotations

import ast
import inspect
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import dialer.runner
import dialer.sim
from dialer.core.agent import Agent, AgentState
from dialer.core.campaign import AbandonStats, CampaignEngine, SaveAgent, Tick
from dialer.core.model import AmdMode, Attempt, AttemptResult
from dialer.core.pacing import Estimator, PacingSnapshot, PredictivePacer, ProgressivePacer
from dialer.sim import simulator as sim_module
from dialer.sim.metrics import Ledger, percentile, rolling_worst, worst_counted_day, worst_rate
from dialer.sim.policy import POLICIES, Policy, parse
from dialer.sim.probe import AgentOracle
from dialer.sim.scenario import DRIFT, Carrier, Customers, Scenario, Staff, cell
from dialer.sim.simulator import Simulator, simulate, simulate_warm

SIM_DIR = Path(dialer.sim.__file__).parent


def small(agents: int = 5, live: float = 0.3, talk: float = 60.0, hours: float = 0.5,
          **kw: object) -> Scenario:
    s = cell(agents, live, talk)
    s = replace(s, staff=replace(s.staff, shift_hours=hours, breaks=1 if hours >= 1 else 0))
    return replace(s, **kw)  # type: ignore[arg-type]


# --- determinism ---------------------------------------------------------------------------


def test_given_the_same_seed_when_run_twice_then_the_results_are_identical() -> None:
    s = small()
    first = simulate(s, Policy("predictive"), seed=7)
    second = simulate(s, Policy("predictive"), seed=7)
    assert first.summary() == second.summary()
    assert first.dials > 0
    assert first.connects > 0


def test_given_another_seed_then_the_customers_differ() -> None:
    s = small()
    assert simulate(s, Policy("progressive"), seed=1).summary() != \
        simulate(s, Policy("progressive"), seed=2).summary()


def test_policies_meet_the_same_customers_in_lead_order() -> None:
    # Common random numbers: a lead's first attempt has the same outcome whatever the policy,
    # so progressive's first calls go to the same customers under any policy.
    s = small(hours=0.25)
    a = Simulator(s, Policy("progressive"), seed=3)
    b = Simulator(s, Policy("power", ratio=2.0), seed=3)
    ra, rb = a.run(), b.run()
    assert ra.leads_used > 0
    assert rb.leads_used > 0
    assert ra.summary() != rb.summary()


# --- invariants ----------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["progressive", "power:2.5"])
def test_progressive_and_power_never_dial_with_no_agent_ready(policy: str) -> None:
    r = simulate(small(agents=5, hours=1.0), parse(policy), seed=2)
    assert r.dials > 0
    assert r.claims_no_ready == 0
    assert r.claims_no_agents == 0


@pytest.mark.parametrize("policy", ["predictive", "vicidial", "baseline"])
def test_no_policy_dials_with_no_agent_ready_even_as_agents_come_and_go(policy: str) -> None:
    s = Scenario("churn", customers=Customers(live=0.2, talk_mean=60.0),
                 staff=Staff(agents=6, shift_hours=1.5, churn=True, breaks=1))
    r = simulate(s, parse(policy), seed=4)
    assert r.dials > 0
    assert r.claims_no_agents == 0
    assert r.claims_no_ready == 0  # the engine's guard (campaign._pace), for every mode


@pytest.mark.parametrize(("agents", "live", "talk", "seed"),
                         [(5, 0.3, 60.0, 1), (20, 0.15, 60.0, 2), (20, 0.3, 180.0, 3)])
def test_predictive_keeps_the_abandon_ceiling_in_every_window(agents: int, live: float, talk: float,
                                                             seed: int) -> None:
    r = simulate(small(agents, live, talk, hours=1.0), Policy("predictive"), seed=seed)
    assert r.humans > 50
    assert r.abandon_30d <= 0.03
    assert r.abandon_day <= 0.03


def test_predictive_keeps_uk_days_as_counted_with_amd_over_several_days() -> None:
    # 5 % machines: the campaign's estimate of AMD false positives (2 %, not the true 5 %)
    # leaves room for pacing, and each calendar day as the campaign counts it stays under 3 %.
    s = Scenario("amd-uk", customers=Customers(live=0.2, machine=0.05, amd_fp=0.05, talk_mean=60.0),
                 staff=Staff(agents=5, shift_hours=1.0, breaks=0), amd=AmdMode.HANGUP,
                 uk_mode=True, zone="Europe/London", days=3, amd_fp_estimate=0.02)
    sim = Simulator(s, Policy("predictive"), seed=5)
    r = sim.run()
    assert r.machines > 0
    assert r.amd_false_positives > 0
    assert r.true_abandon >= r.abandon  # people hung up on as machines count in truth
    assert r.abandon_day_counted == max(worst_counted_day(t, 0.02)
                                        for t in sim.ledger.desk_days.values())
    assert r.abandon_day < r.judged_abandon == r.abandon_day_counted <= 0.03
    assert len({row for row in r.results}) > 3


def test_with_machines_as_common_as_people_the_estimate_alone_keeps_uk_days_over_3_percent(
        ) -> None:
    s = Scenario("amd-uk", customers=Customers(live=0.2, machine=0.15, amd_fp=0.05, talk_mean=60.0),
                 staff=Staff(agents=5, shift_hours=1.0, breaks=0), amd=AmdMode.HANGUP,
                 uk_mode=True, zone="Europe/London", days=3)
    r = simulate(s, Policy("predictive"), seed=5)
    assert r.abandon_day <= 0.03  # its own abandons
    assert r.judged_abandon > 0.03  # with the estimate of 5 % of 15 % machines: no pace helps


def test_the_carrier_limits_hold() -> None:
    s = small(agents=20, live=0.05, hours=0.25, carrier=Carrier(cps=2.0, channels=30))
    r = simulate(s, Policy("power", ratio=20.0), seed=1)
    assert r.cps_excess == 0
    assert r.max_channels_used <= 30
    assert r.dials <= 2.0 * 0.25 * 3600 + 2 + 60  # cps x time + burst + claims before login


def test_nothing_is_dialed_outside_the_calling_window() -> None:
    s = small(hours=1.0)
    s = replace(s, staff=replace(s.staff, shift_start="07:30"))  # the window opens at 08:00
    r = simulate(s, Policy("predictive"), seed=1, strict=True)
    assert r.outside_window == 0
    assert r.dials > 0


def test_matched_sub_pools_are_separate_campaigns_with_their_own_agents_and_leads() -> None:
    s = small(agents=8, hours=0.5)
    s = replace(s, staff=replace(s.staff, groups=4))
    sim = Simulator(s, Policy("predictive"), seed=1)
    told: list[tuple[AbandonStats, tuple[int, int, int], tuple[int, int, int]]] = []
    deliver = sim._deliver

    def spy(desk: Any, event: Any, handlers: Any) -> None:  # what each campaign is told
        if isinstance(event, AbandonStats):
            told.append((event, sim.ledger.window_counts(event.now, False, desk.index),
                         sim.ledger.window_counts(event.now, False, (desk.index + 1) % 4)))
        deliver(desk, event, handlers)

    sim._deliver = spy  # type: ignore[method-assign]
    r = sim.run()
    assert len(sim.desks) == 4
    agents = [set(d.agents) for d in sim.desks]
    assert sum(len(a) for a in agents) == 8
    assert len(set().union(*agents)) == 8
    assert all(d.pool.fresh > 0 for d in sim.desks)
    assert r.claims_no_agents == 0
    assert r.claims_no_ready == 0  # each campaign's own agents: none ready, none dialed
    # Each campaign's window is its own; the worst campaign's is reported.
    windows = [sim.ledger.window_counts(sim.now, False, d.index) for d in sim.desks]
    assert sum(w[1] for w in windows) == r.humans
    assert sum(w[0] for w in windows) == r.abandoned
    assert all(h > 0 for _, h, _ in windows)
    assert r.abandon_30d == max(a / h for a, h, _ in windows)
    assert all((e.abandoned, e.humans, e.machines) == own for e, own, _ in told)
    assert any(own != other for _, own, other in told)  # the campaigns' windows differ


# --- one core, two drivers -----------------------------------------------------------------


def test_the_simulator_drives_the_same_engine_and_pacers_as_the_runtime() -> None:
    assert vars(sim_module)["CampaignEngine"] is vars(dialer.runner)["CampaignEngine"] is CampaignEngine
    sim = Simulator(small(), Policy("predictive"), seed=1)
    engine = sim.desks[0].engine
    assert type(engine) is CampaignEngine
    assert type(engine.pacer) is PredictivePacer
    sim.run()
    assert isinstance(engine.pacer.model, Estimator)
    assert engine.pacer.model.dials > 0  # the core's estimator learned from simulated calls
    for name in POLICIES:
        pacer = Simulator(small(), parse(name), seed=1).desks[0].engine.pacer
        assert type(pacer).__module__ == "dialer.core.pacing"


def test_the_engine_tells_the_pacer_how_long_each_ringing_call_has_rung() -> None:
    seen: list[PacingSnapshot] = []

    class Recording(PredictivePacer):
        __slots__ = ()

        def decide(self, snap: PacingSnapshot) -> int:
            seen.append(snap)
            return super().decide(snap)

    s = small(hours=0.25, amd=AmdMode.HANGUP, customers=Customers(live=0.3, machine=0.1))
    simulate(s, Policy("predictive"), seed=1,
             pacer_factory=lambda spec: Recording(spec.abandon_target))
    assert any(snap.ringing_ages for snap in seen)
    assert any(snap.calls_in_amd for snap in seen)
    assert all(len(snap.ringing_ages) + snap.calls_in_amd <= snap.calls_ringing for snap in seen)
    longest = max(max(snap.ringing_ages, default=0.0) for snap in seen)
    assert 15.0 < longest <= 25.0 + 0.5  # no-answers ring out at the 25 s timeout


def test_the_simulator_keeps_the_runtime_cadences() -> None:
    assert (sim_module.TICK, sim_module.LEADS_REFRESH, sim_module.STATS_REFRESH) == \
        (dialer.runner.TICK, dialer.runner.LEADS_REFRESH, dialer.runner.STATS_REFRESH)


def test_no_pacing_logic_is_copied_into_the_simulator() -> None:
    """Only the diagnostic probe has a `decide`, and it ends in the core pacer's `decide`; the
    only `p_free` is the `knowing` diagnostic's, which reads the simulator's truth."""
    for path in SIM_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        told = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "AgentOracle"]
        allowed = {id(n) for c in told for n in ast.walk(c) if isinstance(n, ast.FunctionDef)
                   and n.name == "p_free" and "self.free_times()" in ast.unparse(n)}
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                assert node.name not in ("_exact", "_approx", "_overflow", "budget"), path
                assert node.name != "p_free" or id(node) in allowed, path
                if node.name == "decide":
                    assert path.name == "probe.py"
                    assert "self.inner.decide(" in ast.unparse(node)
    assert "PacingSnapshot(" not in "".join(p.read_text() for p in SIM_DIR.glob("*.py"))


def test_a_pacer_factory_gets_the_campaign_spec() -> None:
    seen = []

    def factory(spec: object) -> ProgressivePacer:
        seen.append(spec)
        return ProgressivePacer()

    r = simulate(small(hours=0.25), Policy("progressive"), seed=1, pacer_factory=factory)
    assert len(seen) == 1
    assert r.dials > 0


def test_a_warm_run_starts_its_pacer_from_what_it_learnt_on_another_day(
        monkeypatch: pytest.MonkeyPatch) -> None:
    restored: list[object] = []
    restore = PredictivePacer.restore_state

    def spy(self: PredictivePacer, state: object) -> None:
        restored.append(state)
        restore(self, state)

    monkeypatch.setattr(PredictivePacer, "restore_state", spy)
    s = small(agents=20, live=0.15, hours=0.25)
    warm = simulate_warm(s, Policy("predictive"), seed=3)
    assert len(restored) == 1
    assert isinstance(restored[0], dict)
    assert restored[0]["dials"] > 30  # past the warm-up: no progressive start
    assert warm.policy == "predictive (warm)"
    assert warm.summary()[3:] != simulate(s, Policy("predictive"), seed=3).summary()[3:]
    assert warm.abandon_30d <= 0.03
    assert simulate_warm(s, Policy("predictive"), seed=3).summary() == warm.summary()


def test_a_policy_without_estimates_cannot_start_warm() -> None:
    with pytest.raises(ValueError, match="keeps no estimates"):
        simulate_warm(small(hours=0.1), Policy("progressive"), seed=1)


# --- metrics -------------------------------------------------------------------------------


def test_ledger_splits_agent_time_by_state() -> None:
    led = Ledger()
    led.agent(Agent("a", AgentState.READY, since=0.0))
    led.agent(Agent("a", AgentState.RESERVED, since=10.0, call_id="c"))
    led.agent(Agent("a", AgentState.ON_CALL, since=10.5, call_id="c"))
    assert not led.agent(Agent("a", AgentState.ON_CALL, since=10.5, call_id="c",
                               pause_requested="break"))
    led.agent(Agent("a", AgentState.WRAP_UP, since=70.5, call_id="c"))
    led.agent(Agent("a", AgentState.LOGGED_OUT, since=80.5))
    idx = list(AgentState).index
    assert led.seconds[idx(AgentState.READY)] == 10.0
    assert led.seconds[idx(AgentState.ON_CALL)] == 60.0
    assert led.seconds[idx(AgentState.WRAP_UP)] == 10.0
    assert led.idle_gaps == [10.0]
    assert led.available_count() == 0


def test_each_campaign_counts_its_own_window_and_its_own_ready_agents() -> None:
    led = Ledger()
    led.agent(Agent("a", AgentState.READY, since=0.0), desk=0)
    led.agent(Agent("b", AgentState.ON_CALL, since=0.0, call_id="c0"), desk=1)
    for i, (desk, result) in enumerate([(0, AttemptResult.TALKED), (0, AttemptResult.TALKED),
                                        (1, AttemptResult.ABANDONED), (1, AttemptResult.TALKED)]):
        led.attempt(Attempt(f"c{i}", "cmp", "L", "+15550100", 0.0, ended_at=100.0 + i,
                            result=result), False, desk)
    assert led.window_counts(200.0, uk_mode=False, desk=0) == (0, 2, 0)
    assert led.window_counts(200.0, uk_mode=False, desk=1) == (1, 2, 0)
    assert led.worst_campaign(lambda t: worst_rate(t, (0, 1))) == pytest.approx(0.5)
    assert worst_rate(led.days, (0, 1)) == pytest.approx(0.25)  # the run's, pooled
    assert (led.ready_count(0), led.ready_count(1), led.ready_count()) == (1, 0, 1)
    assert (led.available_count(0), led.available_count(1)) == (1, 1)


def test_rolling_windows_and_worst_rates() -> None:
    days = {d: [100, 2, 100, 2, 0] for d in range(40)}
    days[10] = [100, 20, 100, 20, 0]
    assert worst_rate(days, (0, 1)) == pytest.approx(0.2)
    assert rolling_worst(days, (0, 1)) == pytest.approx((29 * 2 + 20) / 3000)
    assert rolling_worst({0: [10, 1, 10, 1, 0], 1: [10, 0, 10, 0, 0]}, (0, 1)) == pytest.approx(0.1)
    # A UK day as the campaign counts it: 2 of 100 people, 40 machine verdicts, 5 % of which
    # are taken for people hung up on: (2 + 2) / (100 + 2).
    uk = {0: [100, 2, 100, 2, 40], 1: [100, 1, 100, 1, 0]}
    assert worst_counted_day(uk, 0.05) == pytest.approx(4 / 102)
    assert worst_counted_day(uk, 0.0) == worst_rate(uk, (0, 1))
    assert percentile([3.0, 1.0, 2.0, 4.0], 0.5) == 2.0
    assert percentile([], 0.95) == 0.0


def test_drift_profile_interpolates() -> None:
    c = Customers(live=DRIFT)
    assert c.live_at(0.0) == pytest.approx(0.15)
    assert c.live_at(0.25) == pytest.approx(0.225)
    assert c.live_at(0.5) == pytest.approx(0.30)
    assert c.live_at(1.0) == pytest.approx(0.10)
    assert 0.15 < c.live_mean < 0.25


def test_the_oracle_is_the_clairvoyant_bound_of_dialing_md() -> None:
    s = Scenario("x", customers=Customers(talk_mean=90.0), staff=Staff(wrap_mean=10.0))
    assert s.oracle_talk_min_per_hour == pytest.approx(54.0)


def test_policy_names() -> None:
    assert parse("power:2.5") == Policy("power", ratio=2.5)
    assert parse("predictive").label == "predictive"
    with pytest.raises(ValueError, match="unknown policy"):
        parse("psychic")
    tuned = parse("baseline:safety=1,connect_grace=2")
    assert tuned.label == "baseline:safety=1,connect_grace=2"
    pacer = Simulator(small(), tuned, seed=1).desks[0].engine.pacer
    assert isinstance(pacer, PredictivePacer)
    assert (pacer.safety, pacer.connect_grace) == (1.0, 2.0)
    assert isinstance(pacer.model, Estimator)
    assert (pacer.model.ring_age, pacer.model.wrap_points) == (False, 0)  # the pacer before them
    now = Simulator(small(), parse("predictive"), seed=1).desks[0].engine.pacer
    assert isinstance(now, PredictivePacer)
    assert isinstance(now.model, Estimator)
    assert now.model.ring_age
    assert not now.time_resolved  # measured, not shipped (docs/PACING_BENCH.md)


class Watching(Simulator):
    """Notes, at every pacing tick, when the simulator says each busy agent will be free, and
    when each agent really leaves wrap-up."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.told: list[tuple[float, dict[str, float]]] = []
        self.freed: dict[str, list[tuple[float, AgentState]]] = {}
        self.states: dict[str, AgentState] = {}

    def _deliver(self, desk: Any, event: Any, handlers: Any) -> None:
        if isinstance(event, Tick):
            told = self.free_at(desk.engine)()
            model = desk.engine.pacer.model
            assert sorted(model.free_times()) == sorted(told.values())  # what the pacer is told
            self.told.append((self.now, told))
        super()._deliver(desk, event, handlers)

    def _save_agent(self, desk: Any, command: SaveAgent) -> None:
        agent = command.agent
        if self.states.get(agent.id) is AgentState.WRAP_UP and agent.state is not AgentState.WRAP_UP:
            self.freed.setdefault(agent.id, []).append((self.now, agent.state))
        self.states[agent.id] = agent.state
        super()._save_agent(desk, command)


def test_the_knowing_diagnostic_is_told_exactly_when_each_busy_agent_will_be_ready() -> None:
    sim = Watching(small(agents=5, hours=1.0), parse("knowing"), seed=3)  # with a break each
    pacer = sim.desks[0].engine.pacer
    assert isinstance(pacer, PredictivePacer)
    assert isinstance(pacer.model, AgentOracle)
    # the list's true rates, not estimates: 30 % live, no answering machines
    assert (pacer.model.p_live, pacer.model.p_answer, pacer.model.p_human) == (0.3, 0.3, 1.0)
    r = sim.run()
    assert r.connects > 40
    checked = 0
    for now, told in sim.told:
        for aid, at in told.items():
            later = [(t, state) for t, state in sim.freed.get(aid, []) if t >= now]
            if later:
                assert later[0][0] == pytest.approx(at, abs=1e-6), (now, aid)
                assert later[0][1] is AgentState.READY, (now, aid)  # not off on a break
                checked += 1
    assert checked > 2000
    breaks = [t for times in sim.freed.values() for t, state in times if state is AgentState.PAUSED]
    assert breaks  # agents went on breaks after calls, and were never told free for them


def test_knowing_the_agents_is_a_diagnostic_beside_the_shipped_pacer() -> None:
    # The same core pacer and settings; only its model is told the truth.
    knowing = Simulator(small(), parse("knowing:safety=1.2"), seed=1).desks[0].engine.pacer
    assert type(knowing) is PredictivePacer
    assert knowing.safety == 1.2
    assert type(knowing.model) is AgentOracle
    shipped = Simulator(small(), parse("predictive"), seed=1).desks[0].engine.pacer
    assert isinstance(shipped, PredictivePacer)
    assert type(shipped.model) is Estimator


def test_only_the_knowing_diagnostic_keeps_what_the_simulator_knows_of_the_agents() -> None:
    shipped = Simulator(small(agents=5, hours=1.0), parse("predictive"), seed=3)
    shipped.run()
    assert not shipped._knowing
    assert shipped._dispo_at == {}
    assert shipped._away == {}
    knowing = Simulator(small(agents=5, hours=1.0), parse("knowing"), seed=3)
    knowing.run()
    assert knowing._knowing
    assert knowing._dispo_at
    assert knowing._away


def test_the_oracle_counts_an_agent_free_within_the_horizon_from_its_clock() -> None:
    oracle = AgentOracle(0.3)
    oracle.free_times = lambda: [105.0, 109.0, 120.0]
    oracle.advance(100.0)
    assert oracle.p_free((1.0, 2.0), (3.0,), 9.0) == [1.0, 1.0, 0.0]
    assert oracle.p_free_many((1.0, 2.0), (3.0,), [4.0, 20.0]) == [[0.0, 0.0, 0.0],
                                                                   [1.0, 1.0, 1.0]]


def test_the_time_resolved_model_is_a_predictive_setting() -> None:
    timed = Simulator(small(), parse("predictive:time_resolved=1,answer_grace=0"), seed=1)
    pacer = timed.desks[0].engine.pacer
    assert isinstance(pacer, PredictivePacer)
    assert (pacer.time_resolved, pacer.answer_grace) == (True, 0.0)
    baseline = Simulator(small(), parse("baseline"), seed=1).desks[0].engine.pacer
    assert isinstance(baseline, PredictivePacer)
    assert not baseline.time_resolved
    with pytest.raises(ValueError, match="unknown setting"):
        parse("predictive:psychic=1")


def test_simulator_docstring_names_every_command_it_executes() -> None:
    doc = inspect.getdoc(sim_module) or ""
    for name in ("ClaimLeads", "Originate", "RunAmd", "ConnectAgent", "PlaySafeHarbor",
                 "StartTimer", "SaveAttempt", "SaveLead"):
        assert name in doc
