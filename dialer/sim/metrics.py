"""What a simulated run measured, from the commands the engine gave (nothing is read from the
engine's internals): agents' time in each state from `SaveAgent`, attempts from `SaveAttempt`
(counted once, when they end, in the day bucket of `ended_at`, as the store does).
A run with matched sub-pools runs one campaign per group (a desk): each campaign's window is
its own, as the law and the store count it, and the worst window, day and hour reported are
the worst campaign's; the totals (talk time, the whole run's abandon rate) are the run's.

Yardsticks (design/DIALING.md §4): talk minutes per agent-hour, where an agent-hour is time
logged in and available (ready, reserved, on a call or in wrap-up; pauses and the phone's login
ring excluded); occupancy = talk / (ready + reserved + talk), i.e. wrap-up excluded too; abandon
rate = abandoned / live humans, over the run (each 30-day window), per UTC calendar day and per
clock hour, both as the campaign counts it (the store's HUMAN_RESULTS) and in truth (people that
AMD hung up on as machines added to both sides); p95 of the idle gaps (READY until reserved for
a call); dials per connected call; fresh leads used.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from dialer.core.agent import Agent, AgentState
from dialer.core.model import Attempt, AttemptResult
from dialer.store.base import HUMAN_RESULTS, utc_day

BIN = 900.0  # seconds per point of the time series
DAY = 86_400.0
WINDOW_DAYS = 30

_AVAILABLE = (AgentState.READY, AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP)
_STATES = tuple(AgentState)
_INDEX = {s: i for i, s in enumerate(_STATES)}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[pos]


@dataclass(slots=True)
class Ledger:
    """Accumulates one run's figures as the simulator executes the engine's commands."""

    seconds: list[float] = field(default_factory=lambda: [0.0] * len(_STATES))
    counts: list[int] = field(default_factory=lambda: [0] * len(_STATES))  # agents per state now
    spells: dict[str, tuple[int, float]] = field(default_factory=dict)  # agent -> (state, since)
    idle_gaps: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)  # human verdict -> bridged
    # Per bin of BIN seconds: talk s, available s, dials, humans, abandoned (counted), true ones.
    talk_bins: defaultdict[int, float] = field(default_factory=lambda: defaultdict(float))
    avail_bins: defaultdict[int, float] = field(default_factory=lambda: defaultdict(float))
    dial_bins: defaultdict[int, int] = field(default_factory=lambda: defaultdict(int))
    # key -> [humans, abandoned, true humans, true abandoned, machines]; keys: UTC day,
    # clock hour, bin
    days: defaultdict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0, 0]))
    hours: defaultdict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0, 0]))
    bins: defaultdict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0, 0]))
    # The same day and hour tables per campaign (desk index): the compliance windows.
    desk_days: defaultdict[int, defaultdict[int, list[int]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: [0, 0, 0, 0, 0])))
    desk_hours: defaultdict[int, defaultdict[int, list[int]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: [0, 0, 0, 0, 0])))
    # Agents per state now, per campaign (desk index): the invariants are per campaign.
    desk_counts: defaultdict[int, list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0] * len(_STATES)))
    results: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    dials: int = 0
    machines: int = 0
    amd_false_positives: int = 0
    optouts: int = 0
    # Invariant counters (all must stay 0) and high-water marks.
    claims_no_ready: int = 0  # calls claimed while no agent was READY
    claims_no_agents: int = 0  # calls claimed while no agent was logged in and available
    cps_excess: int = 0
    max_channels_used: int = 0
    outside_window: int = 0

    # ------------------------------------------------------------------------- agents
    def agent(self, agent: Agent, desk: int = 0) -> bool:
        """Record an agent's saved state (an agent of campaign `desk`); True if it began a new
        spell."""
        new = _INDEX[agent.state]
        old = self.spells.get(agent.id)
        mine = self.desk_counts[desk]
        if old is not None:
            state, since = old
            if state == new and since == agent.since:
                return False  # same spell (e.g. a pause requested during a call)
            self._close(state, since, agent.since)
            self.counts[state] -= 1
            mine[state] -= 1
            if state == _INDEX[AgentState.READY] and agent.state is AgentState.RESERVED:
                self.idle_gaps.append(agent.since - since)
        if agent.state is AgentState.LOGGED_OUT:
            self.spells.pop(agent.id, None)
        else:
            self.counts[new] += 1
            mine[new] += 1
            self.spells[agent.id] = (new, agent.since)
        return True

    def _close(self, state: int, start: float, end: float) -> None:
        if end <= start:
            return
        self.seconds[state] += end - start
        kind = _STATES[state]
        if kind not in _AVAILABLE:
            return
        talk = kind is AgentState.ON_CALL
        b = int(start // BIN)
        while start < end:
            edge = min(end, (b + 1) * BIN)
            self.avail_bins[b] += edge - start
            if talk:
                self.talk_bins[b] += edge - start
            start = edge
            b += 1

    def close_all(self, now: float) -> None:
        for state, since in self.spells.values():
            self._close(state, since, now)
        self.spells.clear()

    def ready_count(self, desk: int | None = None) -> int:
        """Agents READY now: the run's, or campaign `desk`'s."""
        counts = self.counts if desk is None else self.desk_counts[desk]
        return counts[_INDEX[AgentState.READY]]

    def available_count(self, desk: int | None = None) -> int:
        """Agents logged in and available now (`_AVAILABLE`): the run's, or campaign `desk`'s."""
        counts = self.counts if desk is None else self.desk_counts[desk]
        return sum(counts[_INDEX[s]] for s in _AVAILABLE)

    # ------------------------------------------------------------------------ attempts
    def attempt(self, attempt: Attempt, amd_false_positive: bool, desk: int = 0) -> None:
        """Record an ended attempt of campaign `desk`."""
        assert attempt.ended_at is not None
        assert attempt.result is not None
        result = attempt.result
        self.results[result.value] += 1
        human = result in HUMAN_RESULTS
        abandoned = result is AttemptResult.ABANDONED
        if result is AttemptResult.MACHINE:
            self.machines += 1
        if amd_false_positive:
            self.amd_false_positives += 1
        machine = result is AttemptResult.MACHINE
        if human or machine:
            t = attempt.ended_at
            row = (int(human), int(abandoned), int(human or amd_false_positive),
                   int(abandoned or amd_false_positive), int(machine))
            day, hour = utc_day(t), int(t // 3600)
            for table, key in ((self.days, day), (self.hours, hour), (self.bins, int(t // BIN)),
                               (self.desk_days[desk], day), (self.desk_hours[desk], hour)):
                cell = table[key]
                for i in range(5):
                    cell[i] += row[i]
        if result is AttemptResult.TALKED and attempt.connected_at is not None \
                and attempt.amd_done_at is not None:
            self.waits.append(attempt.connected_at - attempt.amd_done_at)

    def window_counts(self, now: float, uk_mode: bool, desk: int = 0) -> tuple[int, int, int]:
        """(abandoned, humans, machines) as the store would answer for campaign `desk`'s
        window: its UTC day buckets from 30 days back (US) or today (UK)."""
        first = utc_day(now) if uk_mode else utc_day(now - WINDOW_DAYS * DAY)
        abandoned = humans = machines = 0
        for day, cell in self.desk_days[desk].items():
            if day >= first:
                humans += cell[0]
                abandoned += cell[1]
                machines += cell[4]
        return abandoned, humans, machines

    def worst_campaign(self, rate: Callable[[dict[int, list[int]]], float],
                       hourly: bool = False) -> float:
        """The worst campaign's `rate` of its day tables (its hour tables if `hourly`)."""
        tables = self.desk_hours if hourly else self.desk_days
        return max((rate(t) for t in tables.values()), default=0.0)



def worst_rate(table: dict[int, list[int]], index: tuple[int, int], min_humans: int = 1) -> float:
    """Highest abandoned/humans over the table's keys with at least `min_humans` humans."""
    h, a = index
    rates = [cell[a] / cell[h] for cell in table.values() if cell[h] >= min_humans]
    return max(rates, default=0.0)


def worst_counted_day(days: dict[int, list[int]], estimate: float) -> float:
    """Highest calendar day's abandon rate as a UK campaign counts it: its own abandons plus
    `estimate` × its AMD machine verdicts (the estimated false positives), over its people
    plus the same (`CampaignEngine.abandon_rate`)."""
    rates = []
    for cell in days.values():
        extra = estimate * cell[4]
        if cell[0] + extra > 0:
            rates.append((cell[1] + extra) / (cell[0] + extra))
    return max(rates, default=0.0)


def rolling_worst(days: dict[int, list[int]], index: tuple[int, int], window: int = WINDOW_DAYS) -> float:
    """Worst abandon rate over every `window`-day span (the whole run if shorter)."""
    h, a = index
    if not days:
        return 0.0
    first, last = min(days), max(days)
    worst = 0.0
    for end in range(first, last + 1):
        start = max(first, end - window + 1)
        if end - start + 1 < window and end != last and last - first + 1 >= window:
            continue  # only full windows, when the run is long enough to have them
        humans = sum(days[d][h] for d in range(start, end + 1) if d in days)
        abandoned = sum(days[d][a] for d in range(start, end + 1) if d in days)
        if humans:
            worst = max(worst, abandoned / humans)
    return worst


@dataclass(frozen=True, slots=True)
class Series:
    """A run over time, one point per BIN seconds (for the drift plot)."""

    t: tuple[float, ...]  # hours since the run's first shift start
    live: tuple[float, ...]  # true live-answer probability
    talk_min_per_hour: tuple[float, ...]
    abandon: tuple[float, ...]  # counted abandon rate in the bin
    cumulative_abandon: tuple[float, ...]  # counted, since the start of the run


@dataclass(frozen=True, slots=True)
class RunResult:
    scenario: str
    policy: str
    seed: int
    agents: int
    agent_hours: float
    talk_min_per_hour: float
    occupancy: float
    oracle: float  # talk-min per agent-hour of the clairvoyant bound
    humans: int
    abandoned: int
    abandon: float  # counted, whole run (= the 30-day window for one campaign up to 30 days)
    abandon_30d: float  # counted, worst 30-day window (of the worst campaign, as all below)
    abandon_day: float  # counted, worst UTC calendar day
    abandon_hour: float  # counted, worst clock hour
    true_abandon: float  # AMD false positives included
    true_abandon_day: float
    idle_gap_p95: float
    wait_p50: float  # human verdict -> bridged, seconds
    wait_p99: float
    dials: int
    connects: int
    dials_per_connect: float
    leads_used: int
    machines: int
    amd_false_positives: int
    claims_no_ready: int
    claims_no_agents: int
    cps_excess: int
    max_channels_used: int
    channels: int
    outside_window: int
    events: int
    cpu_seconds: float
    agent_days: float
    results: tuple[tuple[str, int], ...]
    series: Series | None = None
    uk_mode: bool = False  # the window is the calendar day (UK), not 30 days (US)
    # Worst calendar day as the campaign counts it, its estimated AMD false positives included
    # in UK mode with AMD on (`worst_counted_day`; else the same as abandon_day); None in runs
    # recorded before it was kept.
    abandon_day_counted: float | None = None

    @property
    def judged_abandon(self) -> float:
        """The abandon rate the 3 % rule judges: the worst campaign's worst window, 30 days
        (or the run so far, if shorter) in the US, a calendar day in UK mode, as the campaign
        counts it (its estimated AMD false positives included)."""
        if not self.uk_mode:
            return self.abandon_30d
        if self.abandon_day_counted is not None:
            return self.abandon_day_counted
        # Recorded before the counted day was kept: without machine verdicts it is the day's
        # own rate; with them it is unknown, and nothing unknown passes the ceiling.
        return self.abandon_day if self.machines == 0 else math.inf

    @property
    def vs_oracle(self) -> float:
        return self.talk_min_per_hour / self.oracle if self.oracle else 0.0

    @property
    def speed(self) -> float:
        """Simulated agent-days per CPU-second."""
        return self.agent_days / self.cpu_seconds if self.cpu_seconds > 0 else math.inf

    def summary(self) -> tuple[object, ...]:
        """Everything but timings: equal for equal seeds."""
        return (self.scenario, self.policy, self.seed, self.agent_hours, self.talk_min_per_hour,
                self.humans, self.abandoned, self.dials, self.connects, self.leads_used,
                self.idle_gap_p95, self.results, self.events)
