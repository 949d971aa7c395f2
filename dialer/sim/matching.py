"""Experiment: matched vs unmatched predictive dialing, in the pacing simulator.

    python -m dialer.sim.matching --agents 20 --hours 2 --seeds 3

Question (issue 7): what does agent-lead matching buy (the matched-pair rate, the preference
score of each pair) and what does it cost (occupancy, talk minutes per agent-hour, abandon)
against dialing that ignores it?

Set-up. Leads carry attributes drawn per lead index (so every mode meets the same customers):
a language (``es`` for `spanish_leads` of them, else ``en``), a region, an age band and
shared-background tags. Agents are Spanish-only, bilingual or English-only in the given
shares, with a region, an age band and tags; each logs in with that profile (`AgentLogin`).
The modes differ only in the campaign spec's ``matching:`` rules, driven through the core's
own hooks (`dialer.core.campaign.CampaignEngine`, no subclass):

* ``unmatched``: no rules (today's behaviour): the store's lead order, the longest-idle ready
  agent takes each answer. Its pairs are scored afterwards with the full rules.
* ``required``: ``required: [language]``. The engine paces each language group on its own
  (every agent paces with one group, `dialer.routing.matching.assign_pools`; the pacer asked
  per group with that group's agents and calls), claims each group's leads
  (`ClaimLeads.groups`), and an answered lead goes only to an agent who speaks its language
  (longest idle among them); one with nobody free within the 2 seconds is abandoned.
* ``preferred``: as ``required``, plus preferences region (weight 2), age band (1) and tag
  overlap (3, Jaccard): the answered lead goes to the best-scoring ready speaker.

The matched-pair rate is the share of connected calls whose agent speaks the lead's
language; the score is the full rules' score of each connected pair (6 at best).

The simulator stands in for the store: a `ClaimLeads` with groups hands out each group's
next leads in lead order (`AttributedLeadPool`), and `LeadsAvailable` carries the dialable
leads per group, as the runtime's store scan does. A pooled alternative (the pacer asked
once, its count split between the groups by `dialer.routing.matching.plan_dials`) was
measured before the hooks existed: it lost 8-43 % of the talk time and went over the 3 %
ceiling with 10 agents, because a pacer that sees the pooled agents under-prices the abandon
risk of partitioned groups; hence per-group pacing in the core.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dialer.core.agent import AgentState
from dialer.core.campaign import AgentLogin, ClaimLeads, ConnectAgent, Event, LeadsAvailable
from dialer.core.model import Lead, LeadState
from dialer.routing.matching import (
    GroupKey,
    MatchRules,
    Preference,
    PreferenceKind,
    group_key,
    score,
)
from dialer.routing.profiles import DEFAULT_AGE_BANDS, AgentProfile, norm
from dialer.sim.metrics import RunResult
from dialer.sim.policy import Policy
from dialer.sim.scenario import Customers, Scenario, Staff
from dialer.sim.simulator import _CLAIM, CLAIM_LATENCY, LeadPool, Simulator, _Desk

MODES = ("unmatched", "required", "preferred")
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


def interleave(groups: Sequence[tuple[GroupKey, int]]) -> list[GroupKey]:
    """A claim's groups as the order of leads to hand out: round-robin over the groups, so
    that the groups' calls are placed interleaved (`trim_quota` keeps the same order)."""
    left = {k: n for k, n in groups if n > 0}
    order: list[GroupKey] = []
    while left:
        for key in sorted(left):
            order.append(key)
            if left[key] == 1:
                del left[key]
            else:
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
    """`Simulator` with attributed leads and agents, in one of `MODES`: the campaign spec's
    ``matching:`` rules are the only difference between the modes (the core does the rest);
    this class plays the store's part (per-group claims and counts) and logs agents in with
    their profiles."""

    def __init__(self, scenario: Scenario, policy: Policy, seed: int = 1, *, mode: str,
                 population: Population | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        super().__init__(scenario, policy, seed)
        self.mode = mode
        self.population = population or Population()
        self.pairs = Pairs()
        self.released = 0  # leads claimed only to be given back (no agent may take them)
        rules = {"unmatched": MatchRules(), "required": REQUIRED_ONLY, "preferred": RULES}[mode]
        self.profiles: dict[str, AgentProfile] = {}
        for desk in self.desks:
            for i, aid in enumerate(desk.agents):
                self.profiles[aid] = self.population.agent_profile(aid, i, len(desk.agents))
            desk.engine.spec = replace(desk.engine.spec, matching=rules)
            pool = desk.pool
            desk.pool = AttributedLeadPool(pool.campaign_id, scenario.zone, pool.size, pool.start,
                                           self.population, REQUIRED_ONLY, seed)

    # Agents log in with their profiles (the runtime: the profiles file or the login body).
    def _login(self, desk: _Desk, aid: str) -> None:
        if self._state(desk, aid) is AgentState.LOGGED_OUT and self._on_shift():
            self._deliver(desk, AgentLogin(self.now, aid, self.profiles[aid]), self._handlers)

    # The store's count of dialable leads per group (the runtime scans the store for it).
    def _deliver(self, desk: _Desk, event: Event,
                 handlers: dict[type, Callable[[_Desk, Any], None]]) -> None:
        if type(event) is LeadsAvailable and desk.engine.matching is not None:
            pool = desk.pool
            assert isinstance(pool, AttributedLeadPool)
            counts = pool.available_by_group(event.now, LANGUAGE_GROUPS)
            event = LeadsAvailable(event.now, event.count, tuple(sorted(counts.items())))
        super()._deliver(desk, event, handlers)

    # The store's side of the per-group claim (`ClaimLeads.groups` and `.release`).
    def _claim(self, desk: _Desk, command: ClaimLeads) -> None:
        pool = desk.pool
        assert isinstance(pool, AttributedLeadPool)
        if not command.groups and not command.release:
            pool.plan = None
            super()._claim(desk, command)
            return
        if command.count > 0:
            pool.plan = interleave(command.groups)
            super()._claim(desk, command)
        if command.release:  # not dials: no CPS; handed back by the engine with a delay
            pool.plan = interleave(command.release)
            leads: list[tuple[Lead, bool, str]] = []
            while pool.plan and (lead := pool.take(self.now)) is not None:
                self.call_seq += 1
                leads.append((lead, lead.phone in self.dnc, f"c{self.call_seq}"))
            self.released += len(leads)
            self._push(self.now + CLAIM_LATENCY, _CLAIM, desk.index, (0, tuple(leads)))
        pool.plan = None

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
    released: int  # leads claimed only to be given back: no logged-in agent may take them


def run_mode(scenario: Scenario, mode: str, seed: int = 1, *,
             population: Population | None = None,
             policy: Policy | None = None) -> MatchResult:
    sim = MatchingSimulator(scenario, policy or Policy("predictive"), seed, mode=mode,
                            population=population)
    result = sim.run()
    return MatchResult(mode, result, sim.pairs.count, sim.pairs.matched_rate, sim.pairs.mean_score,
                       sim.released)


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


def means(results: Sequence[MatchResult]) -> str:
    """One Markdown row per mode: the means over the seeds run."""
    lines = ["| mode | talk min/agent-h | occupancy | abandon | matched pairs | mean score | "
             "connects |", "|---|---:|---:|---:|---:|---:|---:|"]
    for mode in dict.fromkeys(r.mode for r in results):
        rows = [r for r in results if r.mode == mode]
        lines.append(
            f"| {mode} | {statistics.fmean(r.run.talk_min_per_hour for r in rows):.1f} | "
            f"{statistics.fmean(r.run.occupancy for r in rows):.1%} | "
            f"{statistics.fmean(r.run.abandon for r in rows):.2%} | "
            f"{statistics.fmean(r.matched_rate for r in rows):.1%} | "
            f"{statistics.fmean(r.mean_score for r in rows):.2f} | "
            f"{statistics.fmean(r.pairs for r in rows):.0f} |")
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
    print()
    print(means(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
