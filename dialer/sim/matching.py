"""Experiment: matched vs unmatched predictive dialing, in the pacing simulator.

    python -m dialer.sim.matching --agents 20 --hours 2 --seeds 3

Question (issue 7): what does agent-lead matching buy (the matched-pair rate) and what does it
cost (occupancy, talk minutes per agent-hour, abandon) against dialing that ignores it?

Set-up. Leads carry attributes drawn per lead index (so every mode meets the same customers):
a language (``es`` for `spanish_leads` of them, else ``en``), a region, an age band and
shared-background tags. Agents are Spanish-only, bilingual or English-only in the given
shares, with a region, an age band and tags. The campaign's rules require the language and
prefer region (weight 2), age band (1) and tag overlap (3, Jaccard):

* ``unmatched``: today's core: the store's lead order, the longest-idle ready agent takes
  each answer. Its pairs are scored afterwards with the same rules.
* ``required``: the pacer's pooled count, split between the language groups by
  `dialer.routing.matching.plan_dials` (from the agents ready or soon free); an answered lead
  goes only to an agent who speaks its language (longest idle among them); a Spanish lead
  with no Spanish speaker free within the 2 seconds is abandoned.
* ``preferred``: as ``required``, and the answered lead goes to the best-scoring agent.
* ``grouped``: the pacer run per language group (`dialer.routing.grouped.GroupedPacer`: each
  agent paces with one group, `dialer.routing.matching.assign_pools`), the claim split by the groups' answers;
  routing as ``preferred``.

The matched-pair rate is the share of connected calls whose agent speaks the lead's
language; the preference score is the rules' score of each connected pair (the best possible
for one pair is 2 + 1 + 3 = 6).

How it is driven, and what the core needs
-----------------------------------------
The core's `CampaignEngine` has no matching hook yet (the campaign engine is being changed by
another task as this is written, and is not edited here). This experiment therefore drives
the same engine through the smallest possible subclass, `MatchingEngine`, which overrides
three private methods — the surface a real hook would replace:

* `_human`: on answer, the call is routed with `best_agent` instead of the head of
  `ready_agents()`;
* `_offer_waiting`: waiting humans are served with `assign_waiting` (a waiting Spanish lead
  does not block an English one behind it);
* lead choice: the simulator's `ClaimLeads` handler (standing in for the store) asks
  `plan_dials` how many leads of each language to hand out, from the engine's agents (ready:
  p = 1; on a call or in wrap-up: the pacer model's ``p_free`` over its ring-time horizon).

Measured (``python -m dialer.sim.matching``, 15 % live answer, 90 s talk; 25 % Spanish leads,
15 % Spanish-only and 10 % bilingual agents; 3 seeds, 4 h for 10 and 20 agents, 2 seeds, 1 h
for 100). Talk minutes per agent-hour / abandon, means:

    agents  unmatched      required       preferred      grouped
    10      40.1 / 2.55 %  22.9 / 3.87 %  22.6 / 3.55 %  38.5 / 2.64 %
    20      46.3 / 2.39 %  32.0 / 2.97 %  31.2 / 2.97 %  43.8 / 2.58 %
    100     50.5 / 1.41 %  46.5 / 2.78 %  46.1 / 2.77 %  49.7 / 1.72 %

Unmatched pairs were 65-70 % language-matched; every matched mode 100 %. Splitting the
pooled count (``required``) loses 8-43 % of the talk time and broke the 3 % ceiling with 10
agents: the pooled pacer prices the abandon risk as if any agent could take any answer, the
partitioned pools are more variable, the abandon budget runs out and the pacer tapers. Pacing
each group on its own (``grouped``) costs 2-5 % and stays under the ceiling. (The figures
move with the core pacer, which was being changed while they were taken.)
So the hook to build is per-group pacing, with `plan_dials` as the fallback for pacers that
cannot be run per group.

Proposed hooks for dialer/core/campaign.py (integration by the lead)::

    class AgentChooser(Protocol):          # dialer.routing.matching.best_agent / assign_waiting
        def choose(self, lead: Lead, ready: Sequence[Agent]) -> Agent | None: ...
        def assign_waiting(self, waiting: Sequence[Call],
                           ready: Sequence[Agent]) -> list[tuple[str, str]]: ...

    class LeadGroups(Protocol):            # per-group pacing, as GroupedPacer does here
        def key(self, lead: Lead) -> GroupKey: ...                 # matching.group_key
        def pools(self, agents: Sequence[Agent]) -> dict[str, GroupKey]:  # matching.assign_pools
            ...

    CampaignEngine(spec, pacer=..., chooser: AgentChooser | None = None,
                   groups: LeadGroups | None = None)
    ClaimLeads(count: int, groups: tuple[tuple[GroupKey, int], ...] = ())   # () = any lead

`_human` calls ``chooser.choose`` (None: the call WAITs), `_offer_waiting` calls
``chooser.assign_waiting``; `_pace` builds one `PacingSnapshot` per group (its pool's agents,
its ringing ages, calls in AMD and waiting humans; the campaign's abandon window and free
channels), asks the pacer for each (skipping a group with nobody ready), and emits
``ClaimLeads(sum, groups=...)``; the store claims per group from a ready set per group key
(a new key pattern in dialer/store/keys.py), and a claimed lead whose group no logged-in
agent can take is released with a delay and the reason `NO_AGENT`, never dialed. Here the
engine's three private methods (`ready_agents` during `_human`, `_human`, `_offer_waiting`)
are overridden by `MatchingEngine`, and the per-group pacing is the routing package's
`GroupedPacer` wrapped around the core pacer, fed by `group_loads` reading the engine — the
surface these hooks would replace. Known differences: the simulator splits
the claim at claim time (5 ms after the tick), and CPS tokens for calls a split declines are
spent.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial

from dialer.core.agent import Agent, AgentState
from dialer.core.campaign import Call, CallState, CampaignEngine, ClaimLeads, Command, ConnectAgent
from dialer.core.model import Lead, LeadState
from dialer.core.pacing import Pacer, PredictivePacer
from dialer.routing.grouped import GroupedPacer, GroupLoad
from dialer.routing.matching import (
    AgentOutlook,
    GroupKey,
    MatchRules,
    Preference,
    PreferenceKind,
    assign_pools,
    assign_waiting,
    best_agent,
    group_key,
    plan_dials,
    score,
)
from dialer.routing.profiles import DEFAULT_AGE_BANDS, AgentProfile, norm
from dialer.sim.metrics import RunResult
from dialer.sim.policy import Policy
from dialer.sim.scenario import Customers, Scenario, Staff
from dialer.sim.simulator import LeadPool, Simulator, _Desk

MODES = ("unmatched", "required", "preferred", "grouped")
REGIONS = ("north", "south", "east", "west")
TAGS = ("veteran", "nurse", "teacher", "farmer", "student", "parent")

RULES = MatchRules(
    required=("language",),
    preferences=(Preference("region", 2.0), Preference("age_band", 1.0, PreferenceKind.AGE_BAND),
                 Preference("tags", 3.0, PreferenceKind.TAGS)),
)
REQUIRED_ONLY = replace(RULES, preferences=())
LANGUAGE_GROUPS = tuple(group_key(REQUIRED_ONLY, {"language": lang}) for lang in ("en", "es"))


@dataclass(frozen=True, slots=True)
class Population:
    """Who the leads and agents are (shares of each)."""

    spanish_leads: float = 0.25
    spanish_agents: float = 0.15  # speak Spanish only
    bilingual_agents: float = 0.10  # Spanish and English
    tag_rate: float = 0.25  # each tag independently

    def lead_attributes(self, seed: int, index: int) -> tuple[tuple[str, str], ...]:
        rng = random.Random(seed * 7_919 + index)
        tags = [t for t in TAGS if rng.random() < self.tag_rate]
        attrs = {"language": "es" if rng.random() < self.spanish_leads else "en",
                 "region": rng.choice(REGIONS), "age_band": rng.choice(DEFAULT_AGE_BANDS)}
        if tags:
            attrs["tags"] = ";".join(tags)
        return tuple(sorted(attrs.items()))

    def agent_profile(self, agent_id: str, index: int, agents: int) -> AgentProfile:
        """The first `spanish_agents` share speak Spanish only, the next `bilingual_agents`
        share both, the rest English only (rounded, at least one of a non-zero share)."""
        n_es = _share(self.spanish_agents, agents)
        n_bi = _share(self.bilingual_agents, agents)
        language = ("es",) if index < n_es else ("es", "en") if index < n_es + n_bi else ("en",)
        rng = random.Random(f"agent:{index}")
        tags = frozenset(t for t in TAGS if rng.random() < self.tag_rate)
        return AgentProfile(agent_id, agent_id, attributes={
            "language": frozenset(language), "region": frozenset({rng.choice(REGIONS)}),
            "age_band": frozenset({norm(rng.choice(DEFAULT_AGE_BANDS))}), "tags": tags})


def _share(fraction: float, total: int) -> int:
    return max(1, round(fraction * total)) if fraction > 0 else 0


class AttributedLeadPool(LeadPool):
    """The simulator's lead pool with attributes, able to hand out leads of one group: a plan
    (a list of group keys, set before each claim) makes `take` return a lead of the next
    planned group — the store claiming per group. Fresh leads are generated in index order;
    those of other groups wait in a buffer, in order (they count as available, and as used in
    `fresh`, so `leads_used` includes them). Without a plan: the plain store order."""

    __slots__ = ("buffers", "due", "plan", "population", "rules", "seed_base")

    def __init__(self, campaign_id: str, zone: str, size: int | None, start: float,
                 population: Population, rules: MatchRules, seed_base: int) -> None:
        super().__init__(campaign_id, zone, size, start)
        self.population = population
        self.rules = rules
        self.seed_base = seed_base
        self.plan: list[GroupKey] | None = None
        self.buffers: dict[GroupKey, list[Lead]] = {}
        self.due: dict[GroupKey, list[Lead]] = {}

    def _fresh(self, now: float) -> Lead | None:
        lead = super().take(now) if self.size is None or self.fresh < self.size else None
        if lead is None:
            return None
        return replace(lead, attributes=self.population.lead_attributes(self.seed_base,
                                                                        self.index(lead)))

    def take(self, now: float) -> Lead | None:
        if self.plan is None:
            for buffered in self.buffers.values():
                if buffered:
                    return buffered.pop(0)
            return self._fresh(now) or super().take(now)
        if not self.plan:
            return None
        key = self.plan.pop(0)
        waiting = self.buffers.get(key)
        if waiting:
            return waiting.pop(0)
        while (lead := self._fresh(now)) is not None:
            got = group_key(self.rules, dict(lead.attributes))
            if got == key:
                return lead
            self.buffers.setdefault(got, []).append(lead)
        # Fresh leads are used up: the earliest due retry of that group, if any.
        kept = []
        found = None
        while self.retries and self.retries[0][0] <= now:
            entry = heapq.heappop(self.retries)
            if group_key(self.rules, dict(entry[2].attributes)) == key:
                found = replace(entry[2], state=LeadState.IN_PROGRESS)
                break
            kept.append(entry)
        for entry in kept:
            heapq.heappush(self.retries, entry)
        return found

    def available(self, now: float) -> int:
        buffered = sum(len(leads) for leads in self.buffers.values())
        return min(10**9, super().available(now) + buffered)

    def available_by_group(self, now: float, groups: Sequence[GroupKey]) -> dict[GroupKey, int]:
        if self.size is None:
            return dict.fromkeys(groups, 10**9)
        out = dict.fromkeys(groups, 0)
        for key, leads in self.buffers.items():
            out[key] = out.get(key, 0) + len(leads)
        for i in range(self.fresh, self.size):
            attrs = dict(self.population.lead_attributes(self.seed_base, i))
            key = group_key(self.rules, attrs)
            out[key] = out.get(key, 0) + 1
        for t, _, lead in self.retries:
            if t <= now:
                key = group_key(self.rules, dict(lead.attributes))
                out[key] = out.get(key, 0) + 1
        return out


@dataclass
class MatchingEngine(CampaignEngine):
    """The core engine with matched routing on answer (see the module docstring: the three
    overridden methods are what the proposed `AgentChooser` hook replaces)."""

    rules: MatchRules = field(default_factory=MatchRules)
    profiles: dict[str, AgentProfile] = field(default_factory=dict)
    _routing: Call | None = field(default=None, init=False, repr=False)

    def _ready_profiles(self, ready: list[Agent]) -> list[AgentProfile]:
        return [self.profiles[a.id] for a in ready]

    def ready_agents(self) -> list[Agent]:
        ready = super().ready_agents()
        call = self._routing
        if call is None:
            return ready
        idle = {a.id: a.since for a in ready}
        best = best_agent(self.rules, dict(call.lead.attributes), self._ready_profiles(ready), idle)
        return [] if best is None else [self.agents[best.id]]

    def _human(self, call: Call, now: float, out: list[Command]) -> None:
        self._routing = call
        try:
            super()._human(call, now, out)
        finally:
            self._routing = None

    def _offer_waiting(self, now: float, out: list[Command]) -> None:
        self.waiting = [cid for cid in self.waiting
                        if (c := self.calls.get(cid)) is not None and c.state is CallState.WAITING]
        if not self.waiting:
            return
        ready = super().ready_agents()
        if not ready:
            return
        waiting = [(cid, dict(self.calls[cid].lead.attributes)) for cid in self.waiting]
        pairs = assign_waiting(self.rules, waiting, self._ready_profiles(ready),
                               {a.id: a.since for a in ready})
        for cid, aid in pairs:
            self.waiting.remove(cid)
            self._connect(self.calls[cid], self.agents[aid], now, out)


def group_loads(engine: CampaignEngine, profiles: dict[str, AgentProfile],
                weights: dict[GroupKey, float], now: float) -> dict[GroupKey, GroupLoad]:
    """The engine's agents and calls by language group, for `GroupedPacer` (the view the
    proposed `LeadGroups` hook would give the engine itself)."""
    keys = list(LANGUAGE_GROUPS)
    pools = assign_pools(keys, (profiles[a] for a in engine.agents), weights)
    ready = dict.fromkeys(keys, 0)
    busy: dict[GroupKey, list[float]] = {k: [] for k in keys}
    wrapping: dict[GroupKey, list[float]] = {k: [] for k in keys}
    for agent in engine.agents.values():
        key = pools.get(agent.id)
        if key is None:
            continue
        if agent.state is AgentState.READY:
            ready[key] += 1
        elif agent.state in (AgentState.RESERVED, AgentState.ON_CALL):
            busy[key].append(now - agent.since)
        elif agent.state is AgentState.WRAP_UP:
            wrapping[key].append(now - agent.since)
    ages: dict[GroupKey, list[float]] = {k: [] for k in keys}
    in_amd = dict.fromkeys(keys, 0)
    waiting = dict.fromkeys(keys, 0)
    for call in engine.calls.values():
        key = group_key(REQUIRED_ONLY, dict(call.lead.attributes))
        if key not in ready:
            continue
        if call.state is CallState.DIALING:
            ages[key].append(now - call.attempt.originated_at)
        elif call.state is CallState.AMD:
            in_amd[key] += 1
        elif call.state is CallState.WAITING:
            waiting[key] += 1
    return {k: GroupLoad(ready[k], tuple(busy[k]), tuple(wrapping[k]), tuple(ages[k]), in_amd[k],
                         waiting[k]) for k in keys}


def trim(quota: dict[GroupKey, int], count: int) -> list[GroupKey]:
    """`count` group keys taken round-robin from `quota` (the engine may claim fewer calls than
    the groups asked for: CPS, channels, leads)."""
    left = dict(quota)
    order: list[GroupKey] = []
    while len(order) < count and any(left.values()):
        for key in sorted(left):
            if left[key] > 0 and len(order) < count:
                order.append(key)
                left[key] -= 1
    return order


@dataclass(slots=True)
class Pairs:
    """Connected pairs, scored with the full rules."""

    count: int = 0
    matched: int = 0
    scores: list[float] = field(default_factory=list)

    @property
    def matched_rate(self) -> float:
        return self.matched / self.count if self.count else 0.0

    @property
    def mean_score(self) -> float:
        return statistics.fmean(self.scores) if self.scores else 0.0


class MatchingSimulator(Simulator):
    """`Simulator` with attributed leads and agents, in one of `MODES`."""

    def __init__(self, scenario: Scenario, policy: Policy, seed: int = 1, *, mode: str,
                 population: Population | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        super().__init__(scenario, policy, seed)
        self.mode = mode
        self.population = population or Population()
        self.pairs = Pairs()
        self.plans = 0
        self.declined = 0  # calls the pacer wanted that the plan did not place
        rules = RULES if mode in ("preferred", "grouped") else REQUIRED_ONLY
        self.profiles: dict[str, AgentProfile] = {}
        for desk in self.desks:
            for i, aid in enumerate(desk.agents):
                self.profiles[aid] = self.population.agent_profile(aid, i, len(desk.agents))
            old = desk.engine
            if mode != "unmatched":
                pacer: Pacer | None = old.pacer
                if mode == "grouped":
                    assert pacer is not None
                    pacer = GroupedPacer(pacer)
                engine = MatchingEngine(old.spec, pacer=pacer, rules=rules, profiles=self.profiles)
                desk.engine = engine
                if isinstance(pacer, GroupedPacer):
                    share = self.population.spanish_leads
                    weights = {LANGUAGE_GROUPS[0]: 1.0 - share, LANGUAGE_GROUPS[1]: share}
                    pacer.loads = partial(group_loads, engine, self.profiles, weights)
            pool = desk.pool
            desk.pool = AttributedLeadPool(pool.campaign_id, scenario.zone, pool.size, pool.start,
                                           self.population, REQUIRED_ONLY, seed)

    # The store's side of the proposed per-group claim.
    def _claim(self, desk: _Desk, command: ClaimLeads) -> None:
        pool = desk.pool
        assert isinstance(pool, AttributedLeadPool)
        if self.mode == "unmatched":
            pool.plan = None
            super()._claim(desk, command)
            return
        engine = desk.engine
        if isinstance(engine.pacer, GroupedPacer):
            pool.plan = trim(engine.pacer.quota, command.count)
            self.plans += 1
            self.declined += command.count - len(pool.plan)
            super()._claim(desk, command)
            pool.plan = None
            return
        outlook, p_live, in_flight = self._outlook(engine)
        keys = sorted(set(LANGUAGE_GROUPS) | set(in_flight))
        plan = plan_dials(pool.available_by_group(self.now, keys), outlook, command.count,
                          p_live=p_live, in_flight=in_flight)
        order = [k for k, n in sorted(plan.quota.items()) for _ in range(n)]
        random.Random(self.call_seq).shuffle(order)  # interleave the groups' calls
        self.plans += 1
        self.declined += command.count - len(order)
        pool.plan = order
        super()._claim(desk, command)
        pool.plan = None

    def _outlook(self, engine: CampaignEngine) -> tuple[list[AgentOutlook], float,
                                                         dict[GroupKey, float]]:
        pacer = engine.pacer
        model = pacer.model if isinstance(pacer, PredictivePacer) else None
        p_live = min(1.0, max(1e-3, model.p_live)) if model is not None else 1.0
        now = self.now
        busy: list[Agent] = []
        wrapping: list[Agent] = []
        outlook: list[AgentOutlook] = []
        for agent in engine.agents.values():
            profile = self.profiles[agent.id]
            if agent.state is AgentState.READY:
                outlook.append(AgentOutlook(profile, 1.0))
            elif agent.state in (AgentState.RESERVED, AgentState.ON_CALL):
                busy.append(agent)
            elif agent.state is AgentState.WRAP_UP:
                wrapping.append(agent)
            else:
                outlook.append(AgentOutlook(profile, 0.0))
        if model is not None:
            qs = model.p_free(tuple(now - a.since for a in busy),
                              tuple(now - a.since for a in wrapping), model.ring_time)
        else:
            qs = [0.0] * (len(busy) + len(wrapping))
        for agent, q in zip(busy + wrapping, qs, strict=True):
            outlook.append(AgentOutlook(self.profiles[agent.id], min(1.0, max(0.0, q))))
        # Expected live answers still to come, per group: ringing calls weighed by how long
        # they have rung (the core model's `live_to_come`), humans waiting count 1.
        ages: dict[GroupKey, list[float]] = {}
        in_amd: dict[GroupKey, int] = {}
        in_flight: dict[GroupKey, float] = {}
        for call in engine.calls.values():
            key = group_key(REQUIRED_ONLY, dict(call.lead.attributes))
            if call.state is CallState.DIALING:
                ages.setdefault(key, []).append(now - call.attempt.originated_at)
            elif call.state is CallState.AMD:
                in_amd[key] = in_amd.get(key, 0) + 1
            elif call.state is CallState.WAITING:
                in_flight[key] = in_flight.get(key, 0.0) + 1.0
        for key in set(ages) | set(in_amd):
            weights: list[float] = []
            if model is not None:
                model.live_to_come(tuple(ages.get(key, ())), in_amd.get(key, 0), weights)
            else:
                weights = [p_live] * (len(ages.get(key, ())) + in_amd.get(key, 0))
            in_flight[key] = in_flight.get(key, 0.0) + sum(weights)
        return outlook, p_live, in_flight

    def _connect(self, desk: _Desk, command: ConnectAgent) -> None:
        call = desk.engine.calls.get(command.call_id)
        if call is not None:
            lead = dict(call.lead.attributes)
            profile = self.profiles[command.agent_id]
            self.pairs.count += 1
            full = score(RULES, lead, profile)
            if full is not None:
                self.pairs.matched += 1
                self.pairs.scores.append(full)
            else:
                self.pairs.scores.append(0.0)
        super()._connect(desk, command)


@dataclass(frozen=True, slots=True)
class MatchResult:
    mode: str
    run: RunResult
    pairs: int
    matched_rate: float
    mean_score: float
    declined: int


def run_mode(scenario: Scenario, mode: str, seed: int = 1, *,
             population: Population | None = None,
             policy: Policy | None = None) -> MatchResult:
    sim = MatchingSimulator(scenario, policy or Policy("predictive"), seed, mode=mode,
                            population=population)
    result = sim.run()
    return MatchResult(mode, result, sim.pairs.count, sim.pairs.matched_rate, sim.pairs.mean_score,
                       sim.declined)


def scenario(agents: int = 20, hours: float = 2.0, live: float = 0.15,
             talk: float = 90.0) -> Scenario:
    return Scenario(f"match-a{agents}-l{round(live * 100)}-t{round(talk)}",
                    customers=Customers(live=live, talk_mean=talk),
                    staff=Staff(agents=agents, shift_hours=hours, breaks=2 if hours >= 2 else 0))


def table(results: Sequence[MatchResult]) -> str:
    lines = [f"{'mode':<10} {'seed':>4} {'talk-min/h':>10} {'occupancy':>9} {'abandon':>8} "
             f"{'matched':>8} {'score':>6} {'connects':>8} {'dials':>7}"]
    for r in results:
        lines.append(f"{r.mode:<10} {r.run.seed:>4} {r.run.talk_min_per_hour:>10.1f} "
                     f"{r.run.occupancy:>9.1%} {r.run.abandon:>8.2%} {r.matched_rate:>8.1%} "
                     f"{r.mean_score:>6.2f} {r.pairs:>8} {r.run.dials:>7}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dialer.sim.matching", description=__doc__.split(
        "\n\n")[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--live", type=float, default=0.15)
    parser.add_argument("--talk", type=float, default=90.0)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--spanish-leads", type=float, default=0.25)
    parser.add_argument("--spanish-agents", type=float, default=0.15)
    parser.add_argument("--bilingual-agents", type=float, default=0.10)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args(argv)
    population = Population(args.spanish_leads, args.spanish_agents, args.bilingual_agents)
    s = scenario(args.agents, args.hours, args.live, args.talk)
    results = [run_mode(s, mode, seed, population=population)
               for seed in range(1, args.seeds + 1) for mode in args.modes.split(",")]
    print(f"{s.name}: {args.spanish_leads:.0%} Spanish leads; agents {args.spanish_agents:.0%} "
          f"Spanish-only, {args.bilingual_agents:.0%} bilingual")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
