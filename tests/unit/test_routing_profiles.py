"""Agent profiles: the profiles file parses into profiles; bad input is refused with a path."""

from __future__ import annotations

import pytest

from dialer.errors import DialerError
from dialer.routing.profiles import ProfileError, parse_profiles, parse_profiles_yaml

GOOD = """
skills: [billing, sales, tech]
agents:
  - id: a101
    name: Ana Ruiz
    skills: {billing: 7, sales: 3}
    attributes:
      language: [ES, en]
      region: South
      age_band: "35-44"
      tags: [veteran, nurse]
      shift: evening
    campaigns: [spring-drive]
    queues: [billing]
  - id: b202
    skills: {tech: 10}
    attributes: {language: en}
"""


def base(**agent: object) -> dict[str, object]:
    entry: dict[str, object] = {"id": "a1", "skills": {"billing": 5}}
    entry.update(agent)
    return {"skills": ["billing", "sales"], "agents": [entry]}


def problems(data: object) -> tuple[str, ...]:
    with pytest.raises(ProfileError) as info:
        parse_profiles(data, "agents.yaml")
    return info.value.problems


def test_given_a_good_file_then_every_field_is_read_and_values_are_case_folded() -> None:
    profiles = parse_profiles_yaml(GOOD)
    ana = profiles.agents["a101"]
    assert ana.name == "Ana Ruiz"
    assert ana.skill("billing") == 7
    assert ana.skill("tech") == 0
    assert ana.values("language") == {"es", "en"}
    assert ana.values("region") == {"south"}
    assert ana.age_band == "35-44"
    assert ana.values("tags") == {"veteran", "nurse"}
    assert ana.values("shift") == {"evening"}
    assert ana.campaigns == {"spring-drive"}
    assert ana.queues == {"billing"}
    bob = profiles.agents["b202"]
    assert bob.name == "b202"  # the id when no name is given
    assert bob.values("language") == {"en"}  # a single string is a list of one
    assert profiles.skills == {"billing", "sales", "tech"}
    assert [p.id for p in profiles.for_campaign("spring-drive")] == ["a101"]
    assert [p.id for p in profiles.for_queue("billing")] == ["a101"]


def test_given_an_unknown_skill_then_the_error_names_the_path_and_the_declared_skills() -> None:
    found = problems(base(skills={"biling": 5}))
    assert found == ("agents[0].skills.biling: unknown skill 'biling' (declared: billing, sales)",)


@pytest.mark.parametrize(("level", "expected"), [
    (0, "skill level 0 is outside 1..10"),
    (11, "skill level 11 is outside 1..10"),
    ("5", "a skill level is an integer 1..10, got '5'"),
    (True, "a skill level is an integer 1..10, got True"),
    (2.5, "a skill level is an integer 1..10, got 2.5"),
])
def test_given_a_bad_skill_level_then_it_is_refused(level: object, expected: str) -> None:
    assert problems(base(skills={"billing": level})) == (f"agents[0].skills.billing: {expected}",)


def test_given_wrong_types_then_each_problem_is_reported_at_once() -> None:
    found = problems(base(attributes={"language": 3, "region": ["a", "b"], "tags": "ok"},
                          campaigns="spring", queues=[""], skills=[1]))
    assert "agents[0].attributes.language: expected a list of strings, got an integer" in found
    assert "agents[0].attributes.region: expected a non-empty string, got ['a', 'b']" in found
    assert "agents[0].campaigns: expected a list of strings, got a string" in found
    assert "agents[0].queues[0]: expected a non-empty string, got ''" in found
    assert "agents[0].skills: expected a mapping of skill to level, got a list" in found
    assert len(found) == 5  # tags: "ok" is a list of one tag, which is fine


def test_given_a_duplicate_id_or_a_bad_id_then_the_file_is_refused() -> None:
    data = {"skills": ["billing"], "agents": [{"id": "a1"}, {"id": "a1"}, {"id": "no spaces"}]}
    assert problems(data) == (
        "agents[1].id: duplicate agent id 'a1'",
        "agents[2].id: required, 1-64 of [A-Za-z0-9_.@-], got 'no spaces'",
    )


def test_given_an_age_band_not_declared_then_it_is_refused() -> None:
    found = problems(base(attributes={"age_band": "30-40"}))
    assert found[0].startswith("agents[0].attributes.age_band: unknown age band '30-40'")


def test_given_declared_age_bands_then_an_agents_band_is_checked_against_them() -> None:
    data = base(attributes={"age_band": "young"})
    data["age_bands"] = ["young", "old"]
    assert parse_profiles(data).agents["a1"].age_band == "young"


def test_given_unknown_fields_or_no_skill_list_then_they_are_named() -> None:
    assert problems({"agents": [{"id": "a1", "skils": {}}], "extra": 1}) == (
        "extra: unknown field (expected one of age_bands, agents, skills)",
        "skills: required: the list of every skill agents and queues may name",
        "agents[0].skils: unknown field (expected one of attributes, campaigns, id, name, "
        "queues, skills)",
    )


def test_given_not_a_mapping_or_bad_yaml_then_a_clear_error_with_the_source() -> None:
    with pytest.raises(ProfileError, match=r"^agents.yaml: \(top\): expected a mapping"):
        parse_profiles_yaml("- just\n- a list\n")
    with pytest.raises(ProfileError, match=r"^agents.yaml: not valid YAML"):
        parse_profiles_yaml("skills: [unclosed\n")


def test_profile_errors_are_dialer_errors_and_list_many_problems_in_the_message() -> None:
    with pytest.raises(DialerError) as info:
        parse_profiles(base(skills={"nope": 0}), "f.yaml")
    assert str(info.value).startswith("f.yaml: 2 problems:\n  agents[0].skills.nope: unknown skill")
