"""Per-group pacing: the pacer asked once per group, with that group's agents and calls."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from dialer.core.pacing import Estimator, PacingSnapshot, PowerPacer, PredictivePacer, ProgressivePacer
from dialer.routing.grouped import GroupedPacer, GroupLoad, group_snapshot
from dialer.routing.matching import GroupKey

EN: GroupKey = (("language", ("en",)),)
ES: GroupKey = (("language", ("es",)),)


def campaign(**kw: object) -> PacingSnapshot:
    base: dict[str, object] = {
        "now": 100.0, "ready_agents": 4, "busy_agents": (30.0,), "wrapping_agents": (),
        "calls_ringing": 1, "calls_waiting": 0, "abandoned_in_window": 1, "humans_in_window": 90,
        "leads_available": 1000, "channels_free": 50}
    base.update(kw)
    return PacingSnapshot(**base)  # type: ignore[arg-type]


def view(loads: Mapping[GroupKey, GroupLoad]) -> GroupedPacer:
    return GroupedPacer(ProgressivePacer(), lambda now: loads)


def test_each_group_is_paced_with_its_own_agents_and_calls() -> None:
    pacer = view({EN: GroupLoad(ready=3, ringing_ages=(4.0,)), ES: GroupLoad(ready=1)})
    assert pacer.decide(campaign()) == 3
    assert pacer.quota == {EN: 2, ES: 1}


def test_a_group_with_nobody_ready_gets_no_calls_even_if_its_agents_are_soon_free() -> None:
    pacer = GroupedPacer(PowerPacer(3.0), lambda now: {
        EN: GroupLoad(ready=1), ES: GroupLoad(ready=0, busy=(170.0,), waiting=0)})
    assert pacer.decide(campaign()) == 3
    assert pacer.quota == {EN: 3}


def test_humans_waiting_in_a_group_hold_back_only_that_group() -> None:
    pacer = view({EN: GroupLoad(ready=2), ES: GroupLoad(ready=2, waiting=2)})
    assert pacer.decide(campaign()) == 2
    assert pacer.quota == {EN: 2}


def test_the_sum_is_capped_by_the_campaigns_leads_and_channels() -> None:
    pacer = view({EN: GroupLoad(ready=3), ES: GroupLoad(ready=3)})
    assert pacer.decide(campaign(channels_free=4)) == 4
    assert pacer.quota == {EN: 3, ES: 3}  # the claim splits the 4 (dialer.routing.matching.trim_quota)


def test_a_group_snapshot_keeps_the_campaigns_abandon_window_capacity_and_running_calls() -> None:
    snap = group_snapshot(campaign(), GroupLoad(ready=1, busy=(5.0, 9.0), wrapping=(2.0,),
                                                ringing_ages=(1.0, 20.0), in_amd=1, waiting=1))
    assert (snap.ready_agents, snap.busy_agents, snap.wrapping_agents) == (1, (5.0, 9.0), (2.0,))
    assert (snap.calls_ringing, snap.ringing_ages, snap.calls_in_amd, snap.calls_waiting) == \
        (3, (1.0, 20.0), 1, 1)
    assert (snap.abandoned_in_window, snap.humans_in_window) == (1, 90)
    assert (snap.leads_available, snap.channels_free) == (1000, 50)
    assert snap.team == ((30.0,), ())  # the campaign's agents on a call and in wrap-up
    assert group_snapshot(snap, GroupLoad(ready=1)).team == snap.team  # not the group's


class Recording(Estimator):
    teams: list[tuple[tuple[float, ...], tuple[float, ...]] | None]

    def p_free(self, talking: tuple[float, ...], wrapping: tuple[float, ...], horizon: float,
               team: tuple[tuple[float, ...], tuple[float, ...]] | None = None) -> list[float]:
        self.teams.append(team)
        return super().p_free(talking, wrapping, horizon, team)


def test_the_predictive_pacer_weighs_a_groups_agents_against_the_whole_campaigns_calls() -> None:
    model = Recording()
    model.teams = []
    inner = PredictivePacer(model=model, warmup_dials=0)
    for i in range(40):
        inner.observe_dial(10.0, i % 4 == 0, originated_at=float(i))
    pacer = GroupedPacer(inner, lambda now: {EN: GroupLoad(ready=2, busy=(30.0,)),
                                             ES: GroupLoad(ready=1, wrapping=(3.0,))})
    pacer.decide(campaign(now=1000.0, busy_agents=(30.0, 12.0), wrapping_agents=(3.0,)))
    assert model.teams == [((30.0, 12.0), (3.0,))] * 2


def test_without_a_view_of_the_groups_the_pacer_refuses_to_guess() -> None:
    with pytest.raises(RuntimeError, match="no group view"):
        GroupedPacer(ProgressivePacer()).decide(campaign())
