"""Agent profiles: who an agent is for routing (skills with levels, attributes, campaigns and
queues they serve), parsed and validated from a profiles file. Pure: a dict (or YAML text)
in, frozen records out; no file or clock access.

The profiles file (``agents.yaml``)
-----------------------------------
::

    skills: [billing, sales, tech]          # every skill an agent or queue may name (required)
    age_bands: ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]   # optional; this order
    agents:
      - id: a101                            # required, unique, [A-Za-z0-9_.@-], 1-64 chars
        name: Ana Ruiz                      # optional; defaults to the id
        skills: {billing: 7, sales: 3}      # skill -> level, an integer 1..10 (10 = expert)
        attributes:                         # all optional
          language: [es, en]                # list (a single string is taken as a list of one)
          region: south                     # a string
          age_band: "35-44"                 # one of age_bands
          tags: [veteran, nurse]            # free tags (shared-background matching)
          shift: evening                    # any other name: a string or a list of strings
        campaigns: [spring-drive]           # campaigns whose calls the agent may take
        queues: [billing]                   # inbound queues the agent serves

Attribute values are compared case-insensitively (they are stored case-folded and stripped),
so ``ES`` in a lead file matches ``es`` here. An agent attribute is a *set* of values: an
agent "has" a lead's value when it is one of them (a bilingual agent has language ``es`` and
``en``).

Every problem in the file is reported, not only the first, as one `ProfileError` whose lines
each name the field path, e.g. ``agents[2].skills.biling: unknown skill 'biling' (declared:
billing, sales, tech)``; nothing is returned when anything is wrong, so a bad file changes
nothing (the previous profiles stay in force).

Entry points: `parse_profiles(data)` for an already-decoded mapping (the API, a Redis copy),
`parse_profiles_yaml(text, source)` for the file's text (the caller reads the file).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from dialer.errors import DialerError

MIN_LEVEL = 1
MAX_LEVEL = 10
DEFAULT_AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
#: Attributes that hold exactly one value; any other (language, tags, free names) holds a list
#: of strings, a single string being a list of one.
SCALAR_ATTRIBUTES = frozenset({"region", "age_band"})

_ID = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_AGENT_KEYS = frozenset({"id", "name", "skills", "attributes", "campaigns", "queues"})
_TOP_KEYS = frozenset({"skills", "age_bands", "agents"})


class RoutingError(DialerError):
    """Bad routing input (a profile, match rules, a queue entry) or a misused routing API.
    `problems` holds one line per problem, each starting with the field path."""

    def __init__(self, problems: Iterable[str], source: str = "") -> None:
        self.problems = tuple(problems)
        self.source = source
        head = f"{source}: " if source else ""
        if len(self.problems) == 1:
            text = head + self.problems[0]
        else:
            text = head + f"{len(self.problems)} problems:\n  " + "\n  ".join(self.problems)
        super().__init__(text)


class ProfileError(RoutingError):
    """The profiles file (or one profile) is invalid."""


def norm(value: str) -> str:
    """How attribute values are compared: case-folded, surrounding space removed."""
    return value.strip().casefold()


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """One agent's routing profile. `attributes` maps a name to the agent's set of values
    (normalised with `norm`). Mapping fields make it unhashable: key profiles by `id`."""

    id: str
    name: str
    skills: Mapping[str, int] = field(default_factory=dict)
    attributes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    campaigns: frozenset[str] = frozenset()
    queues: frozenset[str] = frozenset()

    def skill(self, name: str) -> int:
        """The agent's level in `name`, 0 if they do not have it."""
        return self.skills.get(name, 0)

    def values(self, attribute: str) -> frozenset[str]:
        return self.attributes.get(attribute, frozenset())

    @property
    def age_band(self) -> str | None:
        bands = self.attributes.get("age_band")
        return next(iter(bands)) if bands else None


@dataclass(frozen=True, slots=True)
class ProfileSet:
    """A validated profiles file: the declared skills and age bands, and the agents by id."""

    skills: frozenset[str]
    age_bands: tuple[str, ...]
    agents: Mapping[str, AgentProfile]

    def get(self, agent_id: str) -> AgentProfile | None:
        return self.agents.get(agent_id)

    def for_campaign(self, campaign_id: str) -> list[AgentProfile]:
        return [p for p in self.agents.values() if campaign_id in p.campaigns]

    def for_queue(self, queue: str) -> list[AgentProfile]:
        return [p for p in self.agents.values() if queue in p.queues]

    @property
    def attribute_names(self) -> frozenset[str]:
        """Every attribute some agent has (what a campaign's matching rules may name)."""
        return frozenset(name for p in self.agents.values() for name in p.attributes)


# ------------------------------------------------------------------------------- parsing
def _type_name(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "nothing"}.get(type(value),
                                                                             type(value).__name__)


def _strings(value: object, path: str, problems: list[str], *, allow_scalar: bool) -> list[str]:
    if isinstance(value, str) and allow_scalar:
        value = [value]
    if not isinstance(value, list):
        problems.append(f"{path}: expected a list of strings, got {_type_name(value)}")
        return []
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            problems.append(f"{path}[{i}]: expected a non-empty string, got {item!r}")
        else:
            out.append(item.strip())
    return out


def parse_skill_level(value: object, path: str, problems: list[str]) -> int | None:
    """A skill level: an integer MIN_LEVEL..MAX_LEVEL (booleans are not levels)."""
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"{path}: a skill level is an integer {MIN_LEVEL}..{MAX_LEVEL}, "
                        f"got {value!r}")
        return None
    if not MIN_LEVEL <= value <= MAX_LEVEL:
        problems.append(f"{path}: skill level {value} is outside {MIN_LEVEL}..{MAX_LEVEL}")
        return None
    return value


def check_skill(name: object, declared: frozenset[str], path: str, problems: list[str]) -> bool:
    if not isinstance(name, str):
        problems.append(f"{path}: a skill name is a string, got {name!r}")
        return False
    if name not in declared:
        known = ", ".join(sorted(declared)) or "none"
        problems.append(f"{path}: unknown skill {name!r} (declared: {known})")
        return False
    return True


def parse_profile(data: object, path: str, skills: frozenset[str], age_bands: tuple[str, ...],
                  problems: list[str]) -> AgentProfile | None:
    """One agent's entry; problems are appended (with `path` in front), None if any."""
    before = len(problems)
    if not isinstance(data, dict):
        problems.append(f"{path}: expected a mapping, got {_type_name(data)}")
        return None
    for key in sorted(set(map(str, data)) - _AGENT_KEYS):
        problems.append(f"{path}.{key}: unknown field (expected one of "
                        f"{', '.join(sorted(_AGENT_KEYS))})")
    agent_id = data.get("id")
    if not isinstance(agent_id, str) or not _ID.fullmatch(agent_id):
        problems.append(f"{path}.id: required, 1-64 of [A-Za-z0-9_.@-], got {agent_id!r}")
        agent_id = None
    name = data.get("name", agent_id)
    if name is not None and not isinstance(name, str):
        problems.append(f"{path}.name: expected a string, got {_type_name(name)}")
    levels: dict[str, int] = {}
    raw_skills = data.get("skills", {})
    if raw_skills is None:
        raw_skills = {}
    if not isinstance(raw_skills, dict):
        problems.append(f"{path}.skills: expected a mapping of skill to level, "
                        f"got {_type_name(raw_skills)}")
    else:
        for skill, level in raw_skills.items():
            where = f"{path}.skills.{skill}"
            ok = check_skill(skill, skills, where, problems)
            parsed = parse_skill_level(level, where, problems)
            if ok and parsed is not None:
                levels[skill] = parsed
    attributes = _parse_attributes(data.get("attributes", {}), f"{path}.attributes", age_bands,
                                   problems)
    lists = {}
    for key in ("campaigns", "queues"):
        lists[key] = frozenset(_strings(data.get(key, []), f"{path}.{key}", problems,
                                        allow_scalar=False))
    if len(problems) > before or agent_id is None:
        return None
    return AgentProfile(id=agent_id, name=name if isinstance(name, str) else agent_id,
                        skills=levels, attributes=attributes, campaigns=lists["campaigns"],
                        queues=lists["queues"])


def _parse_attributes(data: object, path: str, age_bands: tuple[str, ...],
                      problems: list[str]) -> dict[str, frozenset[str]]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(f"{path}: expected a mapping, got {_type_name(data)}")
        return {}
    out: dict[str, frozenset[str]] = {}
    for raw_name, value in data.items():
        name = str(raw_name)
        where = f"{path}.{name}"
        if not _NAME.fullmatch(name):
            problems.append(f"{where}: an attribute name is a word ([A-Za-z_][A-Za-z0-9_-]*)")
            continue
        if name in SCALAR_ATTRIBUTES:
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{where}: expected a non-empty string, got {value!r}")
                continue
            values = [value]
        else:
            values = _strings(value, where, problems, allow_scalar=True)
        if name == "age_band":
            bands = {norm(b) for b in age_bands}
            if norm(values[0]) not in bands:
                problems.append(f"{where}: unknown age band {values[0]!r} "
                                f"(declared: {', '.join(age_bands)})")
                continue
        out[name] = frozenset(norm(v) for v in values)
    return out


def parse_profiles(data: object, source: str = "") -> ProfileSet:
    """A whole profiles file, already decoded. Raises `ProfileError` listing every problem."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ProfileError([f"(top): expected a mapping with skills and agents, "
                            f"got {_type_name(data)}"], source)
    for key in sorted(set(map(str, data)) - _TOP_KEYS):
        problems.append(f"{key}: unknown field (expected one of {', '.join(sorted(_TOP_KEYS))})")
    if "skills" not in data:
        problems.append("skills: required: the list of every skill agents and queues may name")
    skill_names = _strings(data.get("skills", []), "skills", problems, allow_scalar=False)
    for i, skill in enumerate(skill_names):
        if not _NAME.fullmatch(skill):
            problems.append(f"skills[{i}]: a skill name is a word ([A-Za-z_][A-Za-z0-9_-]*), "
                            f"got {skill!r}")
    skills = frozenset(skill_names)
    age_bands = tuple(_strings(data.get("age_bands", list(DEFAULT_AGE_BANDS)), "age_bands",
                               problems, allow_scalar=False))
    if len({norm(b) for b in age_bands}) != len(age_bands):
        problems.append("age_bands: the bands must be distinct")
    raw_agents = data.get("agents")
    agents: dict[str, AgentProfile] = {}
    if not isinstance(raw_agents, list):
        problems.append(f"agents: expected a list of agent profiles, got {_type_name(raw_agents)}")
    else:
        for i, raw in enumerate(raw_agents):
            profile = parse_profile(raw, f"agents[{i}]", skills, age_bands, problems)
            if profile is None:
                continue
            if profile.id in agents:
                problems.append(f"agents[{i}].id: duplicate agent id {profile.id!r}")
                continue
            agents[profile.id] = profile
    if problems:
        raise ProfileError(problems, source)
    return ProfileSet(skills=skills, age_bands=age_bands, agents=agents)


def parse_profiles_yaml(text: str, source: str = "agents.yaml") -> ProfileSet:
    """The profiles file's text (YAML or JSON). The caller reads the file."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError([f"not valid YAML: {exc}"], source) from None
    return parse_profiles(data, source)
