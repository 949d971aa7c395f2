from __future__ import annotations

import heapq
import json
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.core.model import DialMode
from dialer.core.pacing import (
    AgentlessPacer,
    Estimator,
    Pacer,
    PacingSnapshot,
    PowerPacer,
    PredictivePacer,
    PreviewPacer,
    ProgressivePacer,
    RateLimiter,
    VicidialAdaptPacer,
    _clark,
    _Durations,
    _overflow,
    make_pacer,
)

# --- helpers -------------------------------------------------------------------------------


def snap(*, now: float = 0.0, ready: int = 0, busy: tuple[float, ...] = (),
         wrapping: tuple[float, ...] = (), ringing: int = 0, waiting: int = 0, abandoned: int = 0,
         humans: int = 1000, leads: int = 10_000, channels: int = 10_000) -> PacingSnapshot:
    return PacingSnapshot(now=now, ready_agents=ready, busy_agents=busy, wrapping_agents=wrapping,
                          calls_ringing=ringing, calls_waiting=waiting, abandoned_in_window=abandoned,
                          humans_in_window=humans, leads_available=leads, channels_free=channels)


TALKS = (30.0, 60.0, 90.0, 120.0, 150.0)  # mean 90 s


def train(pacer: PredictivePacer, *, dials: int = 200, answered_per_20: int = 3, ring: float = 12.0,
          wrap: float = 10.0) -> PredictivePacer:
    """Feed a deterministic history: `answered_per_20` live answers in every 20 dials (15 % by
    default), one dial every 0.5 s from t=0, talks cycling through TALKS, fixed wrap-up."""
    for i in range(dials):
        answered = i % 20 < answered_per_20
        pacer.observe_dial(ring if answered else 25.0, answered, originated_at=i * 0.5)
        if answered:
            pacer.observe_human(True)
            pacer.observe_talk(TALKS[i % len(TALKS)])
            pacer.observe_wrap(wrap)
    return pacer


LATER = 10_000.0  # a `now` by which every trained outcome has matured


def trained_predictive(*, exact_limit: int = 10) -> PredictivePacer:
    return train(PredictivePacer(exact_limit=exact_limit))


# --- progressive, power, preview, agentless --------------------------------------------------


@pytest.mark.parametrize(("snapshot", "expected"), [
    (snap(ready=5), 5),
    (snap(ready=5, ringing=2), 3),
    (snap(ready=5, ringing=1, waiting=1), 3),
    (snap(ready=2, ringing=5), 0),
    (snap(ready=0, busy=(10.0, 20.0)), 0),
    (snap(ready=5, leads=2), 2),
    (snap(ready=5, channels=3), 3),
    (snap(ready=5, leads=0), 0),
])
def test_progressive_places_one_call_per_ready_agent_not_already_covered(
        snapshot: PacingSnapshot, expected: int) -> None:
    assert ProgressivePacer().decide(snapshot) == expected


@pytest.mark.parametrize(("ratio", "snapshot", "expected"), [
    (2.0, snap(ready=3), 6),
    (2.0, snap(ready=3, ringing=2), 4),
    (2.0, snap(ready=3, waiting=1), 4),
    (1.5, snap(ready=3), 4),  # round(4.5) is 4: half to even, as VICIdial's %.0f
    (1.5, snap(ready=1), 2),
    (2.0, snap(ready=3, ringing=9), 0),
    (2.0, snap(ready=0, busy=(5.0,)), 0),
    (3.0, snap(ready=10, channels=7), 7),
])
def test_power_places_ratio_times_ready_agents_minus_calls_ringing(
        ratio: float, snapshot: PacingSnapshot, expected: int) -> None:
    assert PowerPacer(ratio).decide(snapshot) == expected


def test_preview_never_places_calls_itself() -> None:
    assert PreviewPacer().decide(snap(ready=10, busy=(1.0,))) == 0


@pytest.mark.parametrize(("max_in_flight", "snapshot", "expected"), [
    (None, snap(leads=100, channels=50), 50),
    (10, snap(leads=100, channels=50, ringing=4), 6),
    (10, snap(leads=3, channels=50), 3),
    (10, snap(leads=100, channels=50, ringing=12), 0),
])
def test_agentless_is_bounded_by_leads_channels_and_calls_in_flight(
        max_in_flight: int | None, snapshot: PacingSnapshot, expected: int) -> None:
    assert AgentlessPacer(max_in_flight).decide(snapshot) == expected


def test_agentless_dials_without_any_agent_by_design() -> None:
    # The one pacer exempt from "no agent logged in means no call": voice broadcast has none.
    assert AgentlessPacer().decide(snap(ready=0, leads=5, channels=5)) == 5


@pytest.mark.parametrize(("mode", "kind"), [
    (DialMode.PREVIEW, PreviewPacer),
    (DialMode.PROGRESSIVE, ProgressivePacer),
    (DialMode.POWER, PowerPacer),
    (DialMode.PREDICTIVE, PredictivePacer),
    (DialMode.AGENTLESS, AgentlessPacer),
])
def test_make_pacer_builds_the_pacer_of_each_mode(mode: DialMode, kind: type) -> None:
    assert isinstance(make_pacer(mode, power_ratio=2.0, abandon_target=0.02), kind)


def test_make_pacer_passes_ratio_target_and_in_flight_cap() -> None:
    power = make_pacer(DialMode.POWER, power_ratio=2.5, abandon_target=0.03)
    predictive = make_pacer(DialMode.PREDICTIVE, power_ratio=2.5, abandon_target=0.02)
    agentless = make_pacer(DialMode.AGENTLESS, power_ratio=1.0, abandon_target=0.03,
                           agentless_max_in_flight=7)
    assert isinstance(power, PowerPacer)
    assert power.ratio == 2.5
    assert isinstance(predictive, PredictivePacer)
    assert predictive.target == 0.02
    assert isinstance(agentless, AgentlessPacer)
    assert agentless.max_in_flight == 7


@pytest.mark.parametrize("build", [
    lambda: PowerPacer(0.0), lambda: PowerPacer(-1.0), lambda: PredictivePacer(0.0),
    lambda: PredictivePacer(1.0), lambda: PredictivePacer(safety=0.0),
    lambda: VicidialAdaptPacer(max_level=0.5), lambda: RateLimiter(0.0), lambda: RateLimiter(5.0, burst=0.5),
    lambda: AgentlessPacer(-1), lambda: PredictivePacer(answer_grace=-1.0),
    lambda: PredictivePacer(answer_grace=math.nan), lambda: Estimator(restore_doubt=0.5),
    lambda: Estimator().restore_state({}, trust_answers=0.0),
])
def test_bad_parameters_are_refused(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        build()


def test_snapshot_refuses_negative_counts() -> None:
    with pytest.raises(ValueError, match="negative"):
        snap(ready=-1)


# --- VICIdial ADAPT replica ----------------------------------------------------------------


def run_vicidial(pacer: VicidialAdaptPacer, seconds: int, start: int = 1000, **fields: int) -> int:
    """One snapshot per second of `now` from `start` to `start + seconds`; the last decision."""
    ready = fields.get("ready", 0)
    busy = (30.0,) * fields.get("busy", 0)
    n = 0
    for t in range(seconds + 1):
        n = pacer.decide(snap(now=float(start + t), ready=ready, busy=busy, waiting=fields.get("waiting", 0),
                              ringing=fields.get("ringing", 0), abandoned=fields.get("abandoned", 0),
                              humans=fields.get("humans", 0)))
    return n


def test_vicidial_at_level_one_fills_ready_and_incall_agents_minus_calls_in_flight() -> None:
    pacer = VicidialAdaptPacer()
    assert pacer.decide(snap(ready=4, busy=(10.0,) * 6)) == 4  # round(1 × 10) − 6 connected
    assert pacer.decide(snap(ready=4, busy=(10.0,) * 6, ringing=3)) == 1


def test_vicidial_raises_its_level_by_the_average_share_of_idle_agents_every_15_seconds() -> None:
    pacer = VicidialAdaptPacer()
    run_vicidial(pacer, 14, ready=5, busy=5)
    assert pacer.level == 1.0
    run_vicidial(pacer, 0, start=1015, ready=5, busy=5)  # 15 s after the first snapshot
    assert pacer.level == pytest.approx(1.5)  # × (1 + 5 / 10)
    assert pacer.decide(snap(now=1016.0, ready=5, busy=(30.0,) * 5)) == 10  # round(1.5 × 10) − 5


def test_vicidial_level_is_clamped_to_one_and_to_the_maximum() -> None:
    low = VicidialAdaptPacer()
    run_vicidial(low, 15, ready=0, busy=10, waiting=4)
    assert low.level == 1.0
    high = VicidialAdaptPacer(initial_level=2.8)
    run_vicidial(high, 15, ready=9, busy=1)
    assert high.level == 3.0


def test_vicidial_drops_to_level_one_when_the_window_is_over_target() -> None:
    pacer = VicidialAdaptPacer(initial_level=2.5)
    run_vicidial(pacer, 15, ready=5, busy=5, humans=100, abandoned=5)
    assert pacer.level == 1.0


def test_vicidial_ignores_the_drop_rate_until_enough_humans_answered() -> None:
    pacer = VicidialAdaptPacer(initial_level=2.0)
    run_vicidial(pacer, 15, ready=5, busy=5, humans=40, abandoned=10)
    assert pacer.level == pytest.approx(3.0)


# --- predictive ----------------------------------------------------------------------------


def test_predictive_behaves_like_progressive_until_enough_outcomes_are_in() -> None:
    pacer = PredictivePacer()
    train(pacer, dials=20)
    assert pacer.decide(snap(now=LATER, ready=10)) == 10


def test_predictive_dials_several_calls_per_ready_agent_at_a_15_percent_answer_rate() -> None:
    pacer = trained_predictive()
    n = pacer.decide(snap(now=LATER, ready=10))
    assert 30 < n < 10 / 0.15  # well past progressive, short of one human per agent on average


def test_predictive_without_a_floor_dials_like_progressive_once_the_window_reaches_the_target(
        ) -> None:
    pacer = train(PredictivePacer(floor=0.0))
    assert pacer.decide(snap(now=LATER, ready=10, humans=1000, abandoned=30)) == 10
    assert pacer.decide(snap(now=LATER, ready=10, ringing=4, humans=1000, abandoned=31)) == 6


def test_predictive_at_and_over_the_target_keeps_dialing_ahead_on_its_floor_budget() -> None:
    pacer = trained_predictive()
    full = pacer.decide(snap(now=LATER, ready=10, humans=1000, abandoned=0))
    at = pacer.decide(snap(now=LATER, ready=10, humans=1000, abandoned=30))
    over = trained_predictive().decide(snap(now=LATER, ready=10, humans=1000, abandoned=200))
    assert 10 < at == over < full  # ahead of its agents, with less risk than below the taper
    assert pacer.last_theta == pytest.approx(0.12 * 0.03)  # far below the window's rate


def test_predictive_tightens_as_the_window_approaches_the_target() -> None:
    pacer = trained_predictive()
    decisions = [pacer.decide(snap(now=LATER, ready=10, humans=1000, abandoned=a))
                 for a in (0, 24, 26, 28, 29, 30)]
    assert decisions == sorted(decisions, reverse=True)
    assert decisions[0] > decisions[3] > decisions[-1] > 10


def test_predictive_budget_is_the_target_times_safety_tapered_over_the_last_fifth_to_its_floor(
        ) -> None:
    pacer = PredictivePacer(0.03, safety=0.8, taper_start=0.8, margin_humans=math.inf, floor=0.12)
    assert pacer.budget(snap(humans=1000, abandoned=0)) == pytest.approx(0.024)
    assert pacer.budget(snap(humans=1000, abandoned=24)) == pytest.approx(0.024)
    assert pacer.budget(snap(humans=1000, abandoned=27)) == pytest.approx(0.012)
    assert pacer.budget(snap(humans=1000, abandoned=29)) == pytest.approx(0.024 / 6)  # room 1/6
    assert pacer.budget(snap(humans=1000, abandoned=30)) == pytest.approx(0.03 * 0.12)
    fresh = PredictivePacer(0.03, margin_humans=math.inf, floor=0.12)  # another window
    assert fresh.budget(snap(humans=1000, abandoned=500)) == pytest.approx(0.03 * 0.12)
    no_floor = PredictivePacer(0.03, margin_humans=math.inf, floor=0.0)
    assert no_floor.budget(snap(humans=1000, abandoned=30)) == 0.0


def test_predictive_leaves_its_floor_once_the_people_reached_on_it_are_abandoned_at_the_target_rate(
        ) -> None:
    pacer = PredictivePacer(0.03, margin_humans=math.inf, floor=0.12)
    floor = pytest.approx(0.0036)
    assert pacer.budget(snap(humans=1000, abandoned=40)) == floor  # a stay on the floor begins
    assert pacer.budget(snap(humans=1200, abandoned=44)) == floor  # 4 of 200: diluting
    assert pacer.budget(snap(humans=1300, abandoned=46)) == floor  # 6 of 300: 2 %, still under
    assert pacer.budget(snap(humans=1350, abandoned=51)) == 0.0  # 11 of 350: the model is wrong
    assert pacer.budget(snap(humans=1500, abandoned=51)) == 0.0  # progressive for this stay
    assert pacer.budget(snap(humans=2000, abandoned=30)) > 0.0036  # under the taper again
    assert pacer.budget(snap(humans=2100, abandoned=63)) == floor  # a new stay, checked afresh
    assert pacer.budget(snap(humans=100, abandoned=4)) == floor  # the window moved on: afresh


def seen(reached: int, abandoned: int = 0, *, ready: int = 30, humans: int = 1000,
         in_window: int = 0, busy: tuple[float, ...] = ()) -> PacingSnapshot:
    """A 30-agent team (by default) whose engine has reached `reached` people, `abandoned` of
    them abandoned; the window holds `humans`, `in_window` of them abandoned."""
    return replace(snap(now=LATER, ready=ready, busy=busy, humans=humans, abandoned=in_window),
                   people_reached=reached, people_abandoned=abandoned)


def test_predictive_lifts_its_budget_while_abandons_run_under_half_the_target() -> None:
    pacer = trained_predictive()  # lift up to 4x, steered to 1.5 % (half of 3 %)
    pacer.decide(seen(0))
    assert pacer.lift == 1.0
    assert pacer.last_theta == pytest.approx(0.024)
    pacer.decide(seen(500))  # 500 people reached, none abandoned
    assert pacer.lift == pytest.approx(math.exp(0.5))
    assert pacer.last_theta == pytest.approx(0.024 * math.exp(0.5))
    pacer.decide(seen(700, 3))  # 3 of 200: 1.5 %, the aim holds it
    assert pacer.lift == pytest.approx(math.exp(0.5))
    pacer.decide(seen(5000, 3))
    assert pacer.lift == pytest.approx(4.0)  # its ceiling
    pacer.decide(seen(5100, 13))  # 10 of 100: down
    assert pacer.lift == pytest.approx(4.0 * math.exp(0.1 - 10 / 15))
    assert pacer.last_theta == pytest.approx(0.024 * pacer.lift)


def test_predictive_lift_never_takes_the_budget_under_the_one_set() -> None:
    pacer = trained_predictive()
    pacer.decide(seen(1000))
    pacer.decide(seen(1100, 20))
    assert pacer.lift == 1.0
    assert pacer.last_theta == pytest.approx(0.024)


def test_predictive_lift_steers_on_the_engine_counters_not_the_window() -> None:
    pacer = trained_predictive()
    pacer.decide(seen(1000, humans=5000))
    pacer.decide(seen(1200, humans=10))  # a new UK day, or the store's count re-read
    assert pacer.lift == pytest.approx(math.exp(0.2))
    pacer.decide(seen(1200, 2, humans=20_000))  # the window jumps: only the 2 abandons count
    assert pacer.lift == pytest.approx(math.exp(0.2 - 2 / 15))
    pacer.decide(seen(100, humans=20_000))  # counters that went down (another engine's)
    pacer.decide(seen(200, humans=20_000))  # are taken afresh
    assert pacer.lift == pytest.approx(math.exp(0.2 - 2 / 15 + 0.1))


def test_predictive_lift_leaves_small_teams_on_the_budget_as_set_and_is_not_earned_there() -> None:
    pacer = trained_predictive()
    busy = (10.0,) * 9
    pacer.decide(seen(0, ready=20, busy=busy))
    pacer.decide(seen(3000, ready=20, busy=busy))
    assert pacer.lift == 1.0  # 29 agents: not lifted, so nothing earned
    assert pacer.last_theta == pytest.approx(0.024)
    pacer.decide(seen(3000, ready=21, busy=busy))  # 30 agents
    pacer.decide(seen(3500, ready=21, busy=busy))
    assert pacer.lift == pytest.approx(math.exp(0.5))
    assert pacer.last_theta == pytest.approx(0.024 * math.exp(0.5))
    # Abandons count whatever the team; people, when the decision before could be lifted.
    pacer.decide(seen(3600, 2, ready=20, busy=busy))
    assert pacer.lift == pytest.approx(math.exp(0.6 - 2 / 15))
    pacer.decide(seen(3700, 3, ready=20, busy=busy))
    assert pacer.lift == pytest.approx(math.exp(0.6 - 3 / 15))


def test_predictive_lift_is_earned_when_any_group_decided_since_the_counts_moved_could_use_it(
        ) -> None:
    pacer = trained_predictive()  # matching groups: one pacer asked once per group per tick
    for reached in (0, 500):
        pacer.decide(seen(reached, ready=40))  # a group of 40 agents
        pacer.decide(seen(reached, ready=10))  # then one of 10, too small for the lift
    assert pacer.lift == pytest.approx(math.exp(0.5))
    assert pacer.decide(seen(500, ready=40)) > 0
    assert pacer.last_theta == pytest.approx(0.024 * math.exp(0.5))


def test_predictive_lift_is_not_earned_in_warm_up_or_past_the_taper() -> None:
    warming = train(PredictivePacer(), dials=20)
    warming.decide(seen(0))
    warming.decide(seen(2000))
    assert warming.lift == 1.0
    pacer = trained_predictive()
    pacer.decide(seen(0, humans=1000, in_window=30))  # on the floor: 0.36 %, not lifted
    pacer.decide(seen(2000, humans=3000, in_window=30))
    assert pacer.lift == 1.0


def test_predictive_lifted_at_or_over_the_target_keeps_to_its_floor() -> None:
    for in_window in (30, 31, 200):
        pacer = trained_predictive()
        pacer.decide(seen(0))
        pacer.decide(seen(5000))
        assert pacer.lift == pytest.approx(4.0)
        lifted = pacer.decide(seen(5000, humans=1000, in_window=in_window))
        assert pacer.last_theta == pytest.approx(0.03 * 0.12)
        assert lifted == trained_predictive().decide(seen(0, humans=1000, in_window=in_window))


def test_predictive_without_a_lift_keeps_the_budget_as_set() -> None:
    pacer = train(PredictivePacer(lift_max=1.0))
    pacer.decide(seen(0))
    pacer.decide(seen(8000))
    assert pacer.lift == 1.0
    assert pacer.last_theta == pytest.approx(0.024)


@pytest.mark.parametrize(("top", "aim", "step", "team"),
                         [(0.5, 0.5, 0.001, 30), (4.0, 0.0, 0.001, 30), (4.0, 1.5, 0.001, 30),
                          (4.0, 0.5, -0.1, 30), (4.0, 0.5, 0.001, 0), (50.0, 0.5, 0.001, 30)])
def test_predictive_refuses_a_lift_setting_out_of_range(top: float, aim: float, step: float,
                                                        team: int) -> None:
    with pytest.raises(ValueError, match="lift"):
        PredictivePacer(lift_max=top, lift_aim=aim, lift_step=step, lift_team=team)


def test_pacing_snapshot_refuses_more_people_abandoned_than_reached() -> None:
    with pytest.raises(ValueError, match="abandoned than reached"):
        replace(snap(), people_reached=3, people_abandoned=4)


def test_predictive_floor_is_a_share_of_the_target_whatever_the_safety() -> None:
    for safety in (0.4, 0.8, 3.0):
        pacer = PredictivePacer(0.03, safety=safety, margin_humans=math.inf, floor=0.12)
        assert pacer.budget(snap(humans=1000, abandoned=40)) == pytest.approx(0.0036)


def test_predictive_keeps_no_floor_when_estimated_abandons_alone_hold_the_window_over_target(
        ) -> None:
    pacer = PredictivePacer(0.03, margin_humans=math.inf, floor=0.12, taper_start=0.8)
    structural = replace(snap(humans=1000, abandoned=40), estimated_abandons=32)  # 3.2 % alone
    assert pacer.budget(structural) == 0.0
    # 2.2 % alone + 0.36 % on the floor is over 2.4 % (the taper's start): not clearly back under
    near = replace(snap(humans=1000, abandoned=40), estimated_abandons=22)
    assert pacer.budget(near) == 0.0
    clear = replace(snap(humans=1000, abandoned=40), estimated_abandons=20)  # 2.0 % + 0.36 %
    assert pacer.budget(clear) == pytest.approx(0.0036)
    diluting = replace(snap(humans=1000, abandoned=40), estimated_abandons=9)  # 0.9 % alone
    assert pacer.budget(diluting) == pytest.approx(0.03 * 0.12)
    with pytest.raises(ValueError, match="estimated"):
        replace(snap(humans=1000, abandoned=4), estimated_abandons=5)


def test_predictive_refuses_a_floor_outside_zero_to_one() -> None:
    for bad in (-0.1, 1.0, 2.0):
        with pytest.raises(ValueError, match="floor"):
            PredictivePacer(floor=bad)


def test_predictive_budget_keeps_a_margin_for_the_next_abandon_in_a_small_window() -> None:
    pacer = PredictivePacer(0.03, margin_humans=100.0)
    assert pacer.budget(snap(humans=0)) == pytest.approx(0.024)  # 1 / 100: full budget
    assert pacer.budget(snap(humans=100, abandoned=2)) == pytest.approx(0.024 * (0.03 - 0.025) / 0.006)
    # 2.78 % + 1/280 is over 3 %: the floor
    assert pacer.budget(snap(humans=180, abandoned=5)) == pytest.approx(0.03 * 0.12)
    plain = PredictivePacer(0.03, margin_humans=math.inf)
    assert plain.budget(snap(humans=180, abandoned=5)) > 0.0
    assert pacer.budget(snap(humans=100_000, abandoned=2000)) == pytest.approx(0.024, rel=1e-3)


def test_predictive_stays_near_one_call_per_agent_when_nearly_everyone_answers() -> None:
    pacer = PredictivePacer()
    train(pacer, answered_per_20=19)
    assert pacer.decide(snap(now=LATER, ready=10)) <= 11


def test_predictive_dials_ahead_for_agents_about_to_finish_wrap_up() -> None:
    pacer = trained_predictive()  # wrap-up is always 10 s, answers come after 12 s
    assert pacer.decide(snap(now=LATER, ready=0, wrapping=(9.0,) * 5)) > 5


def test_predictive_does_not_dial_for_agents_who_just_started_a_call() -> None:
    pacer = trained_predictive()  # the shortest talk is 30 s
    assert pacer.decide(snap(now=LATER, ready=0, busy=(1.0,) * 5)) == 0


def test_predictive_counts_ringing_calls_against_the_same_free_agents() -> None:
    pacer = trained_predictive()
    alone = pacer.decide(snap(now=LATER, ready=10))
    assert pacer.decide(snap(now=LATER, ready=10, ringing=20)) == pytest.approx(alone - 20, abs=2)
    assert pacer.decide(snap(now=LATER, ready=10, ringing=200)) == 0


def test_predictive_exact_and_approximate_solutions_agree_within_a_call() -> None:
    scenarios = [snap(now=LATER, ready=r, busy=tuple(float(10 * i) for i in range(b)),
                      wrapping=(5.0,) * w, ringing=g)
                 for r, b, w, g in ((12, 0, 0, 0), (3, 15, 2, 10), (6, 30, 4, 25), (0, 40, 5, 5))]
    for s in scenarios:
        # The estimate's own error enters the approximation only (large teams): compare without.
        exact = train(PredictivePacer(exact_limit=10_000, uncertainty=False)).decide(s)
        approx = train(PredictivePacer(exact_limit=0, uncertainty=False)).decide(s)
        assert abs(exact - approx) <= 1, (s, exact, approx)


def test_predictive_dials_fewer_calls_the_less_it_knows_the_answer_rate() -> None:
    s = snap(now=LATER, ready=60, busy=(30.0,) * 200)
    sure = train(PredictivePacer(), dials=5000).decide(s)
    unsure = train(PredictivePacer(), dials=300).decide(s)
    naive = train(PredictivePacer(uncertainty=False), dials=300).decide(s)
    assert unsure < naive
    assert unsure < sure


def test_the_answer_rate_memory_holds_about_a_hundred_answers() -> None:
    def fed(est: Estimator) -> Estimator:  # 5 % answer, one dial every 0.5 s, a tick a second
        for i in range(6000):
            est.observe_dial(12.0 if i % 20 == 0 else 25.0, i % 20 == 0, originated_at=i * 0.5)
            if i % 2:
                est.advance(i * 0.5)
        est.advance(LATER)
        return est

    est = fed(Estimator())
    assert est.p_answer == pytest.approx(0.05, rel=0.2)
    assert 0.0 < est.p_live_error < 0.1  # ~2,000 dials of memory, not 200
    assert fed(Estimator(answers_in_memory=0)).p_live_error == 0.0


def aged(*, ready: int, ages: tuple[float, ...], amd: int = 0, fresh: int = 0,
         busy: tuple[float, ...] = ()) -> PacingSnapshot:
    return PacingSnapshot(now=LATER, ready_agents=ready, busy_agents=busy, wrapping_agents=(),
                          calls_ringing=len(ages) + amd + fresh, calls_waiting=0,
                          abandoned_in_window=0, humans_in_window=1000, leads_available=10_000,
                          channels_free=10_000, ringing_ages=ages, calls_in_amd=amd)


def test_snapshot_refuses_more_ringing_detail_than_calls_ringing() -> None:
    with pytest.raises(ValueError, match="ringing ages"):
        PacingSnapshot(now=0.0, ready_agents=1, busy_agents=(), wrapping_agents=(), calls_ringing=1,
                       calls_waiting=0, abandoned_in_window=0, humans_in_window=0,
                       leads_available=1, channels_free=1, ringing_ages=(1.0, 2.0))
    with pytest.raises(ValueError, match="negative"):
        aged(ready=1, ages=(), amd=-1, fresh=2)


def test_a_call_that_has_rung_past_every_answer_counts_for_almost_nothing() -> None:
    pacer = train(PredictivePacer(), dials=1000)  # answers after 12 s, no-answers end at 25 s
    pacer.model.advance(LATER)
    weights: list[float] = []
    pacer.model.live_to_come((20.0, 0.0, 13.0, 11.0), 0, weights)
    assert len(pacer.model.live_groups((20.0, 0.0, 13.0, 11.0), 0)) == 4  # by age, youngest first
    assert weights[0] == pytest.approx(pacer.model.p_live, rel=0.05)  # a fresh call: p
    assert weights[1] == pytest.approx(weights[0])  # nothing has ended by 11 s: age tells nothing
    assert weights[2] < 0.1 * weights[0]  # past every answer time seen
    assert weights[3] <= weights[2]


def test_predictive_dials_more_when_the_ringing_calls_are_old_no_answers_to_be() -> None:
    pacer = train(PredictivePacer(), dials=1000)
    fresh = pacer.decide(aged(ready=10, ages=(0.5,) * 30))
    stale = pacer.decide(aged(ready=10, ages=(20.0,) * 30))
    alone = pacer.decide(snap(now=LATER, ready=10))
    assert fresh < stale
    assert stale == pytest.approx(alone, abs=2)  # calls that will ring out leave the agents free


def test_predictive_counts_a_call_in_amd_as_a_person_with_the_human_rate() -> None:
    pacer = train(PredictivePacer())  # every answer was a person so far
    assert pacer.decide(aged(ready=4, ages=(), amd=4)) == 0  # four people coming for four agents
    before = PredictivePacer(ring_age=False, talk_lookahead=False)
    train(before)
    assert before.decide(aged(ready=4, ages=(), amd=4)) > 0  # the baseline took them for fresh dials


def test_without_ring_age_the_ages_are_ignored() -> None:
    before = train(PredictivePacer(ring_age=False, talk_lookahead=False))
    plain = snap(now=LATER, ready=10, ringing=30)
    assert before.decide(aged(ready=10, ages=(20.0,) * 30)) == before.decide(plain)
    assert before.decide(aged(ready=10, ages=(0.5,) * 30)) == before.decide(plain)


def test_the_talk_look_ahead_counts_agents_whose_talk_is_about_to_end() -> None:
    # Wrap-ups of 2-18 s (mean 10 s), answers after 8 s: the mean wrap-up outlasts the horizon,
    # yet a talk ending now is often done, wrap-up included, in time for the next answer.
    def history(pacer: PredictivePacer) -> PredictivePacer:
        for i in range(200):
            answered = i % 20 < 3
            pacer.observe_dial(8.0 if answered else 25.0, answered, originated_at=i * 0.5)
            if answered:
                pacer.observe_human(True)
                pacer.observe_talk(100.0)
                pacer.observe_wrap(2.0 + 16.0 * (i % 7) / 6)
        return pacer
    now = history(PredictivePacer())
    before = history(PredictivePacer(talk_lookahead=False))
    s = snap(now=LATER, ready=1, busy=(99.0,) * 6)
    assert now.decide(s) > before.decide(s)


# --- the estimator -------------------------------------------------------------------------


def test_estimator_waits_for_a_cohort_to_end_before_counting_its_outcomes() -> None:
    est = Estimator(maturity=35.0)
    est.advance(100.0)
    for _ in range(17):  # fast failures of the calls placed at t=100 come back first
        est.observe_dial(2.0, False, originated_at=100.0)
    est.advance(103.0)
    assert est.dials == 0  # nothing counted yet: the estimate is still the prior
    assert est.p_answer == 1.0
    for _ in range(3):
        est.observe_dial(12.0, True, originated_at=100.0)
    est.advance(135.0)
    assert est.dials == 20
    assert est.p_answer == pytest.approx((5 * 1.0 + 3) / 25)  # prior worth 5 dials, then 3/20
    assert est.ring_time == pytest.approx((5 * 10.0 + 3 * 12.0) / 8)


def test_estimator_result_does_not_depend_on_the_order_outcomes_arrive_in() -> None:
    a, b = Estimator(memory=10), Estimator(memory=10)
    outcomes = [(2.0, False)] * 40 + [(12.0, True)] * 10
    for ring, answered in outcomes:
        a.observe_dial(ring, answered, originated_at=0.0)
    for ring, answered in reversed(outcomes):
        b.observe_dial(ring, answered, originated_at=0.0)
    a.advance(LATER)
    b.advance(LATER)
    assert a.p_answer == pytest.approx(b.p_answer)
    assert 0.2 < a.p_answer < 0.3


def test_estimator_without_origination_times_stamps_outcomes_from_the_last_snapshot() -> None:
    est = Estimator(maturity=30.0)
    est.advance(50.0)
    est.observe_dial(20.0, True)  # placed at about 30
    est.advance(59.0)
    assert est.dials == 0
    est.advance(60.0)
    assert est.dials == 1


def test_estimator_residual_time_is_empirical_given_the_elapsed_time() -> None:
    est = Estimator(prior_wrap=0.0)
    for _ in range(100):
        est.observe_talk(100.0)
        est.observe_wrap(0.0)
    near_end, far_from_end = est.p_free((95.0, 10.0), (), 10.0)
    assert near_end > 0.95
    assert far_from_end < 0.05


def test_estimator_counts_long_running_calls_as_censored_samples() -> None:
    est = Estimator(prior_wrap=0.0)
    for _ in range(5):  # a ramp-up: only short calls have ended so far
        est.observe_talk(20.0)
        est.observe_wrap(0.0)
    alone = est.p_free((15.0,), (), 10.0)[0]
    with_long_calls = est.p_free((15.0,) + (60.0,) * 10, (), 10.0)[0]
    assert with_long_calls < alone / 2


def _residual_estimate_against_truth(running: int, cohort: bool) -> float:
    """`running` calls always in progress, each followed at once by the next (talk log-normal,
    mean 60 s, cv 0.9; seeded). Every 10 s of the second quarter hour, the estimator's expected
    number of calls ending within 9 s against the number that truly do: the ratio of the sums
    (from 15 to 60 minutes)."""
    rng = random.Random(7)
    sigma2 = math.log(1.0 + 0.9 ** 2)

    def talk() -> float:
        return rng.lognormvariate(math.log(60.0) - sigma2 / 2, math.sqrt(sigma2))

    durations = _Durations(200, 120.0, 5.0, cohort)
    calls = [(talk(), 0.0) for _ in range(running)]  # (end, start): a synchronised start
    heapq.heapify(calls)
    expected = truth = 0.0
    query = 900.0
    while query < 3600.0:
        end, start = calls[0]
        while query < end and query < 3600.0:
            elapsed = tuple(query - s for _, s in calls)
            expected += sum(durations.ends_within_many(elapsed, [9.0], True, query)[0])
            truth += sum(1 for e, _ in calls if e <= query + 9.0)
            query += 10.0
        heapq.heapreplace(calls, (end + talk(), end))
        durations.add(end - start, end)
    return expected / truth


def test_agents_free_soon_are_counted_right_however_large_the_team() -> None:
    # The cohort (calls started since the oldest finish kept, finished or still running) is
    # right at 20 and 300 calls at once; the estimator before it (the last 200 finished calls
    # against every running one) undercounted more the larger the team.
    assert _residual_estimate_against_truth(20, cohort=True) == pytest.approx(1.0, abs=0.06)
    assert _residual_estimate_against_truth(300, cohort=True) == pytest.approx(1.0, abs=0.04)
    assert _residual_estimate_against_truth(300, cohort=False) < 0.6


def _steady_estimator(running: int, until: float = 2700.0
                      ) -> tuple[Estimator, float, float, tuple[float, ...]]:
    """An `Estimator` fed as the engine feeds it (ticks, then each call's talk and a zero
    wrap-up as it ends) by `running` calls always in progress (talk log-normal, mean 60 s,
    cv 0.9; seeded). Returns it with the sums, every 10 s from 15 min on, of `p_free` within
    9 s and of the calls that truly end within 9 s, and the running calls' ages at the end."""
    rng = random.Random(11)
    sigma2 = math.log(1.0 + 0.9 ** 2)

    def talk() -> float:
        return rng.lognormvariate(math.log(60.0) - sigma2 / 2, math.sqrt(sigma2))

    est = Estimator(prior_wrap=0.0)
    est.advance(0.0)
    calls = [(talk(), 0.0) for _ in range(running)]
    heapq.heapify(calls)
    expected = truth = 0.0
    query = 900.0
    while True:
        end, start = calls[0]
        while query < end and query < until:
            est.advance(query)
            ages = tuple(query - s for _, s in calls)
            expected += sum(est.p_free(ages, (), 9.0))
            truth += sum(1 for e, _ in calls if e <= query + 9.0)
            query += 10.0
        if query >= until:
            return est, expected, truth, tuple(until - s for _, s in calls)
        est.advance(end)
        heapq.heapreplace(calls, (end + talk(), end))
        est.observe_talk(end - start)
        est.observe_wrap(0.0)


def test_the_estimator_counts_agents_free_soon_right_in_a_large_team_and_keeps_its_memory_bounded(
        ) -> None:
    est, expected, truth, ages = _steady_estimator(300)
    assert expected / truth == pytest.approx(1.0, abs=0.05)
    assert est.p_free_many(ages, (), [9.0]) == [pytest.approx(est.p_free(ages, (), 9.0))]
    kept = est._talk  # the cohort follows the calls running: four finished ones per running
    assert len(kept._members) <= 4 * 300 + 1
    assert len(kept._finishes) <= 4 * 300 + 1
    assert kept._t0 > 1800.0  # and moves on with the calls' end times (the clock's)


def test_a_matching_groups_agents_are_free_soon_as_they_are_in_the_whole_team() -> None:
    # Per-group pacing asks with one group's agents; the estimator has seen every group's
    # calls end, so it weighs them against every group's running calls (the team's), or the
    # group's agents look about to be free, the more so the more groups.
    est, _, _, ages = _steady_estimator(300)
    whole = est.p_free(ages, (), 9.0)
    group = ages[:50]
    assert est.p_free(group, (), 9.0, (ages, ())) == pytest.approx(whole[:50])
    assert est.p_free_many(group, (), [9.0], (ages, ()))[0] == pytest.approx(whole[:50])
    assert sum(est.p_free(group, (), 9.0)) > 1.15 * sum(whole[:50])  # with the group's own


def test_after_a_restore_calls_placed_before_it_do_not_count_in_agents_free_soon() -> None:
    # Calls placed before a restore may end after it (the runner hangs up the calls it finds
    # at recovery, but an estimator restored into a running campaign, as the simulator's warm
    # starts do, may see them), and the short ones among them ended unseen: the ones seen
    # would make calls look long. The cohort starts afresh at the first `advance` after the
    # restore and leaves them out.
    saved = Estimator()
    for _ in range(200):
        saved.observe_talk(60.0)
        saved.observe_wrap(10.0)

    def agents_free_soon(est: Estimator) -> tuple[float, float]:
        est.advance(1000.0)
        est.advance(1010.0)
        agents = (5.0,) * 10  # ten agents 5 s into calls placed after the restart
        before = est.p_free(agents, (), 30.0)[0]
        for _ in range(20):
            est.observe_talk(60.0)  # calls placed at 950, before the restart, end now
        return before, est.p_free(agents, (), 30.0)[0]

    restored = Estimator()
    restored.restore_state(json.loads(json.dumps(saved.export_state())))
    before, after = agents_free_soon(restored)
    assert after == pytest.approx(before)
    before, after = agents_free_soon(Estimator())  # a cold start sees every call from its start
    assert after < before / 2


def test_estimator_live_rate_is_answer_rate_times_human_rate() -> None:
    est = Estimator(prior_weight=0.0)
    for i in range(10):
        est.observe_dial(10.0, i < 5, originated_at=0.0)
        if i < 5:
            est.observe_human(i < 2)
    est.advance(LATER)
    assert est.p_live == pytest.approx(0.5 * 0.4)


# --- the estimator's state, kept over a restart ---------------------------------------------


def roundtrip(state: object) -> object:
    return json.loads(json.dumps(state))


def today(pacer: PredictivePacer | Estimator, dials: int, answered_per_20: int,
          start: float = LATER) -> None:
    """Today's first `dials` outcomes, one every 0.5 s from `start`, all matured after."""
    for i in range(dials):
        answered = i % 20 < answered_per_20
        pacer.observe_dial(12.0 if answered else 25.0, answered, originated_at=start + i * 0.5)
    model = pacer.model if isinstance(pacer, PredictivePacer) else pacer
    model.advance(start + dials * 0.5 + 100.0)


def test_a_restored_pacer_needs_no_warm_up_and_doubts_the_saved_rate_until_today_confirms_it(
        ) -> None:
    saved = trained_predictive()
    assert isinstance(saved.model, Estimator)
    saved.model.advance(LATER / 2)  # its 200 outcomes counted
    restored = PredictivePacer()
    restored.restore_state(roundtrip(saved.export_state()))
    assert isinstance(restored.model, Estimator)
    assert restored.model.restored_dials == restored.model.dials == 200
    assert restored.model.talk_mean == pytest.approx(saved.model.talk_mean)
    assert restored.model.p_answer == pytest.approx(2 * saved.model.p_answer)  # restore_doubt
    s = snap(now=LATER, ready=4, busy=(30.0, 80.0, 100.0), wrapping=(5.0,), ringing=3)
    doubted = restored.decide(s)
    assert ProgressivePacer().decide(s) < doubted < saved.decide(s)
    cold = PredictivePacer()
    assert cold.decide(s) == ProgressivePacer().decide(s)  # a cold start's warm-up
    today(restored, 40, 3)  # today answers at yesterday's 15 %
    assert not restored.model.restored_refused
    assert restored.model.p_live == pytest.approx(saved.model.p_live, rel=0.05)
    later = replace(s, now=LATER + 200.0)
    assert restored.decide(later) > doubted
    today(cold, 40, 3)
    assert cold.decide(later) < restored.decide(later)  # it still leans on the prior's 100 %


def counted(pacer: PredictivePacer, until: float = 250.0) -> Estimator:
    """The pacer's estimator with the outcomes `train` fed counted, 5 s at a time (as the
    pacer's snapshots would: the answer rate's memory grows as they come in)."""
    assert isinstance(pacer.model, Estimator)
    for t in range(0, int(until), 5):
        pacer.model.advance(float(t))
    return pacer.model


def test_a_restored_answer_rate_that_todays_answers_do_not_fit_is_dropped() -> None:
    yesterday = train(PredictivePacer(), dials=400, answered_per_20=1)  # a 5 % list
    saved_rate = counted(yesterday).p_answer
    assert saved_rate == pytest.approx(0.05, abs=0.015)
    restored = PredictivePacer()
    restored.restore_state(roundtrip(yesterday.export_state()))
    assert isinstance(restored.model, Estimator)
    assert restored.model.p_answer == pytest.approx(2 * saved_rate)  # doubted
    today(restored, 40, 6)  # today's list answers at 30 %
    assert restored.model.restored_refused
    assert restored.model.p_answer > 0.25  # today's rate (shrunk toward the cold prior's 100 %)


def lifted_and_saved(reached: int = 500) -> dict[str, object]:
    """The state of a pacer whose budget was lifted by `reached` people with no abandon."""
    pacer = trained_predictive()
    pacer.decide(seen(0))
    pacer.decide(seen(reached))
    state = roundtrip(pacer.export_state())
    assert isinstance(state, dict)
    return state


def test_a_restored_pacer_keeps_the_lift_its_budget_had_earned() -> None:
    state = lifted_and_saved()
    assert state["lift"] == pytest.approx(math.exp(0.5))
    restored = PredictivePacer()
    restored.restore_state(state)
    assert restored.lift == pytest.approx(math.exp(0.5))
    restored.decide(seen(0))  # the restarted engine's counters start from 0
    assert restored.lift == pytest.approx(math.exp(0.5))
    assert restored.last_theta == pytest.approx(0.024 * math.exp(0.5))
    capped = PredictivePacer(lift_max=1.2)  # a lower ceiling set since
    capped.restore_state(state)
    assert capped.lift == pytest.approx(1.2)
    older = dict(state)
    del older["lift"]  # saved before the lift was kept
    fresh = PredictivePacer()
    fresh.restore_state(older)
    assert fresh.lift == 1.0


def test_a_lift_never_exceeds_what_the_windows_people_could_have_earned() -> None:
    restored = PredictivePacer()
    restored.restore_state(lifted_and_saved())  # e^0.5, earned on 500 people
    restored.decide(seen(0, humans=100))  # a new UK day, or an empty window: 100 people
    assert restored.lift == pytest.approx(math.exp(0.5))  # the balance is kept...
    assert restored.last_theta == pytest.approx(0.024 * math.exp(0.1))  # ...spent as 100 earn
    restored.decide(seen(0, humans=400))
    assert restored.last_theta == pytest.approx(0.024 * math.exp(0.4))
    restored.decide(seen(0, humans=1000))
    assert restored.last_theta == pytest.approx(0.024 * math.exp(0.5))


def test_a_saved_lift_is_dropped_with_estimates_that_todays_calls_do_not_fit() -> None:
    state = lifted_and_saved()
    kept, dropped = PredictivePacer(), PredictivePacer()
    for pacer, answered_per_20 in ((kept, 3), (dropped, 12)):  # yesterday's 15 %, a 60 % list
        pacer.restore_state(state)
        today(pacer, 40, answered_per_20)
        pacer.decide(seen(0))
    assert isinstance(dropped.model, Estimator)
    assert dropped.model.restored_refused
    assert dropped.lift == 1.0
    assert kept.lift == pytest.approx(math.exp(0.5))


@pytest.mark.parametrize(("change", "message"), [
    ({"lift": 0.5}, "lift must be a number"), ({"lift": "2"}, "lift must be a number"),
    ({"lift": None}, "lift must be a number"), ({"lift": True}, "lift must be a number"),
    ({"lift": 1e999}, "lift must be a number"), ({"lift": 101.0}, "lift must be a number"),
    ({"lift": 3.0, "dials": -1}, "dials must be"),  # a good lift, a bad estimate
    ({"lift": "x", "version": 99}, "version 99"),  # the version is what is wrong first
])
def test_a_malformed_saved_lift_is_refused_and_the_pacer_left_as_it_was(
        change: dict[str, object], message: str) -> None:
    pacer = PredictivePacer()
    pacer.restore_state(lifted_and_saved())
    assert isinstance(pacer.model, Estimator)
    before = (pacer.lift, pacer.model.dials, pacer.model.p_live)
    with pytest.raises(ValueError, match=message):
        pacer.restore_state(lifted_and_saved(1000) | change)
    assert (pacer.lift, pacer.model.dials, pacer.model.p_live) == before
    assert pacer.lift == pytest.approx(math.exp(0.5))


def test_a_saved_lift_is_dropped_when_todays_verdicts_refuse_the_share_of_people_even_unsaved(
        ) -> None:
    state = lifted_and_saved()
    state["human"] = [0.5, 100.0, 200.0]  # yesterday, half the answers were machines
    pacer = PredictivePacer()
    pacer.restore_state(state)
    assert pacer.lift == pytest.approx(math.exp(0.5))
    for _ in range(15):  # today's list: people only, and no decision since (the campaign
        pacer.observe_human(True)  # stopped): the lift must not be saved on
    saved = pacer.export_state()
    assert isinstance(saved, dict)
    assert saved["lift"] == 1.0
    assert pacer.lift == 1.0


def test_a_saved_lift_is_kept_once_todays_calls_have_confirmed_the_estimates() -> None:
    pacer = PredictivePacer()
    pacer.restore_state(lifted_and_saved())
    assert isinstance(pacer.model, Estimator)
    for _ in range(40):  # AMD verdicts like yesterday's (people only)
        pacer.observe_human(True)
    today(pacer, 400, 3)  # and answers at yesterday's 15 %, until they outweigh it
    pacer.decide(seen(0))
    assert not pacer.model.restore_checking
    assert not pacer.model.restored_refused
    assert pacer.lift == pytest.approx(math.exp(0.5))


def test_a_saved_lift_whose_answer_rate_is_not_taken_up_is_not_either() -> None:
    state = lifted_and_saved()
    state["answered"] = [0.001, 1000.0, 1000.0]  # one answer in a thousand dials: an outage
    pacer = PredictivePacer()
    pacer.restore_state(state)
    assert isinstance(pacer.model, Estimator)
    assert pacer.model.dials == 0  # the warm-up of a cold start
    assert pacer.lift == 1.0
    assert not pacer.model.rate_restored
    counted_none = PredictivePacer()  # a good rate saved with no dials counted: taken up
    counted_none.restore_state(lifted_and_saved() | {"dials": 0})
    assert isinstance(counted_none.model, Estimator)
    assert counted_none.model.rate_restored
    assert counted_none.lift == pytest.approx(math.exp(0.5))


def test_a_restored_answer_rate_is_trusted_as_a_few_answers_worth_and_soon_outweighed() -> None:
    old = Estimator()
    for i in range(2000):  # a long day at 15 % answer
        old.advance(i * 0.5)
        old.observe_dial(12.0 if i % 20 < 3 else 25.0, i % 20 < 3, originated_at=i * 0.5)
    old.advance(LATER)
    new = Estimator()
    new.restore_state(roundtrip(old.export_state()), trust_answers=25.0)
    assert new.p_live_error > 1.5 * old.p_live_error  # it rests on 25 answers, not ~100
    today(new, 400, 4)  # today the list answers at 20 %: close enough to be kept
    today(old, 400, 4)
    assert not new.restored_refused
    assert new.p_answer > 0.18  # most of the way from 15 % to 20 %
    assert old.p_answer < 0.175  # had it been trusted whole


def test_outcomes_not_yet_counted_are_kept_with_their_origination_times() -> None:
    old = Estimator(maturity=35.0)
    old.advance(100.0)
    for _ in range(4):
        old.observe_dial(25.0, False, originated_at=90.0)
    new = Estimator(maturity=35.0, restore_doubt=1.0)
    new.restore_state(roundtrip(old.export_state()))
    new.advance(120.0)
    assert new.p_answer == 1.0  # the prior: nothing counted yet
    new.advance(125.0)
    assert new.p_answer < 1.0
    assert new.dials == 4


@pytest.mark.parametrize(("change", "message"), [
    ({"version": 99}, "version 99"),
    ({"dials": -1}, "dials"),
    ({"dials": 1.5}, "dials"),
    ({"answered": [float("nan"), 10, 200]}, "answered must be"),
    ({"answered": [1.5, 10, 200]}, "the value in [0, 1]"),
    ({"answered": [10**400, 1, 1]}, "answered must be"),
    ({"ring": [1e300, 10, 200]}, "ring must be"),
    ({"talk": [1e308] * 3}, "talk[0]"),
    ({"outcomes": [[1e308, 1]]}, "outcomes[0]"),
    ({"pending": [[1e300, 12.0, 1]]}, "pending[0]"),
    ({"abandons": 10**400}, "abandons"),
    ({"human": [0.5, 10]}, "human must be"),
    ({"talk": [60.0, -1.0]}, "talk[1]"),
    ({"talk": ["60"]}, "talk[0]"),
    ({"outcomes": [[12.0, 2]]}, "outcomes[0]"),
    ({"outcomes": [[12.0, True]]}, "outcomes[0]"),
    ({"pending": [[100.0, 12.0]]}, "pending[0]"),
    ({"pending": "none"}, "pending must be a list"),
])
def test_a_malformed_state_is_refused_with_what_is_wrong_and_the_estimates_are_kept(
        change: dict[str, object], message: str) -> None:
    saved = trained_predictive()
    state = roundtrip(saved.export_state())
    assert isinstance(state, dict)
    pacer = trained_predictive()
    assert isinstance(pacer.model, Estimator)
    before = (pacer.model.p_live, pacer.model.talk_mean, pacer.model.dials)
    with pytest.raises(ValueError, match=re.escape(message)):
        pacer.restore_state({**state, **change})
    assert (pacer.model.p_live, pacer.model.talk_mean, pacer.model.dials) == before


def test_a_restored_share_of_people_that_todays_verdicts_do_not_fit_is_dropped() -> None:
    yesterday = PredictivePacer()
    for i in range(200):  # half of yesterday's answers were machines
        yesterday.observe_human(i % 2 == 0)
    restored = PredictivePacer()
    restored.restore_state(roundtrip(yesterday.export_state()))
    assert isinstance(restored.model, Estimator)
    assert restored.model.p_human == pytest.approx(0.5, abs=0.02)
    for _ in range(14):  # today's list: people only
        restored.observe_human(True)
    assert not restored.model.restored_refused  # checked from the 15th verdict
    restored.observe_human(True)
    assert restored.model.restored_refused
    assert restored.model.p_human > 0.95  # today's share, not yesterday's half
    kept = PredictivePacer()
    kept.restore_state(roundtrip(yesterday.export_state()))
    for i in range(30):  # a list like yesterday's
        kept.observe_human(i % 2 == 0)
    assert isinstance(kept.model, Estimator)
    assert not kept.model.restored_refused


def test_a_saved_answer_rate_resting_on_few_answers_is_not_taken_up() -> None:
    # A day of failed dials (a carrier outage): 2,000 dials, one answer.
    outage = PredictivePacer()
    for i in range(2000):
        outage.observe_dial(12.0 if i == 0 else 2.0, i == 0, originated_at=i * 0.5)
    assert counted(outage, 1100.0).p_answer < 0.01
    restored = PredictivePacer()
    restored.restore_state(roundtrip(outage.export_state()))
    assert isinstance(restored.model, Estimator)
    assert restored.model.p_answer == 1.0  # the cold prior, not ~0: no flood of calls
    assert restored.model.dials == 0  # and the pacer's warm-up
    s = snap(now=LATER, ready=10)
    assert restored.decide(s) == ProgressivePacer().decide(s) == 10


def test_a_state_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError, match="not a JSON object"):
        PredictivePacer().restore_state([1, 2, 3])


def test_a_pacer_with_known_parameters_has_no_state_to_keep() -> None:
    pacer = PredictivePacer(model=FixedModel(p_live=0.15, q=0.5))
    assert pacer.export_state() is None
    with pytest.raises(ValueError, match="keeps no state"):
        pacer.restore_state(trained_predictive().export_state())


# --- the model-based decision against a brute-force enumeration ----------------------------


@dataclass
class FixedModel:
    """Known parameters, as a simulator might pass them: every busy agent has the same q."""

    p_live: float
    q: float
    ring_time: float = 10.0
    dials: int = 1_000_000
    p_live_error: float = 0.0

    def advance(self, now: float) -> None:
        pass

    def p_free(self, talking: tuple[float, ...], wrapping: tuple[float, ...], horizon: float,
               team: tuple[tuple[float, ...], tuple[float, ...]] | None = None) -> list[float]:
        return [self.q] * (len(talking) + len(wrapping))

    def live_groups(self, ages: tuple[float, ...], in_amd: int) -> list[tuple[float, int]]:
        return [(self.p_live, len(ages) + in_amd)]

    def live_to_come(self, ages: tuple[float, ...], in_amd: int, out: list[float]) -> None:
        out.extend(self.p_live for _ in range(len(ages) + in_amd))

    def observe_dial(self, ring_seconds: float, answered: bool,
                     originated_at: float | None = None) -> None:
        pass

    def observe_human(self, answered_human: bool) -> None:
        pass

    def observe_talk(self, seconds: float) -> None:
        pass

    def observe_wrap(self, seconds: float) -> None:
        pass

    def observe_abandon(self) -> None:
        pass


def convolve(dist: list[float], r: float) -> list[float]:
    out = [0.0] * (len(dist) + 1)
    for y, w in enumerate(dist):
        out[y] += w * (1 - r)
        out[y + 1] += w * r
    return out


def cohort_abandon_rate(p: float, q: float, ready: int, waiting: int, engaged: int, calls: int) -> float:
    """E[humans of `calls` calls who find no agent] / E[humans], by enumeration. Agents: `ready`
    free now, `engaged` each free by the horizon with probability q; waiting humans go first."""
    if calls == 0:
        return 0.0
    free: list[float] = [1.0]
    for _ in range(engaged):
        free = convolve(free, q)
    humans: list[float] = [1.0]
    for _ in range(calls):
        humans = convolve(humans, p)
    abandoned = 0.0
    for f, pf in enumerate(free):
        agents = max(0, ready + f - waiting)
        abandoned += pf * sum(ph * max(0, x - agents) for x, ph in enumerate(humans))
    return abandoned / (calls * p)


@settings(max_examples=150, deadline=None)
@given(p=st.floats(0.05, 1.0), q=st.floats(0.01, 0.99), ready=st.integers(0, 5),
       waiting=st.integers(0, 2), busy=st.integers(0, 4), wrapping=st.integers(0, 2),
       ringing=st.integers(0, 6), cap=st.integers(0, 30), target=st.floats(0.005, 0.2))
def test_predictive_places_the_most_calls_whose_expected_abandon_rate_fits_the_budget(
        p: float, q: float, ready: int, waiting: int, busy: int, wrapping: int, ringing: int,
        cap: int, target: float) -> None:
    pacer = PredictivePacer(target, model=FixedModel(p_live=p, q=q), exact_limit=10_000)
    s = snap(now=1.0, ready=ready, waiting=waiting, busy=(5.0,) * busy, wrapping=(1.0,) * wrapping,
             ringing=ringing, leads=cap)
    n = pacer.decide(s)
    theta = pacer.budget(s)
    floor = max(0, ready - waiting - ringing)

    def rate(calls: int) -> float:
        return cohort_abandon_rate(p, q, ready, waiting, busy + wrapping, calls)

    if ready == 0 and busy + wrapping == 0:
        assert n == 0
        return
    assert min(floor, cap) <= n <= cap
    if n > floor:
        assert rate(ringing + n) <= theta + 1e-9
    if floor <= n < cap:
        assert rate(ringing + n + 1) > theta - 1e-9


# --- invariants of every pacer (Hypothesis) ------------------------------------------------

elapsed = st.floats(0.0, 600.0, allow_nan=False)


@st.composite
def snapshots(draw: st.DrawFn, *, ready: st.SearchStrategy[int] | None = None,
              engaged: bool = True) -> PacingSnapshot:
    humans = draw(st.integers(0, 5000))
    return PacingSnapshot(
        now=draw(st.floats(0.0, 1e5)),
        ready_agents=draw(ready if ready is not None else st.integers(0, 60)),
        busy_agents=tuple(draw(st.lists(elapsed, max_size=60))) if engaged else (),
        wrapping_agents=tuple(draw(st.lists(st.floats(0.0, 30.0), max_size=10))) if engaged else (),
        calls_ringing=draw(st.integers(0, 100)),
        calls_waiting=draw(st.integers(0, 10)),
        abandoned_in_window=draw(st.integers(0, humans)),
        humans_in_window=humans,
        leads_available=draw(st.integers(0, 500)),
        channels_free=draw(st.integers(0, 300)),
    )


AGENT_PACERS: dict[str, Callable[[], Pacer]] = {
    "progressive": ProgressivePacer,
    "power": lambda: PowerPacer(2.5),
    "preview": PreviewPacer,
    "vicidial": lambda: VicidialAdaptPacer(initial_level=2.2),
    "predictive-cold": PredictivePacer,
    "predictive-trained": trained_predictive,
    "predictive-low-answer": lambda: train(PredictivePacer(), dials=400, answered_per_20=1),
    "predictive-time-resolved": lambda: train(PredictivePacer(time_resolved=True), dials=400),
}
ALL_PACERS: dict[str, Callable[[], Pacer]] = {**AGENT_PACERS, "agentless": lambda: AgentlessPacer(50)}


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(ALL_PACERS)), s=snapshots())
def test_every_pacer_places_between_zero_and_the_leads_and_channels_available(
        name: str, s: PacingSnapshot) -> None:
    n = ALL_PACERS[name]().decide(s)
    assert 0 <= n <= min(s.leads_available, s.channels_free)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(AGENT_PACERS)), s=snapshots(ready=st.just(0), engaged=False))
def test_every_agent_pacer_places_nothing_when_no_agent_is_logged_in(name: str, s: PacingSnapshot) -> None:
    assert AGENT_PACERS[name]().decide(s) == 0


@settings(max_examples=60, deadline=None)
@given(ratio=st.floats(0.5, 5.0), s=snapshots(ready=st.just(0)))
def test_progressive_and_power_place_nothing_without_a_ready_agent(ratio: float, s: PacingSnapshot) -> None:
    assert ProgressivePacer().decide(s) == 0
    assert PowerPacer(ratio).decide(s) == 0


@settings(max_examples=60, deadline=None)
@given(s=snapshots(), excess=st.floats(0.0, 0.5))
def test_predictive_without_a_floor_never_outdials_progressive_once_the_window_is_at_target(
        s: PacingSnapshot, excess: float) -> None:
    at_target = with_window(s, excess)
    pacer = train(PredictivePacer(0.03, floor=0.0), dials=400, answered_per_20=1)
    assert pacer.decide(at_target) <= ProgressivePacer().decide(at_target)


@settings(max_examples=60, deadline=None)
@given(s=snapshots(), excess=st.floats(0.0, 0.5))
def test_predictive_at_or_over_the_target_never_outdials_itself_below_the_taper(
        s: PacingSnapshot, excess: float) -> None:
    pacer = train(PredictivePacer(0.03), dials=400, answered_per_20=1)
    clean = replace(with_window(s, excess), abandoned_in_window=0)
    assert pacer.decide(with_window(s, excess)) <= pacer.decide(clean)


def with_window(s: PacingSnapshot, excess: float) -> PacingSnapshot:
    """`s` with its window's abandon rate at the 3 % target plus `excess`."""
    humans = max(1, s.humans_in_window)
    return replace(s, abandoned_in_window=math.ceil(humans * (0.03 + excess)), humans_in_window=humans)


@settings(max_examples=60, deadline=None)
@given(ready=st.integers(2, 60), busy=st.lists(elapsed, max_size=40),
       wrapping=st.lists(st.floats(0.0, 30.0), max_size=8))
def test_predictive_outdials_progressive_at_a_low_answer_rate_with_agents_ready(
        ready: int, busy: list[float], wrapping: list[float]) -> None:
    s = snap(now=LATER, ready=ready, busy=tuple(busy), wrapping=tuple(wrapping))
    assert trained_predictive().decide(s) > ProgressivePacer().decide(s)


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(ALL_PACERS)), sequence=st.lists(snapshots(), min_size=1, max_size=6))
def test_every_pacer_is_deterministic(name: str, sequence: list[PacingSnapshot]) -> None:
    a, b = ALL_PACERS[name](), ALL_PACERS[name]()
    ordered = sorted(sequence, key=lambda s: s.now)
    assert [a.decide(s) for s in ordered] == [b.decide(s) for s in ordered]


# --- the time-resolved model (opt-in: `time_resolved=True`) -------------------------------


def spread(pacer: PredictivePacer, dials: int = 400) -> PredictivePacer:
    """Like `train`, with live answers after 5, 6, … 15 s of ringing (cycling) and no-answers
    ringing out at 25 s (no fast failures: an age under 5 s then says nothing of the live
    chance, so calls of different ages differ only in *when* they answer)."""
    for i in range(dials):
        answered = i % 20 < 3
        ring = 5.0 + (i // 20) % 11 if answered else 25.0
        pacer.observe_dial(ring, answered, originated_at=i * 0.5)
        if answered:
            pacer.observe_human(True)
            pacer.observe_talk(TALKS[i % len(TALKS)])
            pacer.observe_wrap(10.0)
    pacer.model.advance(LATER)
    return pacer


def timed_pacer(**kw: float) -> PredictivePacer:
    return spread(PredictivePacer(time_resolved=True, **kw))  # type: ignore[arg-type]


def test_time_resolved_checkpoints_wait_for_enough_answers_then_reach_the_longest_answer() -> None:
    few = Estimator()
    for i in range(19):
        few.observe_dial(5.0 + i % 11, True, originated_at=0.0)
    few.advance(LATER)
    assert few.checkpoints == ()  # the pacer uses its one horizon meanwhile
    est = spread(PredictivePacer()).model
    assert isinstance(est, Estimator)
    marks = est.checkpoints
    assert marks[0] == 1.0
    assert marks[-1] == 15.0  # every answer to come is in by the last one
    assert list(marks) == sorted(set(marks))


def test_time_resolved_calls_in_flight_answer_sooner_the_longer_they_have_rung() -> None:
    est = spread(PredictivePacer()).model
    assert isinstance(est, Estimator)
    marks = est.checkpoints
    groups, new_call = est.timed_groups((0.0, 4.0), 0)
    (r_new, _, fresh), (r_old, _, old) = groups
    assert r_new == pytest.approx(r_old)  # nothing ends before 5 s: age 4 s says nothing of "live"
    assert fresh == new_call
    assert fresh[0] == 0.0 < old[0]  # nobody answers within 1 s of the dial: the first is at 5 s
    assert fresh[marks.index(12.0)] < old[marks.index(12.0)] == 1.0  # all in by 4 + 12 s
    assert all(o >= f for o, f in zip(old, fresh, strict=True))
    assert fresh[-1] == old[-1] == 1.0
    (_, _, amd), = est.timed_groups((), 2)[0]
    assert set(amd) == {1.0}  # a call in AMD has answered: at once


def test_time_resolved_free_agents_at_several_horizons_are_those_of_one_horizon_each() -> None:
    est = spread(PredictivePacer()).model
    assert isinstance(est, Estimator)
    talking, wrapping = (28.0, 5.0, 61.0, 140.0), (2.0, 9.5)
    horizons = [1.0, 6.0, 13.0, 22.0]
    many = est.p_free_many(talking, wrapping, horizons)
    for h, got in zip(horizons, many, strict=True):
        assert got == pytest.approx(est.p_free(talking, wrapping, h))


def test_time_resolved_pacer_dials_more_when_more_agents_are_about_to_free() -> None:
    ending = aged(ready=2, ages=(), busy=(28.0,) * 10)  # their 30-s talks end in 2 s
    started = aged(ready=2, ages=(), busy=(1.0,) * 10)  # nobody's talk ends under 30 s
    pacer = timed_pacer()
    assert pacer.model.checkpoints  # type: ignore[attr-defined]
    assert pacer.decide(ending) > pacer.decide(started) >= 0


def test_time_resolved_pacer_dials_fewer_when_the_answers_in_flight_are_due_sooner() -> None:
    # Agents free one a second from 12 s on (30-s talks ending, then 10 s of wrap-up): the calls
    # that have rung 4 s answer before them, the fresh ones after more of them have freed.
    busy = tuple(28.0 - i for i in range(12))
    soon = aged(ready=3, ages=(4.0,) * 5, busy=busy)
    later = aged(ready=3, ages=(0.0,) * 5, busy=busy)
    pacer = timed_pacer()
    assert pacer.decide(soon) < pacer.decide(later)


def test_time_resolved_pacer_dials_nothing_with_nobody_ready_and_nobody_about_to_free() -> None:
    s = aged(ready=0, ages=(), busy=(1.0,) * 12)
    assert timed_pacer().decide(s) == 0


def test_time_resolved_pacer_keeps_the_exact_one_horizon_model_for_small_teams() -> None:
    s = aged(ready=2, ages=(3.0, 8.0), busy=(28.0, 40.0, 100.0))  # 5 agents <= exact_limit
    assert timed_pacer().decide(s) == spread(PredictivePacer()).decide(s)


def test_time_resolved_pacer_dials_less_with_less_grace_for_the_answered_to_wait() -> None:
    busy = tuple(28.0 - i for i in range(12))
    s = aged(ready=3, ages=(0.0,) * 10, busy=busy)
    assert timed_pacer(answer_grace=0.0).decide(s) < timed_pacer(answer_grace=2.0).decide(s)


def test_the_expected_excess_of_a_maximum_is_no_less_than_of_any_of_its_terms() -> None:
    assert _clark([3.0], [4.0], 5) == pytest.approx(_overflow(3.0, 4.0, 0.0, 5))
    # The same count twice (covariance = variance) is that count.
    assert _clark([3.0, 3.0], [4.0, 4.0], 5) == pytest.approx(_overflow(3.0, 4.0, 0.0, 5))
    means, variances = [1.0, 3.0, 2.5, 0.5], [1.0, 2.0, 3.0, 4.0]
    most = max(_overflow(m, v, 0.0, 4) for m, v in zip(means, variances, strict=True))
    assert _clark(means, variances, 4) >= most
    assert _clark(means, variances, 4) > _clark(means, variances, 5)


# --- calls per second ----------------------------------------------------------------------


def test_rate_limiter_lets_a_burst_through_then_one_call_per_interval() -> None:
    limiter = RateLimiter(cps=2.0, burst=3.0)
    assert limiter.allow(0.0, 10) == 3
    assert limiter.allow(0.2, 10) == 0
    assert limiter.ready_at(0.2) == pytest.approx(0.5)
    assert limiter.allow(0.5, 10) == 1
    assert limiter.allow(10.0, 2) == 2  # refilled to the burst, only 2 wanted
    assert limiter.allow(10.0, 5) == 1


def test_rate_limiter_ignores_a_clock_that_steps_back() -> None:
    limiter = RateLimiter(cps=1.0)
    assert limiter.allow(5.0, 1) == 1
    assert limiter.allow(4.0, 1) == 0
    assert limiter.allow(6.0, 1) == 1


@settings(max_examples=100, deadline=None)
@given(cps=st.floats(0.5, 50.0), burst=st.floats(1.0, 5.0),
       steps=st.lists(st.tuples(st.floats(0.0, 2.0), st.integers(0, 20)), min_size=1, max_size=60))
def test_rate_limiter_never_exceeds_cps_over_any_window(
        cps: float, burst: float, steps: list[tuple[float, int]]) -> None:
    limiter = RateLimiter(cps, burst)
    now = 0.0
    grants: list[tuple[float, int]] = []
    for gap, wanted in steps:
        now += gap
        granted = limiter.allow(now, wanted)
        assert 0 <= granted <= wanted
        grants.append((now, granted))
    for i, (start, _) in enumerate(grants):
        total = 0
        for end, granted in grants[i:]:
            total += granted
            assert total <= burst + cps * (end - start) + 1e-6
