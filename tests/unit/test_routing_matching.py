"""Agent-lead matching: who takes an answered lead, and which leads to dial for whom."""

from __future__ import annotations

import pytest

from dialer.routing.matching import (
    NO_AGENT,
    AgentOutlook,
    LeadOption,
    MatchRules,
    Preference,
    PreferenceKind,
    RulesError,
    TagMode,
    assign_pools,
    assign_waiting,
    best_agent,
    check_attributes,
    count_groups,
    describe,
    group_key,
    parse_rules,
    pick_leads,
    plan_dials,
    score,
    select_leads,
    trim_quota,
)
from dialer.routing.profiles import AgentProfile, RoutingError, parse_profiles

LANG = MatchRules(required=("language",))
FULL = parse_rules({
    "required": ["language"],
    "preferences": [
        {"attribute": "region", "weight": 2},
        {"attribute": "age_band", "weight": 1, "kind": "age_band"},
        {"attribute": "tags", "weight": 3, "kind": "tags", "mode": "jaccard"},
    ],
})
ES = group_key(LANG, {"language": "es"})
EN = group_key(LANG, {"language": "en"})
FR = group_key(LANG, {"language": "fr"})


def agent(agent_id: str, *languages: str, region: str | None = None, age: str | None = None,
          tags: tuple[str, ...] = ()) -> AgentProfile:
    attrs = {"language": frozenset(languages), "tags": frozenset(tags)}
    if region:
        attrs["region"] = frozenset({region})
    if age:
        attrs["age_band"] = frozenset({age})
    return AgentProfile(agent_id, agent_id, attributes=attrs)


# --- routing on answer ---------------------------------------------------------------------


def test_given_a_spanish_lead_then_only_a_spanish_speaker_may_take_it() -> None:
    en, es = agent("en1", "en"), agent("es1", "es")
    # The English speaker has waited longer, and still does not get the call.
    assert best_agent(LANG, {"language": "es"}, [en, es], {"en1": 10.0, "es1": 50.0}) is es
    assert best_agent(LANG, {"language": "es"}, [en], {"en1": 10.0}) is None
    assert score(LANG, {"language": "es"}, en) is None
    assert score(LANG, {"language": "es"}, es) == 0.0


def test_given_a_bilingual_agent_then_they_may_take_either_language() -> None:
    both = agent("b", "es", "en")
    assert score(LANG, {"language": "es"}, both) == 0.0
    assert score(LANG, {"language": "EN "}, both) == 0.0  # case and spaces do not matter


def test_given_a_lead_without_the_attribute_then_any_agent_unless_a_default_applies() -> None:
    en, es = agent("en1", "en"), agent("es1", "es")
    assert score(LANG, {}, es) == 0.0
    with_default = MatchRules(required=("language",), defaults=(("language", "en"),))
    assert score(with_default, {}, es) is None
    assert score(with_default, {"language": ""}, en) == 0.0


def test_given_a_lead_with_several_languages_then_an_agent_with_any_of_them_may_take_it() -> None:
    assert score(LANG, {"language": "es;fr"}, agent("f", "fr")) == 0.0
    assert score(LANG, {"language": "es|fr"}, agent("d", "de")) is None


def test_the_best_matching_ready_agent_takes_the_call_before_the_longest_idle() -> None:
    lead = {"language": "en", "region": "south", "age_band": "35-44", "tags": "veteran;nurse"}
    near = agent("near", "en", region="south", age="45-54", tags=("veteran",))
    idle = agent("idle", "en", region="north", age="18-24")
    assert best_agent(FULL, lead, [idle, near], {"idle": 0.0, "near": 100.0}) is near


def test_given_equal_scores_then_the_longest_idle_agent_then_the_smaller_id() -> None:
    a, b, c = agent("a", "en"), agent("b", "en"), agent("c", "en")
    assert best_agent(FULL, {"language": "en"}, [a, b, c], {"a": 5.0, "b": 3.0, "c": 3.0}) is b
    assert best_agent(FULL, {"language": "en"}, [c, b], {"b": 3.0, "c": 3.0}) is b


def test_preference_scores_equal_tags_and_age_band_distance() -> None:
    lead = {"language": "en", "region": "South", "age_band": "35-44", "tags": "a;b;c"}
    perfect = agent("p", "en", region="south", age="35-44", tags=("a", "b", "c"))
    assert score(FULL, lead, perfect) == 6.0
    # region 0; age two bands away of six: 1 - 2/5; tags {a} of {a, b, c, d}: 1/4.
    partial = agent("q", "en", region="north", age="55-64", tags=("a", "d"))
    assert score(FULL, lead, partial) == pytest.approx(1 * 0.6 + 3 * 0.25)
    counting = MatchRules(preferences=(Preference("tags", 2.0, PreferenceKind.TAGS, TagMode.COUNT),))
    assert score(counting, lead, perfect) == 6.0  # three shared tags x weight 2
    assert score(FULL, {"language": "en"}, perfect) == 0.0  # nothing to prefer on


def test_waiting_calls_are_served_oldest_first_and_an_unservable_one_does_not_block() -> None:
    en = agent("en1", "en")
    pairs = assign_waiting(LANG, [("c1", {"language": "es"}), ("c2", {"language": "en"}),
                                  ("c3", {"language": "en"})], [en], {"en1": 0.0})
    assert pairs == [("c2", "en1")]


# --- lead selection ------------------------------------------------------------------------


def outlook(*entries: tuple[AgentProfile, float]) -> list[AgentOutlook]:
    return [AgentOutlook(p, q) for p, q in entries]


def test_given_no_logged_in_agent_for_a_group_then_its_leads_are_skipped_with_a_reason() -> None:
    leads = [LeadOption("l1", {"language": "fr"}), LeadOption("l2", {"language": "en"}),
             LeadOption("l3", {"language": "fr"})]
    chosen = select_leads(LANG, leads, outlook((agent("en1", "en"), 1.0)), 5, p_live=0.2)
    assert chosen.dial == ("l2",)
    assert chosen.skipped == (("l1", NO_AGENT), ("l3", NO_AGENT))
    assert chosen.plan.blocked == {FR}


def test_given_a_busy_compatible_agent_then_the_leads_wait_without_being_skipped() -> None:
    leads = [LeadOption("l1", {"language": "es"})]
    chosen = select_leads(LANG, leads, outlook((agent("es1", "es"), 0.0), (agent("en1", "en"), 1.0)),
                          3, p_live=0.2)
    assert chosen.dial == ()
    assert chosen.skipped == ()


def test_dials_are_split_by_the_capacity_of_the_agents_who_can_take_each_group() -> None:
    agents = [(agent(f"en{i}", "en"), 1.0) for i in range(3)] + [(agent("es0", "es"), 1.0)]
    plan = plan_dials({EN: 100, ES: 100}, outlook(*agents), 8, p_live=0.25)
    assert plan.quota == {EN: 6, ES: 2}
    assert plan.total == 8


def test_calls_in_flight_count_against_their_groups_share() -> None:
    agents = [(agent("en0", "en"), 1.0), (agent("es0", "es"), 1.0)]
    plan = plan_dials({EN: 100, ES: 100}, outlook(*agents), 4, p_live=0.25,
                      in_flight={ES: 0.5})
    assert plan.quota == {EN: 3, ES: 1}


def test_when_a_group_runs_out_of_leads_its_calls_are_not_piled_on_the_others() -> None:
    agents = [(agent("en0", "en"), 1.0), (agent("es0", "es"), 1.0)]
    plan = plan_dials({EN: 100, ES: 1}, outlook(*agents), 8, p_live=0.25)
    # Pooled load: 8 x 0.25 / 2 agents = 1 expected human per agent: 4 calls per agent.
    assert plan.quota == {EN: 4, ES: 1}


def test_agents_unlikely_to_be_free_soon_bring_proportionally_fewer_calls() -> None:
    agents = [(agent("en0", "en"), 1.0), (agent("es0", "es"), 0.5), (agent("es1", "es"), 0.5)]
    assert plan_dials({EN: 9, ES: 9}, outlook(*agents), 4, p_live=0.5).quota == {EN: 2, ES: 2}
    assert plan_dials({EN: 9, ES: 9}, outlook(*agents), 0, p_live=0.5).quota == {EN: 0, ES: 0}
    nobody_free = outlook((agent("en0", "en"), 0.0))
    assert plan_dials({EN: 9}, nobody_free, 4, p_live=0.5).total == 0


def test_a_bilingual_agent_serves_both_groups_and_the_pacers_count_is_never_exceeded() -> None:
    agents = [(agent("b", "en", "es"), 1.0)]
    assert plan_dials({EN: 9, ES: 9}, outlook(*agents), 4, p_live=0.5).quota == {EN: 2, ES: 2}
    # Shared with a group whose leads ran out, the agent's pooled load caps the other group.
    assert plan_dials({EN: 9, ES: 1}, outlook(*agents), 6, p_live=0.5).quota == {EN: 5, ES: 1}


def test_without_rules_the_first_leads_in_store_order_are_dialed() -> None:
    leads = [LeadOption(f"l{i}", {"language": "xx"}) for i in range(6)]
    chosen = select_leads(MatchRules(), leads, outlook((agent("a", "en"), 1.0)), 3, p_live=1.0)
    assert chosen.dial == ("l0", "l1", "l2")


def test_selection_keeps_the_store_order_and_handles_many_leads_and_agents() -> None:
    # Every fifth agent speaks Spanish, every tenth both; half are ready, half soon free.
    agents = [AgentOutlook(agent(f"a{i}", *(("es", "en") if i % 10 == 0 else ("es",) if i % 5 == 0
                                          else ("en",))), 1.0 if i % 2 else 0.3)
              for i in range(500)]
    langs = ("en", "es", "en", "en", "de")
    leads = [LeadOption(f"l{i}", {"language": langs[i % 5]}) for i in range(10_000)]
    chosen = select_leads(LANG, leads, agents, 300, p_live=0.15)
    assert len(chosen.dial) == 300
    assert {lead_id for lead_id, _ in chosen.skipped} == {f"l{i}" for i in range(4, 10_000, 5)}
    index = [int(x[1:]) for x in chosen.dial]
    assert index == sorted(index)
    quota = chosen.plan.quota
    assert quota[ES] > 0
    assert quota[EN] > quota[ES]


def test_describe_names_a_group_for_people() -> None:
    assert describe(ES) == "language=es"
    assert describe(group_key(LANG, {})) == "any"


@pytest.mark.parametrize(("count", "p_live", "message"), [
    (1, 0.0, "p_live: a probability in (0, 1], got 0.0"),
    (-1, 0.5, "count: must be >= 0, got -1"),
])
def test_plan_refuses_bad_numbers(count: int, p_live: float, message: str) -> None:
    with pytest.raises(RoutingError) as info:
        plan_dials({EN: 1}, [], count, p_live=p_live)
    assert info.value.problems == (message,)


def test_plan_refuses_a_probability_out_of_range() -> None:
    with pytest.raises(RoutingError, match=r"outlook\[a\].p_free: a probability in \[0, 1\]"):
        plan_dials({EN: 1}, [AgentOutlook(agent("a", "en"), 1.5)], 1, p_live=0.5)


# --- rules ---------------------------------------------------------------------------------


def test_rules_parse_with_defaults_and_every_preference_kind() -> None:
    assert FULL.required == ("language",)
    assert [p.kind for p in FULL.preferences] == [PreferenceKind.EQUAL, PreferenceKind.AGE_BAND,
                                                 PreferenceKind.TAGS]
    assert parse_rules(None) == MatchRules()
    assert parse_rules({"defaults": {"language": "en"}}).defaults == (("language", "en"),)


def test_bad_rules_are_refused_with_every_problem_and_its_path() -> None:
    with pytest.raises(RulesError) as info:
        parse_rules({"required": ["language", 3], "colour": 1, "preferences": [
            {"attribute": "region", "weight": -1},
            {"attribute": "tags", "kind": "fuzzy"},
            {"attribute": "region", "mode": "count"},
            {"attribute": "language"},
            "region",
        ]})
    assert info.value.problems == (
        "colour: unknown field (expected one of age_bands, defaults, preferences, required)",
        "required[1]: expected a name, got 3",
        "preferences[0].weight: a positive number, got -1",
        "preferences[1].kind: one of equal, tags, age_band, got 'fuzzy'",
        "preferences[2].mode: only a tags preference has a mode",
        "preferences[3].attribute: 'language' is required already; a preference on it would "
        "always score the same",
        "preferences[4]: expected a mapping with attribute and weight, got str",
    )


def test_pacing_pools_put_shared_agents_where_they_are_scarcest_for_the_leads() -> None:
    agents = [agent("en0", "en"), agent("en1", "en"), agent("en2", "en"), agent("es0", "es"),
              agent("b1", "en", "es"), agent("b2", "en", "es"), agent("fr0", "fr")]
    pools = assign_pools([EN, ES], agents, {EN: 0.5, ES: 0.5})
    assert pools == {"en0": EN, "en1": EN, "en2": EN, "es0": ES, "b1": ES, "b2": ES}
    pools = assign_pools([EN, ES], agents, {EN: 0.9, ES: 0.1})
    assert pools["b1"] == EN
    assert pools["b2"] == EN


# ------------------------------------------------------------------ claiming by group
_LANG = parse_rules({"required": ["language"]})
_ES = (("language", ("es",)),)
_EN = (("language", ("en",)),)
_SCAN = [("L1", {"language": "en"}), ("L2", {"language": "ES"}), ("L3", {}),
         ("L4", {"language": "en"}), ("L5", {"language": "es"}), ("L6", {"language": "en"})]


def test_scanned_leads_are_counted_per_group() -> None:
    assert count_groups(_LANG, _SCAN) == {_EN: 3, _ES: 2, (("language", ()),): 1}


def test_picking_takes_each_groups_first_leads_in_store_order_plus_those_to_give_back() -> None:
    assert pick_leads(_LANG, _SCAN, {_ES: 1, _EN: 2}) == ["L1", "L2", "L4"]
    assert pick_leads(_LANG, _SCAN, {_EN: 1}, {_ES: 5}) == ["L1", "L2", "L5"]
    assert pick_leads(_LANG, _SCAN, {_EN: 0}) == []


def test_a_quota_trimmed_to_fewer_calls_takes_the_groups_in_turn() -> None:
    assert trim_quota({_EN: 3, _ES: 1}, 3) == {_EN: 2, _ES: 1}
    assert trim_quota({_EN: 1}, 5) == {_EN: 1}
    assert trim_quota({_EN: 2}, 0) == {}


def test_rules_naming_attributes_no_agent_has_are_refused_with_each_path() -> None:
    rules = parse_rules({"required": ["langauge"], "defaults": {"regoin": "x"},
                         "preferences": [{"attribute": "tags"}, {"attribute": "hobby"}]})
    with pytest.raises(RulesError) as err:
        check_attributes(rules, {"language", "tags"})
    assert err.value.problems == (
        "required[0]: unknown attribute 'langauge' (agents' profiles have: language, tags)",
        "preferences[1].attribute: unknown attribute 'hobby' (agents' profiles have: "
        "language, tags)",
        "defaults.regoin: unknown attribute 'regoin' (agents' profiles have: language, tags)")
    check_attributes(parse_rules({"required": ["language"]}), {"language"})  # no error


def test_a_profiles_file_lists_the_attributes_its_agents_have() -> None:
    profiles = parse_profiles({"skills": [], "agents": [
        {"id": "a", "attributes": {"language": ["es"], "region": "south"}},
        {"id": "b", "attributes": {"tags": ["nurse"]}}]})
    assert profiles.attribute_names == {"language", "region", "tags"}
