"""The matched-dialing experiment in the simulator: seeded small runs checked for what matching
promises (never for timings or tuned figures)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dialer.core.campaign import Originate
from dialer.routing.matching import group_key
from dialer.routing.profiles import AgentProfile
from dialer.sim.matching import (
    LANGUAGE_GROUPS,
    MODES,
    REQUIRED_ONLY,
    AttributedLeadPool,
    MatchingSimulator,
    Population,
    interleave,
    main,
    run_mode,
    scenario,
)
from dialer.sim.policy import Policy
from dialer.sim.simulator import _Desk

SMALL = scenario(agents=8, hours=0.5, live=0.3, talk=60.0)
EN, ES = LANGUAGE_GROUPS


@pytest.mark.parametrize("mode", ["required", "preferred"])
def test_given_matching_then_every_connected_lead_reaches_an_agent_of_its_language(mode: str) -> None:
    result = run_mode(SMALL, mode, seed=3)
    assert result.pairs > 20
    assert result.matched_rate == 1.0


def test_given_no_matching_then_some_spanish_leads_reach_agents_who_do_not_speak_spanish() -> None:
    result = run_mode(SMALL, "unmatched", seed=3)
    assert result.pairs > 20
    assert result.matched_rate < 1.0


def test_given_no_spanish_speaker_logged_in_then_no_spanish_lead_is_dialed() -> None:
    population = Population(spanish_leads=0.5, spanish_agents=0.0, bilingual_agents=0.0)
    for mode in ("required", "preferred"):
        sim = MatchingSimulator(SMALL, Policy("predictive"), 2, mode=mode, population=population)
        dialed: list[str] = []
        originate = sim._originate

        def spy(desk: _Desk, command: Originate, sim: MatchingSimulator = sim,
                originate: Callable[[_Desk, Originate], None] = originate,
                dialed: list[str] = dialed) -> None:
            dialed.append(dict(sim._pending[command.call_id].attributes)["language"])
            originate(desk, command)

        sim._handlers[Originate] = spy
        sim.run()
        assert dialed
        assert set(dialed) == {"en"}, mode
        assert sim.released > 0, mode  # Spanish leads were claimed only to be put back


def test_preferences_raise_the_pairs_score_over_language_alone() -> None:
    required = run_mode(SMALL, "required", seed=5)
    preferred = run_mode(SMALL, "preferred", seed=5)
    assert preferred.mean_score > required.mean_score


def test_the_same_seed_gives_the_same_run() -> None:
    first = run_mode(SMALL, "preferred", seed=4)
    second = run_mode(SMALL, "preferred", seed=4)
    assert first.run.summary() == second.run.summary()
    assert (first.pairs, first.mean_score) == (second.pairs, second.mean_score)


def test_the_lead_pool_hands_out_leads_of_the_planned_group_in_lead_order() -> None:
    pool = AttributedLeadPool("sim", "UTC", None, 0.0, Population(spanish_leads=0.3),
                              REQUIRED_ONLY, seed_base=1)
    pool.plan = [ES, ES, EN]
    leads = [pool.take(0.0) for _ in range(4)]
    assert leads[3] is None  # the plan is used up
    got = [group_key(REQUIRED_ONLY, dict(lead.attributes)) for lead in leads if lead]
    assert got == [ES, ES, EN]
    assert int(leads[0].id.split("L")[1]) < int(leads[1].id.split("L")[1])  # type: ignore[union-attr]
    pool.plan = None
    buffered = pool.take(0.0)  # the English leads passed over come first, in order
    assert buffered is not None
    assert group_key(REQUIRED_ONLY, dict(buffered.attributes)) == EN


def test_a_claim_by_group_hands_the_groups_out_in_turn() -> None:
    assert interleave([(EN, 2), (ES, 1)]) == [EN, ES, EN]
    assert interleave([(EN, 1), (ES, 0)]) == [EN]


def test_agents_get_the_population_shares_of_languages() -> None:
    population = Population(spanish_agents=0.2, bilingual_agents=0.1)
    profiles: list[AgentProfile] = [population.agent_profile(f"a{i}", i, 10) for i in range(10)]
    languages = [tuple(sorted(p.values("language"))) for p in profiles]
    assert languages.count(("es",)) == 2
    assert languages.count(("en", "es")) == 1
    assert languages.count(("en",)) == 7


def test_the_command_prints_a_row_per_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--agents", "4", "--hours", "0.1", "--modes", "unmatched,preferred"]) == 0
    out = capsys.readouterr().out
    assert "| unmatched |" in out
    assert "| preferred |" in out
    assert set(MODES) == {"unmatched", "required", "preferred"}


def test_leads_passed_over_by_a_plan_stay_available_in_a_finite_pool() -> None:
    pool = AttributedLeadPool("sim", "UTC", 10, 0.0, Population(spanish_leads=0.5),
                              REQUIRED_ONLY, seed_base=1)
    pool.plan = [ES]
    assert pool.take(0.0) is not None
    assert pool.available(0.0) == 9
    counts = pool.available_by_group(0.0, [EN, ES])
    assert counts[EN] + counts[ES] == 9
