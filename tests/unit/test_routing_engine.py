"""The campaign core with matching rules (spec.matching): routing on answer, waiting humans,
lead selection per group. Events in, commands out; no asyncio, no mocks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

import pytest

from dialer.core.campaign import (
    NO_AGENT_DELAY,
    AgentLogin,
    AgentPhoneAnswered,
    CallAnswered,
    CallEnded,
    CampaignEngine,
    ClaimLeads,
    Command,
    ConnectAgent,
    LeadsAvailable,
    LeadsClaimed,
    Originate,
    PlaySafeHarbor,
    SaveLead,
    SetRunning,
    Tick,
    TimerFired,
    connect_timer,
)
from dialer.core.model import CampaignSpec, DialMode, Lead, LeadState, SafeHarbor
from dialer.core.outcome import DialOutcome
from dialer.core.specs import SpecError, parse_campaign
from dialer.routing.matching import GroupKey, MatchRules, parse_rules
from dialer.routing.profiles import AgentProfile
from dialer.store.codec import decode, encode

C = TypeVar("C")
NOON = datetime(2026, 11, 24, 15, 0, tzinfo=UTC).timestamp()  # 10:00 in New York
LANGUAGE = parse_rules({"required": ["language"]})
PREFERRED = parse_rules({"required": ["language"],
                         "preferences": [{"attribute": "region", "weight": 2},
                                         {"attribute": "tags", "weight": 3, "kind": "tags"}]})
ES: GroupKey = (("language", ("es",)),)
EN: GroupKey = (("language", ("en",)),)


def spec(rules: MatchRules = LANGUAGE, mode: DialMode = DialMode.PROGRESSIVE) -> CampaignSpec:
    return CampaignSpec(id="camp", name="Camp", dial_mode=mode, trunk="PJSIP/{number}@carrier",
                        caller_id="Acme <+15550100>",
                        safe_harbor=SafeHarbor(seller="Acme", callback_number="+15550100"),
                        max_cps=100, matching=rules)


def profile(aid: str, language: str, region: str = "north", tags: tuple[str, ...] = ()) -> AgentProfile:
    return AgentProfile(aid, aid, attributes={"language": frozenset(language.split(",")),
                                              "region": frozenset({region}),
                                              "tags": frozenset(tags)})


def lead(n: int, language: str, **attrs: str) -> Lead:
    return Lead(id=f"L{n}", campaign_id="camp", phone=f"+1212555{n:04d}",
                timezones=("America/New_York",), state=LeadState.IN_PROGRESS,
                attributes=tuple(sorted({"language": language, **attrs}.items())))


def of(kind: type[C], commands: list[Command]) -> list[C]:
    return [c for c in commands if isinstance(c, kind)]


def engine_with(agents: list[AgentProfile], rules: MatchRules = LANGUAGE,
                groups: dict[GroupKey, int] | None = None,
                mode: DialMode = DialMode.PROGRESSIVE) -> CampaignEngine:
    engine = CampaignEngine(spec(rules, mode))
    engine.handle(SetRunning(NOON, True))
    counts = groups if groups is not None else {ES: 10, EN: 10}
    engine.handle(LeadsAvailable(NOON, sum(counts.values()), tuple(sorted(counts.items()))))
    for p in agents:
        engine.handle(AgentLogin(NOON, p.id, p))
        engine.handle(AgentPhoneAnswered(NOON, p.id))
    return engine


def answer(engine: CampaignEngine, the_lead: Lead, at: float = NOON + 5) -> list[Command]:
    cid = f"call-{the_lead.id}"
    assert of(Originate, engine.handle(LeadsClaimed(at - 3, 1, ((the_lead, False, cid),))))
    return engine.handle(CallAnswered(at, cid))


def test_given_a_spanish_lead_then_only_the_spanish_speaker_takes_it_though_another_waited_longer() -> None:
    engine = engine_with([profile("en-1", "en"), profile("es-1", "es")])
    # Both leads are placed (one claim of two) before either answers.
    out = engine.handle(LeadsClaimed(NOON + 1, 2, ((lead(1, "es"), False, "c1"),
                                                   (lead(2, "en"), False, "c2"))))
    assert len(of(Originate, out)) == 2
    (connect,) = of(ConnectAgent, engine.handle(CallAnswered(NOON + 5, "c1")))
    assert connect.agent_id == "es-1"
    (connect,) = of(ConnectAgent, engine.handle(CallAnswered(NOON + 6, "c2")))
    assert connect.agent_id == "en-1"


def test_given_no_compatible_agent_ready_the_human_waits_then_safe_harbor() -> None:
    engine = engine_with([profile("en-1", "en"), profile("es-1", "es")])
    engine.handle(LeadsClaimed(NOON + 1, 2, ((lead(1, "es"), False, "c1"),
                                             (lead(2, "es"), False, "c2"))))
    assert of(ConnectAgent, engine.handle(CallAnswered(NOON + 5, "c1")))[0].agent_id == "es-1"
    out = engine.handle(CallAnswered(NOON + 6, "c2"))
    assert of(ConnectAgent, out) == []  # en-1 is ready but may not take a Spanish lead
    assert engine.waiting == ["c2"]
    out = engine.handle(TimerFired(NOON + 8, connect_timer("c2")))
    assert of(PlaySafeHarbor, out) == [PlaySafeHarbor("c2")]
    assert engine.agents["en-1"].state.value == "READY"


def test_a_waiting_spanish_lead_does_not_hold_up_an_english_one_behind_it() -> None:
    engine = engine_with([profile("es-1", "es"), profile("en-1", "en")])
    engine.handle(LeadsClaimed(NOON + 1, 3, ((lead(1, "es"), False, "c1"),
                                             (lead(2, "es"), False, "c2"),
                                             (lead(3, "en"), False, "c3"))))
    engine.handle(CallAnswered(NOON + 5, "c1"))  # es-1 takes it
    # c2 (es) waits for es-1; c3 (en), answered after it, goes to en-1 at once.
    assert of(ConnectAgent, engine.handle(CallAnswered(NOON + 5.5, "c2"))) == []
    (connect,) = of(ConnectAgent, engine.handle(CallAnswered(NOON + 6, "c3")))
    assert connect == ConnectAgent("c3", "en-1", False)
    # When es-1 is free again (c1 hung up before the bridge), the waiting Spanish lead is
    # theirs, within its 2 seconds.
    out = engine.handle(CallEnded(NOON + 6.5, "c1", DialOutcome.ANSWERED, 16))
    assert of(ConnectAgent, out) == [ConnectAgent("c2", "es-1", False)]


def test_an_answered_lead_goes_to_the_ready_agent_with_the_best_preference_score() -> None:
    agents = [profile("en-north", "en", "north"),  # ready longest
              profile("en-south-teacher", "en", "south", ("teacher",)),
              profile("en-south", "en", "south")]
    engine = engine_with(agents, PREFERRED)
    out = answer(engine, lead(1, "en", region="south", tags="teacher"))
    assert of(ConnectAgent, out)[0].agent_id == "en-south-teacher"


def test_equal_scores_go_to_the_agent_ready_longest() -> None:
    engine = engine_with([profile("a", "en", "south"), profile("b", "en", "south")], PREFERRED)
    assert of(ConnectAgent, answer(engine, lead(1, "en", region="south")))[0].agent_id == "a"


def test_without_matching_rules_the_longest_ready_agent_takes_any_lead() -> None:
    engine = engine_with([profile("en-1", "en"), profile("es-1", "es")], MatchRules())
    assert of(ConnectAgent, answer(engine, lead(1, "es")))[0].agent_id == "en-1"
    assert engine.matching is None


def test_the_pacer_claims_only_for_groups_with_a_ready_agent() -> None:
    engine = engine_with([profile("es-1", "es")])
    (claim,) = of(ClaimLeads, engine.handle(Tick(NOON + 1)))
    assert claim.count == 1
    assert claim.groups == ((ES, 1),)
    # English leads: nobody logged in may take them; some are claimed to be given back.
    assert claim.release == ((EN, 10),)


def test_each_group_is_paced_with_its_own_agents() -> None:
    engine = engine_with([profile("es-1", "es"), profile("en-1", "en"), profile("en-2", "en")])
    (claim,) = of(ClaimLeads, engine.handle(Tick(NOON + 1)))
    assert dict(claim.groups) == {ES: 1, EN: 2}  # progressive: one call per ready agent
    assert claim.count == 3
    assert claim.release == ()


def test_a_group_without_leads_is_not_claimed() -> None:
    engine = engine_with([profile("es-1", "es"), profile("en-1", "en")], groups={EN: 5})
    (claim,) = of(ClaimLeads, engine.handle(Tick(NOON + 1)))
    assert claim.groups == ((EN, 1),)


def test_a_claimed_lead_nobody_may_take_is_given_back_with_a_delay_and_not_dialed() -> None:
    engine = engine_with([profile("en-1", "en")])
    out = engine.handle(LeadsClaimed(NOON + 1, 0, ((lead(1, "es"), False, "c1"),)))
    assert of(Originate, out) == []
    (saved,) = of(SaveLead, out)
    assert saved.lead.state is LeadState.READY
    assert saved.lead.next_at == NOON + 1 + NO_AGENT_DELAY


def test_a_lead_claimed_to_be_given_back_is_not_dialed_beyond_the_paced_count() -> None:
    engine = engine_with([profile("en-1", "en")])
    out = engine.handle(LeadsClaimed(NOON + 1, 1, ((lead(1, "en"), False, "c1"),
                                                   (lead(2, "en"), False, "c2"))))
    assert len(of(Originate, out)) == 1
    (saved,) = of(SaveLead, out)
    assert saved.lead.id == "L2"
    assert saved.lead.next_at == 0.0  # back as it was: dialed in turn


def test_leads_nobody_may_take_are_given_back_once_per_count_refresh() -> None:
    engine = engine_with([profile("en-1", "en")], groups={ES: 3, EN: 5})
    first = of(ClaimLeads, engine.handle(Tick(NOON + 1)))
    assert first[0].release == ((ES, 3),)
    engine.handle(LeadsClaimed(NOON + 1.01, first[0].count, ()))
    assert all(c.release == () for c in of(ClaimLeads, engine.handle(Tick(NOON + 1.5))))


def test_predictive_never_dials_for_a_group_whose_pool_has_nobody_ready() -> None:
    engine = engine_with([profile("es-1", "es"), profile("en-1", "en")],
                         mode=DialMode.PREDICTIVE)
    engine.handle(LeadsClaimed(NOON + 1, 1, ((lead(1, "es"), False, "c1"),)))
    engine.handle(CallAnswered(NOON + 3, "c1"))  # es-1 is now busy
    for claim in of(ClaimLeads, engine.handle(Tick(NOON + 4))):
        assert ES not in dict(claim.groups)


# --------------------------------------------------------------------------- the spec field
BASE = {"id": "c", "trunk": "PJSIP/{number}@carrier", "caller_id": "A",
        "safe_harbor": {"seller": "A", "callback_number": "+15550100"}}


def test_a_campaign_without_matching_has_no_rules() -> None:
    assert parse_campaign(BASE).matching == MatchRules()
    assert CampaignEngine(parse_campaign(BASE)).matching is None


@pytest.mark.parametrize(("matching", "message"), [
    ({"required": "language"}, "matching: required: expected a list of names, got str"),
    ({"require": ["language"]}, "matching: require: unknown field"),
    ({"preferences": [{"attribute": "region", "weight": -1}]},
     "matching: preferences[0].weight: a positive number, got -1"),
    ("language", "matching: (top): expected a mapping, got str"),
])
def test_malformed_matching_rules_are_refused_with_the_field(matching: object, message: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_campaign({**BASE, "matching": matching})
    assert str(err.value).startswith(message)


def test_an_attribute_no_agent_has_is_refused_when_the_profiles_are_known() -> None:
    data = {**BASE, "matching": {"required": ["langauge"]}}
    with pytest.raises(SpecError, match=r"required\[0\]: unknown attribute 'langauge' "
                                        r"\(agents' profiles have: language, region\)"):
        parse_campaign(data, attributes=frozenset({"language", "region"}))
    assert parse_campaign(data).matching.required == ("langauge",)  # no profiles: unchecked


def test_matching_rules_survive_the_store_codec() -> None:
    spec_ = parse_campaign({**BASE, "matching": {
        "required": ["language"], "defaults": {"language": "en"},
        "preferences": [{"attribute": "tags", "weight": 3, "kind": "tags", "mode": "count"}]}})
    assert decode(CampaignSpec, "k", encode(spec_)) == spec_
    assert decode(CampaignSpec, "k", encode(replace(spec_, matching=MatchRules()))).matching \
        == MatchRules()


def test_preview_reserves_a_lead_for_a_ready_agent_who_may_take_it() -> None:
    engine = engine_with([profile("en-1", "en"), profile("es-1", "es")], mode=DialMode.PREVIEW)
    engine.handle(LeadsClaimed(NOON + 1, 1, ((lead(1, "es"), False, "c1"),)))
    assert engine.preview_of("es-1") is not None
    assert engine.preview_of("en-1") is None
