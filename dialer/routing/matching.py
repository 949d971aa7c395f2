"""Agent-lead matching for outbound campaigns: which agent takes an answered lead, and which
leads to dial for the agents who are or will soon be free. Pure: rules, attributes,
probabilities and `now`-free inputs in, choices out.

Theory of operation
-------------------
A campaign's `MatchRules` has two parts:

* *required* attributes (e.g. ``language``): a lead may only go to an agent who has the
  lead's value. A lead without a value (and no default for it) has no requirement there.
* weighted *preferences*: ``equal`` (1 when the agent has the lead's value, e.g. region),
  ``tags`` (shared-background tags: Jaccard overlap in [0, 1], or the count of shared tags),
  ``age_band`` (1 − band distance / (bands − 1), so neighbouring bands still score).

``score(rules, lead, agent)`` is None when a required attribute fails, otherwise the sum of
weight × similarity. On answer, `best_agent` picks the highest score among ready agents, ties
to the one idle longest (then the smaller id, to be deterministic).

*Lead selection (predictive).* The pacer decides how many calls to place (`count`), from
pooled counts. Matching splits that count between *groups* — leads with the same values of
the required attributes (``(("language", ("es",)),)``) — so that each group's expected live
answers stay in line with the agents who can take them. `AgentOutlook` gives each logged-in
agent's probability of being free within the look-ahead horizon (1 for a ready agent, the
pacer model's ``p_free`` for one on a call or in wrap-up, 0 for one paused). For each group
``g``: capacity ``c_g`` = Σ p_free of compatible agents, demand ``d_g`` = expected live
answers still to come from its calls in flight (plus humans waiting). Dials are handed out one
at a time to the least-loaded group (``d_g / c_g``), each adding ``p_live`` to its demand,
until `count` is used, the groups run out of leads, or the least-loaded group has reached the
pooled load ``L* = (Σ d + count·p_live) / C`` (C: the distinct agents' total p_free). So a
group is never dialed harder than the pool as a whole would be: when one group runs out of
leads, the pacer's other calls are *not* piled onto the rest (fewer calls, not abandons).
A group that no logged-in agent can take is not dialed; its leads are reported with a reason.
Preferences play no part in lead selection (only in the router, on answer).

*Per-group pacing* is the better use of the pacer (measured in dialer.sim.matching): a pacer
that prices abandon risk on the pooled agents under-estimates it for partitioned groups. With
`assign_pools` every agent paces with one group (a shared agent with the group where agents
are scarcest for its share of leads); the engine (`dialer.core.campaign`, spec field
``matching:``) asks the pacer once per group, with that group's agents and calls, and claims
each group's answer: the store lists the first dialable leads in claim order with their
required attributes (`Store.scan_dialable`), `pick_leads` takes each group's first ones and
`Store.claim_listed` claims them. Groups no logged-in agent can take are not dialed: some of
their leads are claimed and given back with a delay (`NO_AGENT`). `plan_dials` remains for
pacers that can only be asked once.

Cost: grouping is one pass over the leads; compatibility is groups × agents; the allocation
is a heap over groups — about 15 ms for 10 000 leads and 500 agents in CPython (each
distinct raw value is parsed once).

Rules file shape (a campaign's ``matching:`` block), parsed by `parse_rules`::

    matching:
      required: [language]            # attribute names
      defaults: {language: en}        # a lead without the attribute is taken to have this
      preferences:
        - {attribute: region, weight: 2}                       # kind: equal (the default)
        - {attribute: age_band, weight: 1, kind: age_band}
        - {attribute: tags, weight: 3, kind: tags, mode: jaccard}   # or mode: count
      age_bands: ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]   # optional

Lead attribute values are split on ``;``, ``|`` and ``,`` into sets (``"veteran;nurse"``) and
compared case-insensitively (`dialer.routing.profiles.norm`). A lead with several values of a
required attribute (``language: "es;en"``) may go to an agent with any one of them.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from dialer.routing.profiles import DEFAULT_AGE_BANDS, AgentProfile, RoutingError, norm


class RulesError(RoutingError):
    """A campaign's matching rules are invalid."""


class PreferenceKind(StrEnum):
    EQUAL = "equal"
    TAGS = "tags"
    AGE_BAND = "age_band"


class TagMode(StrEnum):
    JACCARD = "jaccard"
    COUNT = "count"


@dataclass(frozen=True, slots=True)
class Preference:
    attribute: str
    weight: float
    kind: PreferenceKind = PreferenceKind.EQUAL
    mode: TagMode = TagMode.JACCARD  # tags only


@dataclass(frozen=True, slots=True)
class MatchRules:
    required: tuple[str, ...] = ()
    preferences: tuple[Preference, ...] = ()
    # (attribute, value) pairs, sorted: a tuple, not a dict, so that rules are hashable and
    # stored with the campaign spec by the store's codec as they are.
    defaults: tuple[tuple[str, str], ...] = ()
    age_bands: tuple[str, ...] = DEFAULT_AGE_BANDS

    @property
    def unconstrained(self) -> bool:
        return not self.required and not self.preferences

    def default(self, attribute: str) -> str | None:
        """The value a lead without `attribute` is taken to have, if any."""
        for name, value in self.defaults:
            if name == attribute:
                return value
        return None

    @property
    def attributes(self) -> tuple[str, ...]:
        """Every attribute the rules name (required, then preferences, then defaults)."""
        names = [*self.required, *(p.attribute for p in self.preferences),
                 *(name for name, _ in self.defaults)]
        return tuple(dict.fromkeys(names))


#: A lead's group: the (normalised) values of each required attribute, in rule order. An empty
#: value tuple means "no requirement" for that attribute.
GroupKey = tuple[tuple[str, tuple[str, ...]], ...]
LeadAttrs = Mapping[str, str]

_SPLIT = re.compile(r"[;|,]")
_RULE_KEYS = frozenset({"required", "preferences", "defaults", "age_bands"})
_PREF_KEYS = frozenset({"attribute", "weight", "kind", "mode"})


# ------------------------------------------------------------------------------ parsing
def parse_rules(data: object, source: str = "matching") -> MatchRules:
    """A campaign's ``matching:`` block (None or {} = no matching). Raises `RulesError` with
    every problem, each with its field path."""
    if data is None:
        return MatchRules()
    problems: list[str] = []
    if not isinstance(data, dict):
        raise RulesError([f"(top): expected a mapping, got {type(data).__name__}"], source)
    for key in sorted(set(map(str, data)) - _RULE_KEYS):
        problems.append(f"{key}: unknown field (expected one of {', '.join(sorted(_RULE_KEYS))})")
    required = _names(data.get("required", []), "required", problems)
    if len(set(required)) != len(required):
        problems.append("required: an attribute is listed twice")
    defaults: dict[str, str] = {}
    raw_defaults = data.get("defaults", {})
    if not isinstance(raw_defaults, dict):
        problems.append(f"defaults: expected a mapping, got {type(raw_defaults).__name__}")
    else:
        for name, value in raw_defaults.items():
            if not isinstance(value, str) or not value.strip():
                problems.append(f"defaults.{name}: expected a non-empty string, got {value!r}")
            else:
                defaults[str(name)] = value
    bands_raw = data.get("age_bands", list(DEFAULT_AGE_BANDS))
    bands = tuple(_names(bands_raw, "age_bands", problems, word=False))
    prefs: list[Preference] = []
    raw_prefs = data.get("preferences", [])
    if not isinstance(raw_prefs, list):
        problems.append(f"preferences: expected a list, got {type(raw_prefs).__name__}")
        raw_prefs = []
    for i, raw in enumerate(raw_prefs):
        pref = _preference(raw, f"preferences[{i}]", problems)
        if pref is not None:
            if pref.attribute in required:
                problems.append(f"preferences[{i}].attribute: {pref.attribute!r} is required "
                                "already; a preference on it would always score the same")
            prefs.append(pref)
    if problems:
        raise RulesError(problems, source)
    return MatchRules(tuple(required), tuple(prefs), tuple(sorted(defaults.items())), bands)


def check_attributes(rules: MatchRules, known: Iterable[str], source: str = "matching") -> None:
    """Every attribute the rules name must be one that agents' profiles have (`known`, e.g.
    `ProfileSet.attribute_names`): a misspelt name (``langauge``) would otherwise make every
    lead "without requirement". Raises `RulesError` naming each unknown attribute."""
    have = frozenset(known)
    listed = ", ".join(sorted(have)) or "none"
    problems = []
    for i, name in enumerate(rules.required):
        if name not in have:
            problems.append(f"required[{i}]: unknown attribute {name!r} (agents' profiles "
                            f"have: {listed})")
    for i, pref in enumerate(rules.preferences):
        if pref.attribute not in have:
            problems.append(f"preferences[{i}].attribute: unknown attribute {pref.attribute!r} "
                            f"(agents' profiles have: {listed})")
    for name, _ in rules.defaults:
        if name not in have:
            problems.append(f"defaults.{name}: unknown attribute {name!r} (agents' profiles "
                            f"have: {listed})")
    if problems:
        raise RulesError(problems, source)


def _names(value: object, path: str, problems: list[str], *, word: bool = True) -> list[str]:
    if not isinstance(value, list):
        problems.append(f"{path}: expected a list of names, got {type(value).__name__}")
        return []
    out = []
    for i, item in enumerate(value):
        ok = isinstance(item, str) and (re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", item) if word
                                        else item.strip())
        if not ok:
            problems.append(f"{path}[{i}]: expected a name, got {item!r}")
        else:
            out.append(str(item))
    return out


def _preference(raw: object, path: str, problems: list[str]) -> Preference | None:
    if not isinstance(raw, dict):
        problems.append(f"{path}: expected a mapping with attribute and weight, "
                        f"got {type(raw).__name__}")
        return None
    before = len(problems)
    for key in sorted(set(map(str, raw)) - _PREF_KEYS):
        problems.append(f"{path}.{key}: unknown field (expected one of {', '.join(sorted(_PREF_KEYS))})")
    attribute = raw.get("attribute")
    if not isinstance(attribute, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", attribute):
        problems.append(f"{path}.attribute: required, an attribute name, got {attribute!r}")
    weight = raw.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < 1e6:
        problems.append(f"{path}.weight: a positive number, got {weight!r}")
    kind_raw = raw.get("kind", "equal")
    mode_raw = raw.get("mode", "jaccard")
    try:
        kind = PreferenceKind(kind_raw)
    except ValueError:
        problems.append(f"{path}.kind: one of {', '.join(k.value for k in PreferenceKind)}, "
                        f"got {kind_raw!r}")
        kind = PreferenceKind.EQUAL
    try:
        mode = TagMode(mode_raw)
    except ValueError:
        problems.append(f"{path}.mode: one of {', '.join(m.value for m in TagMode)}, got {mode_raw!r}")
        mode = TagMode.JACCARD
    if "mode" in raw and kind is not PreferenceKind.TAGS:
        problems.append(f"{path}.mode: only a tags preference has a mode")
    if len(problems) > before:
        return None
    assert isinstance(attribute, str)
    assert isinstance(weight, int | float)
    return Preference(attribute, float(weight), kind, mode)


# ------------------------------------------------------------------------------ scoring
def lead_values(rules: MatchRules, lead: LeadAttrs, attribute: str) -> frozenset[str]:
    """The lead's values of `attribute` (split, normalised), or the rules' default."""
    raw = lead.get(attribute)
    if raw is None or not raw.strip():
        raw = rules.default(attribute)
    if raw is None:
        return frozenset()
    return frozenset(v for v in (norm(p) for p in _SPLIT.split(raw)) if v)


def group_key(rules: MatchRules, lead: LeadAttrs) -> GroupKey:
    return tuple((a, tuple(sorted(lead_values(rules, lead, a)))) for a in rules.required)


def compatible(key: GroupKey, agent: AgentProfile) -> bool:
    """The agent has one of the lead's values for every required attribute."""
    return all(not values or not agent.values(attribute).isdisjoint(values)
               for attribute, values in key)


def _similarity(rules: MatchRules, pref: Preference, lead: frozenset[str],
                agent: AgentProfile) -> float:
    mine = agent.values(pref.attribute)
    if not lead or not mine:
        return 0.0
    match pref.kind:
        case PreferenceKind.EQUAL:
            return 0.0 if lead.isdisjoint(mine) else 1.0
        case PreferenceKind.TAGS:
            shared = len(lead & mine)
            if pref.mode is TagMode.COUNT:
                return float(shared)
            return shared / len(lead | mine)
        case PreferenceKind.AGE_BAND:
            order = {norm(b): i for i, b in enumerate(rules.age_bands)}
            lead_i = [order[v] for v in lead if v in order]
            mine_i = [order[v] for v in mine if v in order]
            if not lead_i or not mine_i or len(order) < 2:
                return 0.0
            distance = min(abs(a - b) for a in lead_i for b in mine_i)
            return 1.0 - distance / (len(order) - 1)


def score(rules: MatchRules, lead: LeadAttrs, agent: AgentProfile) -> float | None:
    """None when the agent may not take the lead (a required attribute fails), otherwise the
    weighted preference score (0 with no preferences)."""
    if not compatible(group_key(rules, lead), agent):
        return None
    return _preference_score(rules, _pref_values(rules, lead), agent)


def _pref_values(rules: MatchRules, lead: LeadAttrs) -> list[frozenset[str]]:
    return [lead_values(rules, lead, p.attribute) for p in rules.preferences]


def _preference_score(rules: MatchRules, values: list[frozenset[str]], agent: AgentProfile) -> float:
    total = 0.0
    for pref, lead in zip(rules.preferences, values, strict=True):
        total += pref.weight * _similarity(rules, pref, lead, agent)
    return round(total, 9)  # so that equal sums compare equal and ties go to the idle time


def best_agent(rules: MatchRules, lead: LeadAttrs, ready: Iterable[AgentProfile],
               idle_since: Mapping[str, float]) -> AgentProfile | None:
    """The ready agent who may take `lead` with the best score; ties to the longest idle
    (smallest `idle_since`; an agent missing from it counts as idle since now, i.e. last),
    then the smaller id. None when no ready agent may take the lead."""
    key = group_key(rules, lead)
    values = _pref_values(rules, lead)
    best: AgentProfile | None = None
    best_rank: tuple[float, float, str] | None = None
    for agent in ready:
        if not compatible(key, agent):
            continue
        rank = (-_preference_score(rules, values, agent),
                idle_since.get(agent.id, float("inf")), agent.id)
        if best_rank is None or rank < best_rank:
            best, best_rank = agent, rank
    return best


def assign_waiting(rules: MatchRules, waiting: Sequence[tuple[str, LeadAttrs]],
                   ready: Iterable[AgentProfile],
                   idle_since: Mapping[str, float]) -> list[tuple[str, str]]:
    """Humans waiting for an agent (longest waiting first, as (call id, lead attributes)) and
    the ready agents: (call id, agent id) pairs, each waiting call in turn taking its
    `best_agent` among those not yet given out. A call no ready agent may take keeps waiting
    without holding up the calls behind it."""
    free = {a.id: a for a in ready}
    pairs = []
    for call_id, lead in waiting:
        if not free:
            break
        agent = best_agent(rules, lead, free.values(), idle_since)
        if agent is not None:
            pairs.append((call_id, agent.id))
            del free[agent.id]
    return pairs


# ----------------------------------------------------------------------- lead selection
@dataclass(frozen=True, slots=True)
class AgentOutlook:
    """A logged-in agent and their probability of being free within the look-ahead horizon:
    1.0 ready now, the pacer model's p_free if on a call or in wrap-up, 0.0 paused."""

    profile: AgentProfile
    p_free: float


@dataclass(frozen=True, slots=True)
class LeadOption:
    """A dialable lead, in the store's order (priority, then due time)."""

    id: str
    attributes: LeadAttrs


#: Why a lead was not dialed although the pacer had room for it.
NO_AGENT = "no_compatible_agent"


@dataclass(frozen=True, slots=True)
class DialPlan:
    """How many leads of each group to dial now, and the groups no logged-in agent can take
    (their leads must not be dialed)."""

    quota: Mapping[GroupKey, int]
    blocked: frozenset[GroupKey]

    @property
    def total(self) -> int:
        return sum(self.quota.values())


@dataclass(frozen=True, slots=True)
class DialSelection:
    dial: tuple[str, ...]  # lead ids to dial, in order
    skipped: tuple[tuple[str, str], ...]  # (lead id, reason): never dial these now
    plan: DialPlan


def describe(key: GroupKey) -> str:
    """A group for people: ``language=es``; ``any`` when there is no requirement."""
    parts = [f"{a}={'|'.join(v)}" for a, v in key if v]
    return ", ".join(parts) or "any"


def plan_dials(available: Mapping[GroupKey, int], outlook: Sequence[AgentOutlook], count: int,
               *, p_live: float, in_flight: Mapping[GroupKey, float] | None = None) -> DialPlan:
    """Split the pacer's `count` between the groups (see the module docstring).

    `available`: dialable leads per group; `in_flight`: expected live answers still to come
    per group (ringing calls × their live-answer chance, plus humans waiting for an agent);
    `p_live`: the chance that one new dial brings a live person (the pacer model's). Groups
    are visited in a fixed order, so equal loads resolve the same way every time.

    Caution (measured in dialer.sim.matching): a `count` from a pacer that saw the pooled
    agents is too high for partitioned groups; with 10 agents the campaign went over the 3 %
    ceiling. Prefer per-group pacing (dialer.routing.grouped) where the pacer allows it."""
    if not 0.0 < p_live <= 1.0:
        raise RoutingError([f"p_live: a probability in (0, 1], got {p_live!r}"])
    if count < 0:
        raise RoutingError([f"count: must be >= 0, got {count}"])
    for o in outlook:
        if not 0.0 <= o.p_free <= 1.0:
            raise RoutingError([f"outlook[{o.profile.id}].p_free: a probability in [0, 1], "
                                f"got {o.p_free!r}"])
    flight = dict(in_flight or {})
    keys = sorted(set(available) | set(flight))
    cap: dict[GroupKey, float] = {}
    blocked = set()
    serving = set()  # agents compatible with some group
    total_cap = 0.0
    for key in keys:
        c = 0.0
        any_agent = False
        for o in outlook:
            if compatible(key, o.profile):
                any_agent = True
                c += o.p_free
                if o.profile.id not in serving:
                    serving.add(o.profile.id)
                    total_cap += o.p_free
        cap[key] = c
        if not any_agent:
            blocked.add(key)
    quota = {key: 0 for key in available if key not in blocked}
    if count == 0 or total_cap <= 0.0:
        return DialPlan(quota, frozenset(blocked))
    demand = {key: flight.get(key, 0.0) for key in keys}
    target = (sum(demand[k] for k in keys if k not in blocked) + count * p_live) / total_cap
    heap: list[tuple[float, int, GroupKey]] = []
    for i, key in enumerate(keys):
        if key in quota and available[key] > 0 and cap[key] > 0.0:
            heap.append((demand[key] / cap[key], i, key))
    heapq.heapify(heap)
    left = count
    while heap and left > 0:
        load, i, key = heapq.heappop(heap)
        if load >= target - 1e-12:
            break  # every group is at the pooled load already
        quota[key] += 1
        left -= 1
        demand[key] += p_live
        if quota[key] < available[key]:
            heapq.heappush(heap, (demand[key] / cap[key], i, key))
    return DialPlan(quota, frozenset(blocked))


def select_leads(rules: MatchRules, leads: Sequence[LeadOption], outlook: Sequence[AgentOutlook],
                 count: int, *, p_live: float,
                 in_flight: Mapping[GroupKey, float] | None = None) -> DialSelection:
    """Which of `leads` (in the store's order) to dial now: `plan_dials` over their groups,
    then each group's first leads up to its quota. Leads of a group no logged-in agent can
    take are skipped with `NO_AGENT`; the rest are simply left for a later tick."""
    groups: dict[GroupKey, list[str]] = {}
    keys: dict[tuple[str | None, ...], GroupKey] = {}  # raw values -> group: parse each once
    required = rules.required
    for lead in leads:
        attrs = lead.attributes
        raw = tuple(attrs.get(a) for a in required)
        key = keys.get(raw)
        if key is None:
            key = keys[raw] = group_key(rules, attrs)
        groups.setdefault(key, []).append(lead.id)
    plan = plan_dials({k: len(v) for k, v in groups.items()}, outlook, count, p_live=p_live,
                      in_flight=in_flight)
    skipped = tuple((lead_id, NO_AGENT) for key in sorted(plan.blocked) if key in groups
                    for lead_id in groups[key])
    chosen: set[str] = set()
    for key, n in plan.quota.items():
        chosen.update(groups[key][:n])
    dial = tuple(lead.id for lead in leads if lead.id in chosen)
    return DialSelection(dial, skipped, plan)


def count_groups(rules: MatchRules,
                 scanned: Iterable[tuple[str, LeadAttrs]]) -> dict[GroupKey, int]:
    """Dialable leads per group, from the store's scan ((lead id, attributes) in claim order)."""
    counts: dict[GroupKey, int] = {}
    for _, attrs in scanned:
        key = group_key(rules, attrs)
        counts[key] = counts.get(key, 0) + 1
    return counts


def pick_leads(rules: MatchRules, scanned: Sequence[tuple[str, LeadAttrs]],
               quota: Mapping[GroupKey, int],
               release: Mapping[GroupKey, int] | None = None) -> list[str]:
    """The leads to claim, in the store's order: each group's first `quota[key]` leads of
    `scanned`, and up to `release[key]` leads of each group to be given back with a delay
    (no logged-in agent may take them: claiming them moves them out of the way of the scan).
    The claim per group that the store does with this (`claim_listed`)."""
    left = {k: n for k, n in quota.items() if n > 0}
    for key, n in (release or {}).items():
        if n > 0:
            left[key] = left.get(key, 0) + n
    picked = []
    for lead_id, attrs in scanned:
        if not left:
            break
        key = group_key(rules, attrs)
        n = left.get(key, 0)
        if n > 0:
            picked.append(lead_id)
            if n == 1:
                del left[key]
            else:
                left[key] = n - 1
    return picked


def trim_quota(quota: Mapping[GroupKey, int], count: int) -> dict[GroupKey, int]:
    """`quota` cut down to `count` calls in all, taken round-robin over the groups in key
    order (the engine may place fewer calls than the groups asked for: CPS, channels)."""
    left = {k: n for k, n in quota.items() if n > 0}
    out: dict[GroupKey, int] = {}
    while count > 0 and left:
        for key in sorted(left):
            if count == 0:
                break
            out[key] = out.get(key, 0) + 1
            count -= 1
            if left[key] == 1:
                del left[key]
            else:
                left[key] -= 1
    return out


def assign_pools(keys: Sequence[GroupKey], agents: Iterable[AgentProfile],
                 weights: Mapping[GroupKey, float]) -> dict[str, GroupKey]:
    """Each agent's pacing pool, for pacing every group on its own (`PacingSnapshot` per
    group): an agent who can take one group's leads paces with that group; one who can take
    several (a bilingual agent) with the compatible group that has the fewest agents for its
    weight (e.g. its share of the dialable leads), shared agents taken by id so that the
    answer is stable. Agents who can take none of `keys` are left out. Routing on answer is
    unaffected: a shared agent still takes calls of every group they can."""
    pools: dict[str, GroupKey] = {}
    count = dict.fromkeys(keys, 0)
    shared: list[tuple[str, list[GroupKey]]] = []
    for agent in agents:
        able = [k for k in keys if compatible(k, agent)]
        if len(able) == 1:
            pools[agent.id] = able[0]
            count[able[0]] += 1
        elif able:
            shared.append((agent.id, able))
    for agent_id, able in sorted(shared):
        key = min(able, key=lambda k: (count[k] / max(weights.get(k, 0.0), 1e-9), keys.index(k)))
        pools[agent_id] = key
        count[key] += 1
    return pools
