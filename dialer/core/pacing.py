"""Pacing: how many calls to originate now.

Theory of operation
-------------------
A pacer is pure: the driver (the asyncio runtime on real calls, or the simulator on virtual
time) hands it a `PacingSnapshot` at every pacing tick and gets back the number of calls to
originate now; outcomes flow back through the `observe_*` hooks. No clock reads, no I/O, no
randomness. Every pacer caps its answer at `leads_available` and `channels_free`, and returns 0
when no agent is logged in (nobody ready, nobody on a call or in wrap-up) — except the
agentless pacer, which has no agents by definition. Modes and rules: `design/DIALING.md` §1-2.

* progressive: one call per ready agent, minus calls already ringing and humans already waiting.
* power: ``round(ratio × ready) − ringing`` (same subtraction of waiting humans).
* VICIdial ADAPT replica (`DIALING.md` §3, `AST_VDadapt.pl`): ``round(level × (ready + in-call))
  − calls in flight``; every 15 s ``level ×= 1 + avg(ready − waiting) / avg(agents)``, clamped
  to [1, 3], forced to 1.0 when the window's drop rate exceeds the target (ADAPT_HARD_LIMIT).
* predictive (model-based, ours; §3-4: beat the look-ahead yardstick). An `Estimator` learns
  online: the live-answer probability ``p`` (answered × human after AMD), the mean ring time
  to answer ``h`` (the look-ahead horizon), the empirical talk ``T`` and wrap ``W`` durations
  and the ring / end times of recent dials. An agent ``e`` s into a call is free by ``h`` with
  probability ``q = P(T + W ≤ e + h | T > e)`` (averaged over quantiles of ``W``), one ``w`` s
  into wrap-up with ``P(W ≤ w + h | W > w)``. Each call in flight brings a person with its
  own probability ``r_i``: a call that has rung ``a`` s, ``P(live to come | still ringing at
  a)`` by Bayes on the ring / end times seen (one that has rung past the usual answer time is
  most likely a no-answer); a call in AMD, the human rate; a claimed, undialed call, ``p``.
  With ``F = Σ Bernoulli(q_i)`` agents freed, the calls in flight and ``n`` new ones bring
  ``X = Σ Bernoulli(r_i) + Binomial(n, p)`` humans, of whom ``(X − (ready − waiting) − F)⁺``
  are abandoned. As ``(Y − K)⁺`` with ``Y = X + Σ Bernoulli(1 − q_i)`` and
  ``K = ready − waiting + #busy``, each Bernoulli(r) added to ``Y`` raises the expected
  abandons by exactly ``r·P(Y ≥ K)`` — the probability that answers already fill the free
  agents. Calls are added while the cohort's expected abandon rate ``E[(Y − K)⁺] / E[X]``
  stays ≤ ``θ``: exactly (pmf of ``Y`` on 0..K, O(K) per call) up to `exact_limit` agents,
  above it by an Edgeworth-corrected normal in closed form (see `_overflow`), whose variance
  also carries the answer rate's own standard error (a common error moves every call
  together: what a large team at a low answer rate is exposed to). ``θ = safety × target``,
  tapered linearly toward 0 as the window's rate ``abandoned / humans`` (the 3 % rule, §2)
  plus a margin for the next abandon climbs from ``taper_start × target`` to the target, but
  never below ``floor × target`` (the recovery budget; reached at 97 % of the target with the
  defaults and no lift, and held at and above the target). In teams of `lift_team` (30)
  agents or more, below the taper's end, the budget is lifted by up to `lift_max` (4): a
  running balance on the people the engine reached and abandoned (`_steer`), grown per
  person, cut per abandon, settling where the realised rate is ``lift_aim × target`` (half
  of it); no more of it is spent than the window's people could have earned (a saved lift
  after a restart, or on a new UK day: in a thin window one abandon is a large step). The
  model's caution left a 100-agent team at 0.3-1.8 % and a 500-agent one near 0;
  teams of 20 run near the taper's start already, and there the lift's excursions cost talk
  time. The taper's share is lifted too, so a lifted pacer tapers more steeply and reaches the
  same floor later (at about 99.3 % of the target at 4x, against 97 %). The floor: a cohort
  paced at a fraction of the target brings the window's rate down, and faster than progressive
  dialing would (it brings more people in to dilute the abandons; at 5 % live, progressive
  reaches a tenth of the talk time and the window hardly moves). Until `warmup_dials` outcomes
  are in, the pacer is progressive, which is also its least (never more humans than agents).
  Biases designed out:
  outcomes count only once their whole origination cohort has ended (fast failures arrive
  first, so a ramp-up would look like a low answer rate and trigger over-dialing), and running
  calls enter the residual-time estimate as censored (actuarially: a synchronised start must
  not look like short calls), within a consistent cohort: the calls started since the oldest
  finish kept, finished or running (`_Durations`; the last 200 finished calls against every
  running one undercounted the agents about to be free, the more the larger the team). The
  estimates survive a restart (`Estimator.export_state` / `restore_state`, kept in Redis by
  the runtime): a restored pacer needs no warm-up, takes the saved answer rate as twice what
  it was until today's first outcomes fit it, and drops it if they do not (a new list); its
  residual-time cohort starts afresh (the calls that ended while it was down are unseen), and
  its lift is kept too (`PredictivePacer.export_state`), unless today's calls do not fit the
  saved estimates (a new list: the lift goes back to 1, from where it takes about 1,400
  people with no abandon to grow back).
* predictive, time-resolved (opt-in, ``time_resolved=True``; measured, not better, so not the
  default: docs/PACING_BENCH.md). Instead of one horizon, checkpoints t every second up to
  10 s, then sparser, up to the longest answer time seen: the live answers due by t (each call
  in flight by its ring age, from the ring-outcome table) against the agents free by
  t + `answer_grace` (the 2 s a person may wait); the humans left without an agent are the
  largest excess over t (Hall's theorem), whose expectation is approximated by Clark's
  moments of a maximum of normals (`_timed`, `_clark`). Teams of `exact_limit` agents or
  fewer keep the exact one-horizon solution.

`RateLimiter` is a token bucket for the trunk's calls-per-second cap (§5): over any window of
length ``t`` it lets at most ``burst + cps × t`` calls through.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections import deque
from dataclasses import dataclass
from heapq import heappop, heappush
from typing import Protocol, assert_never, runtime_checkable

from dialer.core.model import DialMode

__all__ = [
    "STATE_VERSION",
    "AgentlessPacer",
    "Estimator",
    "Pacer",
    "PacingModel",
    "PacingSnapshot",
    "PowerPacer",
    "PredictivePacer",
    "PreviewPacer",
    "ProgressivePacer",
    "RateLimiter",
    "TimedPacingModel",
    "VicidialAdaptPacer",
    "make_pacer",
]


@dataclass(frozen=True, slots=True)
class PacingSnapshot:
    """What the pacer sees at one tick. Agent lists are disjoint: an agent is in exactly one of
    ready (counted), `busy_agents` (on a call) or `wrapping_agents` (in wrap-up)."""

    now: float
    ready_agents: int  # idle agents waiting for a call (not reserved)
    busy_agents: tuple[float, ...]  # one per agent on a call: seconds since the call reached it
    # One per agent in wrap-up: seconds spent in wrap-up so far. Separate from `busy_agents`
    # (not a subset), so each agent's elapsed time is measured from the right origin.
    wrapping_agents: tuple[float, ...]
    calls_ringing: int  # originated, not yet answered or failed (includes just-originated)
    calls_waiting: int  # answered humans waiting for an agent right now
    abandoned_in_window: int  # abandoned calls in the measuring window (30 days, or today in UK mode)
    humans_in_window: int  # live human answers in that window (the 3 % denominator)
    leads_available: int  # dialable leads (upper bound on calls)
    channels_free: int  # trunk channel cap minus calls in progress
    # Detail on `calls_ringing` (the defaults say "no detail": every call counts as fresh).
    # One per originated call not yet answered: seconds it has rung. A call that has rung past
    # the usual answer time is most likely a no-answer, so it counts for less.
    ringing_ages: tuple[float, ...] = ()
    calls_in_amd: int = 0  # answered calls still in AMD (a person or a machine, not yet known)
    # Of `abandoned_in_window`, those estimated rather than seen: in UK mode, the people AMD
    # took for machines (a share of its machine verdicts, whatever the pace).
    estimated_abandons: int = 0
    # When this snapshot is one matching group's (`dialer.routing.grouped.group_snapshot`):
    # the whole campaign's `busy_agents` and `wrapping_agents`. The pacer's estimator learns
    # talk and wrap-up times from every call of the campaign, so the running calls it weighs
    # them against must be the campaign's too (`Estimator.p_free`); None: the snapshot's own.
    team: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    # Counters that never go down, kept by the engine since it started (the window's counts
    # are re-read from the store and move with the window): people reached, counted at
    # answer, and of them those abandoned, counted at the 2 s limit; in UK mode both also
    # count the estimated abandons of the AMD verdicts seen (as the window does). The
    # predictive pacer steers its budget's lift on their increments (`PredictivePacer._steer`).
    people_reached: int = 0
    people_abandoned: int = 0

    def __post_init__(self) -> None:
        if min(self.ready_agents, self.calls_ringing, self.calls_waiting, self.abandoned_in_window,
               self.humans_in_window, self.leads_available, self.channels_free,
               self.calls_in_amd, self.estimated_abandons, self.people_abandoned) < 0:
            raise ValueError(f"negative count in {self!r}")
        if self.people_abandoned > self.people_reached:
            raise ValueError(f"more people abandoned than reached in {self!r}")
        if self.estimated_abandons > self.abandoned_in_window:
            raise ValueError(f"more estimated abandons than abandons in {self!r}")
        if len(self.ringing_ages) + self.calls_in_amd > self.calls_ringing:
            raise ValueError(f"more ringing ages and AMD calls than calls ringing in {self!r}")

    @property
    def calls_fresh(self) -> int:
        """Ringing calls without detail: claimed or placed just now (counted as fresh)."""
        return self.calls_ringing - len(self.ringing_ages) - self.calls_in_amd

    @property
    def agents_engaged(self) -> int:
        """Agents on a call or in wrap-up."""
        return len(self.busy_agents) + len(self.wrapping_agents)

    @property
    def window_abandon_rate(self) -> float:
        return self.abandoned_in_window / self.humans_in_window if self.humans_in_window else 0.0


class Pacer(Protocol):
    def decide(self, snap: PacingSnapshot) -> int:
        """Calls to originate now: 0 <= n <= min(leads_available, channels_free)."""
        ...

    def observe_dial(self, ring_seconds: float, answered: bool,
                     originated_at: float | None = None) -> None:
        """A dial ended ringing: answered after `ring_seconds`, or failed/unanswered.
        `originated_at` (on the clock of `PacingSnapshot.now`) lets the predictive estimator
        group outcomes by when their calls were placed."""
        ...

    def observe_human(self, answered_human: bool) -> None:
        """After AMD on an answered call: a live person (True) or a machine (False)."""
        ...

    def observe_talk(self, seconds: float) -> None:
        """A call connected to an agent ended after `seconds` of talk."""
        ...

    def observe_wrap(self, seconds: float) -> None:
        """An agent finished wrap-up after `seconds`."""
        ...

    def observe_abandon(self) -> None:
        """A live person was not connected to an agent in time."""
        ...


def _clamp(n: int, snap: PacingSnapshot) -> int:
    return max(0, min(n, snap.leads_available, snap.channels_free))


def _progressive(snap: PacingSnapshot) -> int:
    # A waiting human is about to take a ready agent, so it counts like a ringing call.
    return snap.ready_agents - snap.calls_waiting - snap.calls_ringing


class _Unobservant:
    """Observation hooks for pacers that learn nothing from outcomes."""

    __slots__ = ()

    def observe_dial(self, ring_seconds: float, answered: bool, originated_at: float | None = None) -> None:
        pass

    def observe_human(self, answered_human: bool) -> None:
        pass

    def observe_talk(self, seconds: float) -> None:
        pass

    def observe_wrap(self, seconds: float) -> None:
        pass

    def observe_abandon(self) -> None:
        pass


class ForwardingObservations:
    """Observation hooks for a pacer that wraps another (`inner`) and lets it learn."""

    inner: Pacer

    def observe_dial(self, ring_seconds: float, answered: bool, originated_at: float | None = None) -> None:
        self.inner.observe_dial(ring_seconds, answered, originated_at)

    def observe_human(self, answered_human: bool) -> None:
        self.inner.observe_human(answered_human)

    def observe_talk(self, seconds: float) -> None:
        self.inner.observe_talk(seconds)

    def observe_wrap(self, seconds: float) -> None:
        self.inner.observe_wrap(seconds)

    def observe_abandon(self) -> None:
        self.inner.observe_abandon()


class PreviewPacer(_Unobservant):
    """Preview calls are placed on the agent's request, never by the pacer."""

    __slots__ = ()

    def decide(self, snap: PacingSnapshot) -> int:
        return 0


class ProgressivePacer(_Unobservant):
    """One call per ready agent, minus calls already ringing and humans already waiting.

    Assumes ringing calls are not matched to a reserved agent; if the runtime reserves the agent
    at originate time it must count that agent as ready (and the call as ringing) or the
    reservation is subtracted twice."""

    __slots__ = ()

    def decide(self, snap: PacingSnapshot) -> int:
        if snap.ready_agents == 0:
            return 0
        return _clamp(_progressive(snap), snap)


class PowerPacer(_Unobservant):
    """A fixed number of calls per ready agent: ``round(ratio × ready) − ringing``.

    `round` is Python's (half to even), as C's ``%.0f`` that VICIdial uses for its goal."""

    __slots__ = ("ratio",)

    def __init__(self, ratio: float) -> None:
        if not ratio > 0 or math.isinf(ratio):
            raise ValueError(f"power ratio must be a positive number, not {ratio!r}")
        self.ratio = ratio

    def decide(self, snap: PacingSnapshot) -> int:
        if snap.ready_agents == 0:
            return 0
        free = max(0, snap.ready_agents - snap.calls_waiting)
        return _clamp(round(self.ratio * free) - snap.calls_ringing, snap)


class AgentlessPacer(_Unobservant):
    """Voice broadcast: no agents, so only leads, channels (and the CPS limiter, applied by the
    driver) bound the calls; `max_in_flight` optionally caps calls ringing at once."""

    __slots__ = ("max_in_flight",)

    def __init__(self, max_in_flight: int | None = None) -> None:
        if max_in_flight is not None and max_in_flight < 0:
            raise ValueError(f"max_in_flight must be >= 0, not {max_in_flight}")
        self.max_in_flight = max_in_flight

    def decide(self, snap: PacingSnapshot) -> int:
        n = snap.leads_available
        if self.max_in_flight is not None:
            n = min(n, self.max_in_flight - snap.calls_ringing - snap.calls_waiting)
        return _clamp(n, snap)


class VicidialAdaptPacer(_Unobservant):
    """A replica of VICIdial's ADAPT_HARD_LIMIT dial method, the yardstick to beat.

    Goal (``AST_VDauto_dial.pl``): ``round(level × (ready + in-call agents))`` calls in flight,
    where in flight counts ringing, waiting and agent-connected calls; agents in wrap-up (paused
    for disposition in VICIdial) count in neither. Level (``AST_VDadapt.pl``): (ready, waiting,
    logged-in) is sampled once per `sample_every` seconds of `now`; every `adjust_every` seconds
    ``level ×= 1 + (avg(ready − waiting) + dl_diff_target) / avg(logged-in)``, scaled by the
    intensity setting, clamped to [1, max_level], and set to 1.0 when more than
    `min_humans_for_brake` humans were answered in the window and its drop rate exceeds the
    target. Not replicated: the 1-minute "drops over 50 %" halving and the tapered variants.
    """

    __slots__ = ("_agents_sum", "_next_sample", "_period_start", "_ready_sum", "_samples",
                 "_waiting_sum", "adjust_every", "dl_diff_target", "intensity", "level",
                 "max_level", "min_humans_for_brake", "sample_every", "target")

    def __init__(self, target: float = 0.03, *, initial_level: float = 1.0, max_level: float = 3.0,
                 intensity: float = 0.0, dl_diff_target: float = 0.0, adjust_every: float = 15.0,
                 sample_every: float = 1.0, min_humans_for_brake: int = 50) -> None:
        if not 0 < target < 1:
            raise ValueError(f"abandon target must be in (0, 1), not {target!r}")
        if not 1.0 <= initial_level <= max_level:
            raise ValueError(f"need 1 <= initial_level <= max_level, got {initial_level}, {max_level}")
        if not (adjust_every > 0 and sample_every > 0):
            raise ValueError("adjust_every and sample_every must be positive")
        self.target = target
        self.level = initial_level
        self.max_level = max_level
        self.intensity = intensity
        self.dl_diff_target = dl_diff_target
        self.adjust_every = adjust_every
        self.sample_every = sample_every
        self.min_humans_for_brake = min_humans_for_brake
        self._period_start: float | None = None
        self._next_sample = -math.inf
        self._samples = 0
        self._ready_sum = 0.0
        self._waiting_sum = 0.0
        self._agents_sum = 0.0

    def decide(self, snap: PacingSnapshot) -> int:
        self._tick(snap)
        incall = len(snap.busy_agents)
        agents = snap.ready_agents + incall
        if agents == 0:
            return 0
        in_flight = snap.calls_ringing + snap.calls_waiting + incall
        return _clamp(round(self.level * agents) - in_flight, snap)

    def _tick(self, snap: PacingSnapshot) -> None:
        now = snap.now
        if self._period_start is None:
            self._period_start = now
        if now >= self._next_sample:
            self._samples += 1
            self._ready_sum += snap.ready_agents
            self._waiting_sum += snap.calls_waiting
            self._agents_sum += snap.ready_agents + snap.agents_engaged
            self._next_sample = now + self.sample_every
        if now - self._period_start >= self.adjust_every:
            self._adjust(snap)
            self._period_start = now
            self._samples = 0
            self._ready_sum = self._waiting_sum = self._agents_sum = 0.0

    def _adjust(self, snap: PacingSnapshot) -> None:
        if self._samples and self._agents_sum > 0:
            differential = (self._ready_sum - self._waiting_sum) / self._samples + self.dl_diff_target
            mul = differential / (self._agents_sum / self._samples)
            intensity = self.intensity / 100
            mul *= abs(intensity - 1) if mul < 0 else intensity + 1
            self.level = min(self.max_level, max(1.0, self.level * (1 + mul)))
        if snap.humans_in_window > self.min_humans_for_brake and snap.window_abandon_rate > self.target:
            self.level = 1.0


# --- the estimator -------------------------------------------------------------------------


class _Ewma:
    """Mean seeded with a prior worth `prior_weight` observations, then a running mean that
    becomes exponentially weighted with memory `memory` (alpha = 1/memory)."""

    __slots__ = ("memory", "value", "weight")

    def __init__(self, prior: float, prior_weight: float, memory: int) -> None:
        self.value = prior
        self.weight = prior_weight
        self.memory = memory

    def add(self, x: float) -> None:
        self.weight = min(self.weight + 1.0, float(self.memory))
        self.value += (x - self.value) / self.weight

    def add_group(self, total: float, count: int) -> None:
        """`count` observations summing to `total`, in no particular order: the expected result
        of adding them one by one in a random order (so a batch's order — fast failures first —
        cannot tilt the estimate). Keeping the prior's share P, value = P·value + (1 − P)·mean."""
        if count <= 0:
            return
        w, memory = self.weight, float(self.memory)
        running = min(float(count), max(0.0, memory - w))  # steps still in the running-mean phase
        keep = w / (w + running) * (1.0 - 1.0 / memory) ** (count - running)
        self.value = keep * self.value + (1.0 - keep) * (total / count)
        self.weight = min(w + count, memory)


class _Durations:
    """Durations of finished calls (talks or wrap-ups), kept sorted so that residual-time
    questions cost two bisections. The last `size` give the mean (shrunk toward a prior worth
    `prior_weight` samples), the quantiles and the saved state.

    With `cohort`, residual times are estimated on a consistent cohort: the calls that started
    at or after `_t0`, each either finished (its duration among `_members`) or still running
    (censored at its age). `_t0` is the finish time of the last finish let go: every call that
    started after it and has finished is still kept. The finishes kept number
    max(`size`, `_COHORT_RUNNING` × the campaign's running calls at the last question): the
    cohort spans about that many mean durations whatever the team's size, and it shrinks for
    good (`_t0` only moves on) when the running calls do — which costs samples, not bias.
    Without it (the estimator before), the last `size` finished durations stand against every
    running call as censored: a large team's running calls outnumber the finished ones, and
    the residual times came out long (agents free within 9 s undercounted by 3 % at 20
    agents, 9 % at 100, 20 % at 500; docs/PACING_BENCH.md)."""

    __slots__ = ("_finishes", "_keep", "_members", "_order", "_since_fsum", "_sorted", "_starts",
                 "_sum", "_t0", "cohort", "prior", "prior_weight", "size")

    def __init__(self, size: int, prior: float, prior_weight: float, cohort: bool = False) -> None:
        self.size = size
        self.prior = prior
        self.prior_weight = prior_weight
        self._order: deque[float] = deque()
        self._sorted: list[float] = []
        self._sum = 0.0
        self._since_fsum = 0
        self.cohort = cohort
        self._finishes: deque[float] = deque()  # finish times of the finishes kept, oldest first
        self._members: list[float] = []  # the cohort's finished durations, sorted
        self._starts: list[tuple[float, float]] = []  # heap: (start, duration) of the members
        self._t0 = -math.inf
        self._keep = size

    def __len__(self) -> int:
        return len(self._order)

    def samples(self) -> list[float]:
        """The durations kept, oldest first."""
        return list(self._order)

    def replace(self, samples: list[float]) -> None:
        """Keep `samples` (oldest first; the last `size` of them) instead."""
        self._order = deque(max(0.0, x) for x in samples[-self.size:])
        self._sorted = sorted(self._order)
        self._sum = math.fsum(self._sorted)
        self._since_fsum = 0

    def add(self, x: float, now: float = -math.inf) -> None:
        """Keep duration `x` of a call that ended at `now` (the estimator's clock, -inf before
        its first tick: such a call counts as started before any other, and leaves the cohort
        at the first finite `t0`; no call ends before a campaign's first pacing decision, and
        for an estimator fed without ticks the cohort keeps at most `_keep` of them)."""
        x = max(0.0, x)
        if self.cohort and (now > -math.inf or len(self._members) < self._keep):
            start = now - x
            self._finishes.append(now)
            if start >= self._t0:
                insort(self._members, x)
                heappush(self._starts, (start, x))
            self._trim()
        if len(self._order) >= self.size:
            old = self._order.popleft()
            del self._sorted[bisect_left(self._sorted, old)]
            self._sum -= old
        self._order.append(x)
        insort(self._sorted, x)
        self._sum += x
        self._since_fsum += 1
        if self._since_fsum >= self.size:  # wash out rounding drift of the running sum
            self._sum = math.fsum(self._sorted)
            self._since_fsum = 0

    def begin(self, now: float) -> None:
        """Start the cohort afresh at `now`: after a restart, the calls that ended while the
        dialer was down are unseen, and the cohort must not lack them (it would hold only the
        long calls still running)."""
        self._t0 = max(self._t0, now)
        self._finishes.clear()
        self._evict()

    def _trim(self) -> None:
        finishes = self._finishes
        t0 = self._t0
        while len(finishes) > self._keep:
            t0 = max(t0, finishes.popleft())
        if t0 > self._t0:
            self._t0 = t0
            self._evict()

    def _evict(self) -> None:
        starts, members, t0 = self._starts, self._members, self._t0
        while starts and starts[0][0] < t0:
            _, x = heappop(starts)
            del members[bisect_left(members, x)]

    def _at_risk(self, elapsed: tuple[float, ...], now: float,
                 running_all: tuple[float, ...] | None) -> tuple[list[float], list[float]]:
        """The finished durations and the running ages (both sorted) the residual times are
        estimated on: the cohort's with `cohort`, else the last `size` finished ones and every
        running call. `running_all`: every running call of the campaign, when `elapsed` are
        one matching group's (the finished ones are every group's: the at-risk set must be
        too, or the group's agents look about to be free, more so the more groups)."""
        population = elapsed if running_all is None else running_all
        if not self.cohort:
            return self._sorted, sorted(population)
        # The finishes kept follow the campaign's running calls (they drop as well as grow):
        # the cohort spans about `_COHORT_RUNNING` mean durations.
        self._keep = max(self.size, _COHORT_RUNNING * len(population))
        self._trim()
        running = sorted(population)
        if self._t0 > -math.inf and running and running[-1] > now - self._t0:
            del running[bisect_right(running, now - self._t0):]  # started before the cohort
        return self._members, running

    @property
    def mean(self) -> float:
        return (self._sum + self.prior * self.prior_weight) / (len(self._order) + self.prior_weight)

    def quantiles(self, k: int) -> list[float]:
        """`k` equally spaced quantiles (at (i + ½)/k) of the samples; the mean alone while
        there are fewer than 4·k samples."""
        s = self._sorted
        n = len(s)
        if n < 4 * k:
            return [self.mean]
        return [s[min(n - 1, int((i + 0.5) * n / k))] for i in range(k)]

    def ends_within_many(self, elapsed: tuple[float, ...], windows: list[float],
                         actuarial: bool = False, now: float = math.inf,
                         running_all: tuple[float, ...] | None = None) -> list[list[float]]:
        """P(D <= e + w | D > e) for each e in `elapsed` (durations still running), one list
        per window w of `windows`, sharing the bisections that depend on e only.

        The empirical residual over the finished samples, with the running durations as
        censored samples (a running one at c >= e + w is known to outlast the window) —
        without them, a ramp-up, whose first finished calls are all short ones, would look like
        short calls. A running one in between (e <= c < e + w) is, with `actuarial`, at risk
        for half the window (the life-table rule: q = d / (n − w/2)); without it, left out —
        which after a synchronised start (every agent's first call began within the same
        minute, so all are in between) takes the few short calls seen for the whole story and
        expects most agents free at once (over-dialing, measured). Two pseudo-samples of an
        exponential tail with the same mean (memoryless) carry the estimate where the data thin
        out (few samples, or e beyond them all). A window of 0 or less gives 0. `now` is the
        clock the running ages are measured at (with `cohort`, the running calls started before
        the cohort are left out; inf: none is). `running_all`: every running call of the
        campaign, when `elapsed` are one matching group's (`_at_risk`)."""
        mean = self.mean
        priors = [2.0 * -math.expm1(-w / mean) if mean > 0.0 else 2.0 for w in windows]
        outs: list[list[float]] = [[] for _ in windows]
        s, running = self._at_risk(elapsed, now, running_all)
        n = len(s)
        m = len(running)
        live = [(w, prior2, out) for w, prior2, out in zip(windows, priors, outs, strict=True)
                if w > 0.0]
        for w, _, out in zip(windows, priors, outs, strict=True):
            if w <= 0.0:
                out.extend(0.0 for _ in elapsed)
        for e in elapsed:
            lo = bisect_right(s, e)
            base = n - lo + m + 2.0
            start = bisect_left(running, e) if actuarial else 0
            for w, prior2, out in live:
                beyond = bisect_left(running, e + w)
                at_risk = base - beyond
                if actuarial:
                    at_risk += 0.5 * (beyond - start)
                out.append((bisect_right(s, e + w, lo) - lo + prior2) / at_risk)
        return outs


def _age_bins(ages: tuple[float, ...], last: int) -> list[tuple[int, int]]:
    """(row, calls) of ring ages grouped in `_AGE_STEP` bins (floored: a younger age weighs
    more), rows 0..`last`, ages beyond the last row counted in it; by bisection on the sorted
    ages (a 100-agent campaign at 5 % live has ~1,000 calls ringing, 4 decisions a second)."""
    out: list[tuple[int, int]] = []
    ordered = sorted(ages)
    n = len(ordered)
    done = 0
    for i in range(last):
        if done == n:
            break
        upto = bisect_left(ordered, (i + 1) * _AGE_STEP, done)
        if upto > done:
            out.append((i, upto - done))
            done = upto
    if done < n:
        out.append((last, n - done))
    return out


class _RingOutcomes:
    """The last `size` dial outcomes as (seconds from originate to answer or to the end,
    answered), answered and unanswered kept sorted apart, and the survival ratio
    ``ρ(e) = S_u(e) / S_a(e)`` (S: the share still ringing after e s) tabulated every
    `_AGE_STEP` s, rebuilt once enough new outcomes are in.

    Shrunk toward "age tells nothing" (ρ = 1) by `_AGE_PRIOR` pseudo-outcomes of each kind
    that never end, so that few samples move the weights little: from a handful of answered
    calls the tail of the ring times looks too short, and a call still ringing would be
    written off too soon (over-dialing at low answer rates, measured)."""

    __slots__ = ("_arrive", "_checkpoints", "_fresh", "_stale", "answered", "order", "ratio", "size",
                 "unanswered")

    def __init__(self, size: int) -> None:
        self.size = size
        self.order: deque[tuple[float, bool]] = deque()
        self.answered: list[float] = []
        self.unanswered: list[float] = []
        self.ratio: list[float] = [1.0]
        # The time-resolved model's checkpoints (seconds from now: `_CHECKPOINTS` below the
        # longest ring time of an answered call, then that; empty until `_MIN_ANSWERS` are in)
        # and, per age bin, the share of the answered calls still ringing at that age that
        # answer by each checkpoint.
        # Built on demand (`arrivals`), so the one-horizon pacer pays nothing for them.
        self._checkpoints: tuple[float, ...] = ()
        self._arrive: list[tuple[float, ...]] = []
        self._stale = True  # the ratio table was rebuilt since they were
        self._fresh = 0  # outcomes added since the table was built

    def add(self, x: float, answered: bool) -> None:
        if len(self.order) >= self.size:
            old, was = self.order.popleft()
            kept = self.answered if was else self.unanswered
            del kept[bisect_left(kept, old)]
        self.order.append((x, answered))
        insort(self.answered if answered else self.unanswered, x)
        self._fresh += 1

    def replace(self, outcomes: list[tuple[float, bool]]) -> None:
        """Keep `outcomes` (oldest first; the last `size` of them) instead; the table is
        rebuilt at its next use."""
        self.order = deque(outcomes[-self.size:])
        self.answered = sorted(x for x, a in self.order if a)
        self.unanswered = sorted(x for x, a in self.order if not a)
        self._fresh = max(1, len(self.order))

    def table(self) -> list[float]:
        """ρ at 0, step, 2·step, … up to the longest outcome seen (then flat)."""
        if (self._fresh and self._fresh * 20 >= len(self.order)) or self._fresh >= 64:
            self._fresh = 0
            a, u = self.answered, self.unanswered
            na, nu = len(a), len(u)
            top = max(a[-1] if a else 0.0, u[-1] if u else 0.0)
            out = []
            for i in range(int(top / _AGE_STEP) + 2):
                e = i * _AGE_STEP
                s_a = (na - bisect_right(a, e) + _AGE_PRIOR) / (na + _AGE_PRIOR)
                s_u = (nu - bisect_right(u, e) + _AGE_PRIOR) / (nu + _AGE_PRIOR)
                out.append(s_u / s_a)
            self.ratio = out
            self._stale = True
        return self.ratio

    def arrivals(self) -> tuple[tuple[float, ...], list[tuple[float, ...]]]:
        """The checkpoints and, per age bin of `table` (same length), the arrival shares (see
        __init__). The shares ignore the shrinkage's pseudo-answers (they would never arrive:
        not conservative); an age past every answer seen arrives at once (conservative)."""
        bins = len(self.table())
        if self._stale:
            self._stale = False
            self._build_arrivals(bins)
        return self._checkpoints, self._arrive

    def _build_arrivals(self, bins: int) -> None:
        a = self.answered
        na = len(a)
        if na < _MIN_ANSWERS:
            self._checkpoints = ()
            self._arrive = []
            return
        top = a[-1]
        marks = (*(t for t in _CHECKPOINTS if t < top), max(_AGE_STEP, top))
        arrive = []
        for i in range(bins):
            e = i * _AGE_STEP
            done = bisect_right(a, e)
            left = na - done
            if left == 0:
                arrive.append(tuple(1.0 for _ in marks))
            else:
                arrive.append(tuple((bisect_right(a, e + t, done) - done) / left for t in marks))
        self._checkpoints = marks
        self._arrive = arrive


_AGE_STEP = 0.25  # seconds: the ring-age table's resolution (ages are floored: conservative)
_AGE_PRIOR = 5.0  # pseudo-outcomes of each kind that never end (shrinkage toward ρ = 1)
_MIN_ANSWERS = 20  # answered outcomes before the time-resolved model has checkpoints
# Checkpoints of the time-resolved model, seconds from now: every second while most answers
# arrive, then sparser, up to the longest ring time of an answered call (every answer to come).
# (Quantiles of the ring times alone were tried first: they start at ~6 s and miss the calls
# in flight answering in the next few seconds, which took agents the model counted free.)
_CHECKPOINTS = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.0, 14.0, 17.0, 20.0)
# The layout of `Estimator.export_state`; a state of another version is refused (started cold).
STATE_VERSION = 1
_RESTORE_CHECK = 30  # today's dials before a restored answer rate is checked against them
_RESTORE_MIN_ANSWERS = 20.0  # a saved answer rate resting on fewer answers is not taken up
_RESTORE_CHECK_HUMAN = 15  # today's AMD verdicts before a restored human share is checked


def _refit(check: tuple[float, float, int, int], est: _Ewma, prior: float, prior_weight: float,
           trials: int, hits: int, least: int) -> tuple[tuple[float, float, int, int] | None, bool]:
    """One step of checking a restored rate against today's outcomes. `check` is (the
    restored rate p, its weight, today's trials n and hits k so far); `trials` and `hits` are
    the new ones. Once `least` trials are in, they fit while |k − n·p| ≤ 3·sqrt(n·p·(1 − p))
    + 1; if not, the restored rate is dropped: `est` becomes today's rate, shrunk toward the
    cold `prior` as at a cold start. Returns the next `check` (None once decided: dropped, or
    outweighed by today's trials) and whether it was dropped."""
    p, weight, n, k = check
    n, k = n + trials, k + hits
    if n < least:
        return (p, weight, n, k), False
    if abs(k - n * p) > 3.0 * math.sqrt(n * p * (1.0 - p)) + 1.0:
        est.value = (prior * prior_weight + k) / (prior_weight + n)
        est.weight = min(prior_weight + n, float(est.memory))
        return None, True
    return (None if n >= weight else (p, weight, n, k)), False


_STATE_ROWS = 100_000  # most rows a state's list may hold (the estimator keeps ~2,000)
_MAX_DURATION = 86_400.0  # the longest talk or wrap-up time a state may hold (s)
_MAX_RING = 3_600.0  # the longest ring time a state may hold (s)
_MAX_TIME = 1e12  # origination times: POSIX seconds (or a simulator's clock)
_MAX_COUNT = 1e12  # dials, abandons, weights


def _state_float(x: object, lo: float, hi: float) -> float | None:
    """`x` as a float if it is a number (not a bool) in [lo, hi]; else None (NaN, infinities
    and integers too large for a float included)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    try:
        value = float(x)
    except OverflowError:
        return None
    return value if lo <= value <= hi else None


def _state_int(state: dict[str, object], key: str) -> int:
    value = state.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_COUNT:
        raise ValueError(f"pacer state: {key} must be a whole number in [0, {_MAX_COUNT:g}], "
                         f"not {value!r}"[:300])
    return value


_FLAG = (0.0, 1.0)  # a row's "answered" cell: exactly 0 or 1


def _state_rows(state: dict[str, object], key: str,
                *cells: tuple[float, float]) -> list[tuple[float, ...]]:
    """A list of rows of len(cells) numbers (a bare number each when there is one cell), each
    in its cell's [lo, hi]; a `_FLAG` cell must be exactly 0 or 1."""
    rows = state.get(key)
    if not isinstance(rows, list) or len(rows) > _STATE_ROWS:
        raise ValueError(f"pacer state: {key} must be a list of at most {_STATE_ROWS} rows")
    width = len(cells)
    out: list[tuple[float, ...]] = []
    for i, row in enumerate(rows):
        items = row if width > 1 else [row]
        values = [_state_float(x, lo, hi) for x, (lo, hi) in zip(items, cells, strict=False)] \
            if isinstance(items, list) and len(items) == width else [None]
        if any(v is None or (bounds is _FLAG and v not in _FLAG)
               for v, bounds in zip(values, cells, strict=False)):
            raise ValueError(f"pacer state: {key}[{i}] is not {width} number(s) in range: "
                             f"{row!r}"[:300])
        out.append(tuple(v for v in values if v is not None))
    return out


def _state_numbers(state: dict[str, object], key: str) -> list[float]:
    return [row[0] for row in _state_rows(state, key, (0.0, _MAX_DURATION))]


def _state_ewma(state: dict[str, object], key: str, hi: float) -> tuple[float, float]:
    """(value, weight) of a rate or mean kept by `_Ewma`, the value in [0, hi]."""
    row = state.get(key)
    value = weight = None
    if isinstance(row, list) and len(row) == 3:
        value, weight = _state_float(row[0], 0.0, hi), _state_float(row[1], 0.0, _MAX_COUNT)
    if value is None or weight is None:
        raise ValueError(f"pacer state: {key} must be [value, weight, memory], the value in "
                         f"[0, {hi:g}], not {row!r}"[:300])
    return value, weight


class PacingModel(Protocol):
    """What the predictive pacer needs to know about the campaign's calls, and the outcomes it
    is fed. `Estimator` learns online; a simulator may pass the true parameters instead (and
    ignore the observations)."""

    @property
    def dials(self) -> int:
        """Dial outcomes the estimates rest on (the pacer is progressive below `warmup_dials`)."""
        ...

    def advance(self, now: float) -> None:
        """Called with each snapshot's `now` before the model is queried."""
        ...

    @property
    def p_live(self) -> float:
        """Probability that a dial reaches a live person."""
        ...

    @property
    def ring_time(self) -> float:
        """Mean seconds from originate to answer (for answered calls)."""
        ...

    @property
    def p_live_error(self) -> float:
        """Relative standard error of `p_live` (0: known exactly)."""
        ...

    def p_free(self, talking: tuple[float, ...], wrapping: tuple[float, ...], horizon: float,
               team: tuple[tuple[float, ...], tuple[float, ...]] | None = None) -> list[float]:
        """For each agent on a call (`talking`: seconds into the call) then each agent in
        wrap-up (`wrapping`: seconds into wrap-up), P(free — talk and wrap done — within
        `horizon` seconds). `team`: the whole campaign's (talking, wrapping) when these are
        one group's (`PacingSnapshot.team`)."""
        ...

    def live_groups(self, ages: tuple[float, ...], in_amd: int) -> list[tuple[float, int]]:
        """For the calls that have rung `ages` s unanswered and the `in_amd` answered calls
        awaiting the AMD verdict: (P(the call brings a live person), how many calls) groups."""
        ...

    def live_to_come(self, ages: tuple[float, ...], in_amd: int, out: list[float]) -> None:
        """As `live_groups`, one probability per call appended to `out` (ages' calls in
        ascending age, then the AMD calls)."""
        ...

    def observe_dial(self, ring_seconds: float, answered: bool,
                     originated_at: float | None = None) -> None: ...

    def observe_human(self, answered_human: bool) -> None: ...

    def observe_talk(self, seconds: float) -> None: ...

    def observe_wrap(self, seconds: float) -> None: ...

    def observe_abandon(self) -> None: ...


@runtime_checkable
class TimedPacingModel(PacingModel, Protocol):
    """A `PacingModel` that also knows *when*: the time-resolved decision's checkpoints, the
    answer-time shares of the calls in flight (`Estimator.timed_groups`) and the agents' free
    probabilities at several horizons at once (`Estimator.p_free_many`)."""

    @property
    def checkpoints(self) -> tuple[float, ...]: ...

    def timed_groups(self, ages: tuple[float, ...], in_amd: int
                     ) -> tuple[list[tuple[float, int, tuple[float, ...]]], tuple[float, ...]]: ...

    def p_free_many(self, talking: tuple[float, ...], wrapping: tuple[float, ...],
                    horizons: list[float],
                    team: tuple[tuple[float, ...], tuple[float, ...]] | None = None
                    ) -> list[list[float]]: ...


class Estimator:
    """Online estimates for the predictive pacer, seeded with conservative priors (everyone
    answers, quickly; calls are long), so that little data means few calls.

    Dial outcomes are folded in origination order, once every call placed at the same time
    has surely ended (`maturity` seconds, raised to the longest ring seen): fast failures
    (busy, congestion: 1-3 s) come back long before answers (~10 s) and no-answers (the ring
    timeout), so counting outcomes as they arrive would make the answer rate look low — and
    the pacer dial hard — exactly when dialing ramps up. Pass `originated_at` to
    `observe_dial`; without it an outcome is stamped ``latest now − ring_seconds``, up to one
    pacing tick early (`advance`, called by the pacer with each snapshot, keeps that clock)."""

    __slots__ = ("_answered", "_begin", "_clock", "_human", "_old_seq", "_outcomes", "_pending", "_prior",
                 "_restored", "_restored_human", "_ring", "_seq", "_talk", "_wrap", "abandons",
                 "answers_in_memory", "base_memory", "dials", "maturity", "max_memory",
                 "rate_restored", "restore_doubt", "restored_dials", "restored_refused", "ring_age",
                 "wrap_points")

    def __init__(self, *, memory: int = 200, samples: int = 200, prior_answer: float = 1.0,
                 prior_human: float = 1.0, prior_ring: float = 10.0, prior_talk: float = 120.0,
                 prior_wrap: float = 15.0, prior_weight: float = 5.0, maturity: float = 35.0,
                 ring_samples: int = 2000, ring_age: bool = True, wrap_points: int = 3,
                 answers_in_memory: int = 100, max_memory: int = 5000,
                 restore_doubt: float = 2.0, cohort: bool = True) -> None:
        if memory < 1 or samples < 1 or ring_samples < 1:
            raise ValueError("memory, samples and ring_samples must be >= 1")
        if wrap_points < 0:
            raise ValueError(f"wrap_points must be >= 0, not {wrap_points}")
        if not restore_doubt >= 1:
            raise ValueError(f"restore_doubt must be >= 1, not {restore_doubt!r}")
        # Ablation switches (docs/PACING_BENCH.md): `ring_age` False counts every ringing call as
        # fresh; `wrap_points` 0 takes the wrap-up ahead of a talking agent as its mean and
        # leaves calls still running inside the look-ahead out of the residual-time estimate.
        self.ring_age = ring_age
        self.wrap_points = wrap_points
        # The answer rate's memory, in dials, grows to hold about `answers_in_memory` answers
        # (0: fixed at `memory`): 200 dials at 5 % answer are 10 answers, a ±30 % estimate, and
        # a low estimate over-dials every call in flight at once (measured at 100-500 agents).
        self.answers_in_memory = answers_in_memory
        self.base_memory = memory
        self.max_memory = max(memory, max_memory)
        self._outcomes = _RingOutcomes(ring_samples)
        self._answered = _Ewma(prior_answer, prior_weight, memory)
        self._human = _Ewma(prior_human, prior_weight, memory)
        self._ring = _Ewma(prior_ring, prior_weight, memory)
        # `cohort` False: the residual times of the estimator before (`_Durations`), biased
        # toward long ones in large teams; kept for the "baseline" policy.
        self._talk = _Durations(samples, prior_talk, prior_weight, cohort)
        self._wrap = _Durations(samples, prior_wrap, prior_weight, cohort)
        self._begin = False  # restored: the cohorts start afresh at the next `advance`
        self._pending: list[tuple[float, int, float, bool]] = []  # heap: (originated, seq, ring, answered)
        self._seq = 0
        self._clock = -math.inf
        self.maturity = maturity
        self.dials = 0  # dial outcomes folded into the estimates (since start or restore)
        self.abandons = 0
        self._prior = (prior_answer, prior_human, prior_weight)
        # After `restore_state`: the restored answer rate and weight, and today's dials and
        # answers so far, until today's outcomes have outweighed it (`_check_restored`).
        self._restored: tuple[float, float, int, int] | None = None
        # The same for the share of answers that are people, and today's AMD verdicts.
        self._restored_human: tuple[float, float, int, int] | None = None
        self._old_seq = 0  # outcomes up to this sequence number were restored, not today's
        self.restored_dials = 0  # the dials the restored estimates rested on
        # A restored answer rate is taken as this many times higher until today's first
        # outcomes fit it (`p_answer`): a new list answering more would flood the agents.
        self.restore_doubt = restore_doubt
        self.restored_refused = False  # today's answers did not fit a restored rate
        self.rate_restored = False  # the last `restore_state` took up the saved answer rate

    def advance(self, now: float) -> None:
        """Move the estimator's clock; fold in the outcomes of calls placed before now − maturity."""
        self._clock = max(self._clock, now)
        if self._begin:
            self._begin = False
            self._talk.begin(self._clock)
            self._wrap.begin(self._clock)
        pending = self._pending
        horizon = now - self.maturity
        if not pending or pending[0][0] > horizon:
            return
        count = answered = new = new_answered = 0
        ring_sum = 0.0
        outcomes = self._outcomes
        old_seq = self._old_seq
        while pending and pending[0][0] <= horizon:
            _, seq, ring, was_answered = heappop(pending)
            outcomes.add(ring, was_answered)
            count += 1
            if seq > old_seq:
                new += 1
                new_answered += was_answered
            if was_answered:
                answered += 1
                ring_sum += ring
        self.dials += count
        self._answered.add_group(float(answered), count)
        self._ring.add_group(ring_sum, answered)
        if self._restored is not None and new:
            self._check_restored(new, new_answered)
        if self.answers_in_memory:
            wanted = self.answers_in_memory / max(self._answered.value, 1e-3)
            self._answered.memory = int(min(self.max_memory, max(self.base_memory, wanted)))

    def observe_dial(self, ring_seconds: float, answered: bool, originated_at: float | None = None) -> None:
        ring = max(0.0, ring_seconds)
        self.maturity = max(self.maturity, ring + 1.0)
        if originated_at is None:  # stamp from the latest snapshot: late by up to one tick
            originated_at = (self._clock if self._clock > -math.inf else 0.0) - ring
        self._seq += 1
        heappush(self._pending, (originated_at, self._seq, ring, answered))

    def observe_human(self, answered_human: bool) -> None:
        self._human.add(1.0 if answered_human else 0.0)
        if self._restored_human is not None:
            self._restored_human, refused = _refit(
                self._restored_human, self._human, self._prior[1], self._prior[2], 1,
                int(answered_human), _RESTORE_CHECK_HUMAN)
            self.restored_refused |= refused

    def observe_talk(self, seconds: float) -> None:
        self._talk.add(seconds, self._clock)

    def observe_wrap(self, seconds: float) -> None:
        self._wrap.add(seconds, self._clock)

    def observe_abandon(self) -> None:
        self.abandons += 1

    def export_state(self) -> dict[str, object]:
        """What the estimator has learnt, as JSON-able data (a few tens of kilobytes), to carry
        it over a restart or into the next day (`restore_state`). Outcomes not yet folded in
        (`advance`) go with it, stamped with their origination times."""
        def ewma(e: _Ewma) -> list[float]:
            return [e.value, e.weight, float(e.memory)]
        return {
            "version": STATE_VERSION,
            "dials": self.dials,
            "abandons": self.abandons,
            "answered": ewma(self._answered),
            "human": ewma(self._human),
            "ring": ewma(self._ring),
            "talk": [round(x, 3) for x in self._talk.samples()],
            "wrap": [round(x, 3) for x in self._wrap.samples()],
            "outcomes": [[round(x, 3), int(a)] for x, a in self._outcomes.order],
            "pending": [[o, round(r, 3), int(a)] for o, _, r, a in sorted(self._pending)],
        }

    def restore_state(self, state: object, *, trust_answers: float = 25.0) -> None:
        """Take up what `export_state` gave (this estimator's settings, and its `maturity`, are
        kept). The rates are trusted as `trust_answers` answered calls' worth at most (their
        weights capped): a campaign's answer rate moves with the hour and the list, so a
        restored one is a starting point that the day's first dials soon outweigh, and its
        standard error (`p_live_error`) says how little it rests on. The durations (their
        mean and quantiles; the residual-time cohorts start afresh at the next `advance`,
        `_Durations.begin`) and ring outcomes are taken whole, and the pacer needs no
        warm-up. Until today's first `_RESTORE_CHECK` outcomes are in, the answer rate is
        taken as `restore_doubt` times the restored one (`p_answer`); then `_check_restored`
        drops a restored rate they do not fit (a new list: dialing a 30 % list at yesterday's
        5 % would flood the agents).
        The share of answers that are people is checked the same way against today's first
        `_RESTORE_CHECK_HUMAN` AMD verdicts (a list with fewer answering machines).
        A saved answer rate resting on fewer than `_RESTORE_MIN_ANSWERS` answers is not taken
        up at all (the rate stays the cold prior, and the pacer has its warm-up). Raises
        ValueError, leaving the estimator as it was, on anything that is not such a state:
        every number is checked against its range (durations up to a day, ring times up to
        an hour) before anything changes."""
        if not trust_answers > 0:
            raise ValueError(f"trust_answers must be positive, not {trust_answers!r}")
        if not isinstance(state, dict):
            raise ValueError("pacer state: not a JSON object")
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"pacer state: version {state.get('version')!r}, "
                             f"this dialer reads {STATE_VERSION}"[:300])
        # Everything is read and checked before anything changes.
        dials = _state_int(state, "dials")
        abandons = _state_int(state, "abandons")
        p, weight = _state_ewma(state, "answered", 1.0)
        human = _state_ewma(state, "human", 1.0)
        ring = _state_ewma(state, "ring", _MAX_RING)
        talk, wrap = (_state_numbers(state, k) for k in ("talk", "wrap"))
        outcomes = [(x, bool(a)) for x, a in _state_rows(state, "outcomes", (0.0, _MAX_RING), _FLAG)]
        pending = [(o, r, bool(a)) for o, r, a in _state_rows(
            state, "pending", (-_MAX_TIME, _MAX_TIME), (0.0, _MAX_RING), _FLAG)]
        answer_memory = self._answered.memory
        if self.answers_in_memory:
            wanted = self.answers_in_memory / max(p, 1e-3)
            answer_memory = int(min(self.max_memory, max(self.base_memory, wanted)))
        weight = min(weight, float(answer_memory))
        # A saved rate resting on few answers (a day of failed dials: a carrier outage, a dead
        # list) is not taken up: near 0, it would have the pacer dial every channel at once.
        keep_rate = p * weight >= _RESTORE_MIN_ANSWERS
        if keep_rate:
            self._answered.value = p
            self._answered.memory = answer_memory
            self._answered.weight = min(weight, trust_answers / max(p, 1e-3))
        for est, (value, w) in ((self._human, human), (self._ring, ring)):
            est.value = value
            est.weight = min(w, trust_answers, float(est.memory))
        self._talk.replace(talk)
        self._wrap.replace(wrap)
        self._begin = True
        self._outcomes.replace(outcomes)
        self._pending = []
        for originated, ring_s, was_answered in pending:
            self._seq += 1
            heappush(self._pending, (originated, self._seq, ring_s, was_answered))
        self._old_seq = self._seq
        self.restored_dials = dials
        self.dials = dials if keep_rate else 0  # a cold answer rate: the pacer's warm-up
        self.abandons = abandons
        self._restored = (p, self._answered.weight, 0, 0) if keep_rate else None
        self._restored_human = (human[0], self._human.weight, 0, 0)
        self.restored_refused = False
        self.rate_restored = keep_rate

    def _check_restored(self, dials: int, answers: int) -> None:
        """Whether today's outcomes fit the restored answer rate (`_refit`, once
        `_RESTORE_CHECK` dials are in)."""
        assert self._restored is not None
        self._restored, refused = _refit(self._restored, self._answered, self._prior[0],
                                         self._prior[2], dials, answers, _RESTORE_CHECK)
        self.restored_refused |= refused

    @property
    def restore_checking(self) -> bool:
        """Whether a restored estimate may still be dropped (`restored_refused`): the answer
        rate until today's outcomes outweigh it, the share of people until today's AMD
        verdicts do (without AMD none come, and it stays open)."""
        return self._restored is not None or self._restored_human is not None

    @property
    def p_answer(self) -> float:
        """The answer rate the pacer is to assume: the estimate; after `restore_state`,
        `restore_doubt` times the restored estimate until today's first `_RESTORE_CHECK`
        outcomes have been checked against it (`_check_restored`)."""
        p = self._answered.value
        restored = self._restored
        if restored is not None and restored[2] < _RESTORE_CHECK:
            return min(1.0, p * self.restore_doubt)
        return p

    @property
    def p_human(self) -> float:
        return self._human.value

    @property
    def p_live(self) -> float:
        return self.p_answer * self.p_human

    @property
    def ring_time(self) -> float:
        return self._ring.value

    @property
    def p_live_error(self) -> float:
        """Relative standard error of the answer rate: sqrt((1 − p) / (p · n)), n the dials
        it rests on (a running mean of w dials: w; an EWMA of memory M: 2M − 1)."""
        if not self.answers_in_memory:
            return 0.0
        est = self._answered
        p = min(1.0, max(1e-3, est.value))
        n = est.weight if est.weight < est.memory else 2.0 * est.memory - 1.0
        return math.sqrt((1.0 - p) / (p * max(1.0, n)))

    @property
    def talk_mean(self) -> float:
        return self._talk.mean

    @property
    def wrap_mean(self) -> float:
        return self._wrap.mean

    def p_free(self, talking: tuple[float, ...], wrapping: tuple[float, ...], horizon: float,
               team: tuple[tuple[float, ...], tuple[float, ...]] | None = None) -> list[float]:
        # On a call, the whole wrap-up is still ahead: the talk must end within h − W. With
        # W at its mean (10 s, past a 9 s horizon) no talking agent would ever count; W varies
        # (short wrap-ups happen), so average over `wrap_points` quantiles of the wrap-ups seen
        # (`p_free_many`: one pass over the agents, their at-risk set taken once).
        return self.p_free_many(talking, wrapping, [horizon], team)[0]

    @property
    def checkpoints(self) -> tuple[float, ...]:
        """The time-resolved model's checkpoints (seconds from now), ascending; empty while
        too few answers are in (or with `ring_age` off): the pacer then uses one horizon."""
        if not self.ring_age:
            return ()
        return self._outcomes.arrivals()[0]

    def p_free_many(self, talking: tuple[float, ...], wrapping: tuple[float, ...],
                    horizons: list[float],
                    team: tuple[tuple[float, ...], tuple[float, ...]] | None = None
                    ) -> list[list[float]]:
        """`p_free` at each of `horizons` (one list per horizon), in one pass over the agents."""
        now = self._clock
        team_talking, team_wrapping = (None, None) if team is None else team
        wraps = self._wrap.quantiles(self.wrap_points) if self.wrap_points else [self._wrap.mean]
        actuarial = self.wrap_points > 0
        share = 1.0 / len(wraps)
        outs: list[list[float]] = []
        if talking:
            windows = [h - w for h in horizons for w in wraps]
            parts = self._talk.ends_within_many(talking, windows, actuarial, now, team_talking)
            nw = len(wraps)
            for j in range(len(horizons)):
                chunk = parts[j * nw:(j + 1) * nw]
                outs.append([sum(qs) * share for qs in zip(*chunk, strict=True)]
                            if nw > 1 else list(chunk[0]))
        else:
            outs = [[] for _ in horizons]
        if wrapping:
            for out, part in zip(outs, self._wrap.ends_within_many(wrapping, horizons, actuarial, now,
                                                                   team_wrapping),
                                 strict=True):
                out.extend(part)
        return outs

    def timed_groups(self, ages: tuple[float, ...], in_amd: int
                     ) -> tuple[list[tuple[float, int, tuple[float, ...]]], tuple[float, ...]]:
        """As `live_groups`, each group with its arrival shares: of its calls' live answers,
        the share arriving by each checkpoint (AMD calls: at once); and the shares of a call
        placed now. Requires `checkpoints` not empty."""
        outcomes = self._outcomes
        marks, arrive = outcomes.arrivals()
        table = outcomes.ratio
        p_h = self.p_human
        p_a = self.p_answer
        live = p_a * p_h
        rest = 1.0 - p_a
        out: list[tuple[float, int, tuple[float, ...]]] = []
        for i, count in _age_bins(ages, len(table) - 1):
            out.append((live / (p_a + rest * table[i]), count, arrive[i]))
        if in_amd:
            out.append((p_h, in_amd, tuple(1.0 for _ in marks)))
        return out, arrive[0]

    def live_to_come(self, ages: tuple[float, ...], in_amd: int, out: list[float]) -> None:
        for r, count in self.live_groups(ages, in_amd):
            out.extend(r for _ in range(count))

    def live_groups(self, ages: tuple[float, ...], in_amd: int) -> list[tuple[float, int]]:
        """P(a live person still to come) for a call unanswered after e s, by Bayes on the
        outcomes seen: ``p_h · p_a·S_a(e) / (p_a·S_a(e) + (1 − p_a)·S_u(e))``, with p_a the
        current answer rate and S_a, S_u the shares of answered and unanswered dials still
        ringing after e s (`_RingOutcomes`). At 15 % live answer and a 25 s ring timeout, a
        call that has rung 15 s is almost surely a no-answer. A call in AMD: p_h.

        Ages are grouped by the table's `_AGE_STEP` bins (floored: a younger age weighs more),
        counted by bisection on the sorted ages: a 100-agent campaign at 5 % live has ~1,000
        calls ringing, and this runs 4 times a second."""
        p_h = self.p_human
        p_a = self.p_answer
        out: list[tuple[float, int]] = []
        if ages and not self.ring_age:
            out.append((p_a * p_h, len(ages)))
        elif ages:
            table = self._outcomes.table()
            live = p_a * p_h
            rest = 1.0 - p_a
            for i, count in _age_bins(ages, len(table) - 1):
                out.append((live / (p_a + rest * table[i]), count))
        if in_amd:
            out.append((p_h if self.ring_age else p_a * p_h, in_amd))
        return out


# --- the predictive pacer ------------------------------------------------------------------

_COHORT_RUNNING = 4  # finishes kept per running call, for the residual times' cohort
_SURE = 1e-6  # q within this of 0 or 1 is certain: keeps the Bernoulli sums short
_FLOOR_CHECK = 5  # abandons on the recovery budget before its realised rate is judged
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _overflow(mu: float, var: float, k3: float, k: int) -> float:
    """E[(Y − k)⁺] for an integer Y with mean `mu`, variance `var` and third cumulant `k3`.

    Edgeworth-corrected normal (the "refined normal approximation" of a Poisson-binomial):
    P(Y > j) ≈ 1 − Φ(x) + γ(1 − x²)φ(x)/6 at x = (j + ½ − mu)/σ, γ = k3/σ³; summed over j >= k
    (midpoint rule) it integrates in closed form, using (xφ(x))' = (1 − x²)φ(x):
    σ·[φ(a) − a·Q(a) + γ·a·φ(a)/6], a = (k − mu)/σ. The skew term matters: a plain normal
    under-weights the right tail of few, unlikely answers and over-dials small teams."""
    if var <= 0.0:
        return max(0.0, mu - k)
    sigma = math.sqrt(var)
    a = (k - mu) / sigma
    phi = _INV_SQRT_2PI * math.exp(-0.5 * a * a)
    tail = 0.5 * math.erfc(a / _SQRT2)
    gamma = k3 / (var * sigma)
    return max(0.0, mu - k, sigma * (phi - a * tail + gamma * a * phi / 6.0))


def _clark(means: list[float], variances: list[float], k: int) -> float:
    """E[(max_c X_c − k)⁺] for X_c jointly normal with these means and variances and
    cov(X_b, X_c) = min(Var X_b, Var X_c) (nested counts): Clark's (1961) moments of the
    maximum of two normals, folded over c; the last step as in `_overflow`."""
    m, v = means[0], variances[0]
    cm = v  # cov(max so far, a later X): Σ weights · Var of the earlier ones
    for m2, v2 in zip(means[1:], variances[1:], strict=True):
        c = min(cm, v2)
        a2 = v + v2 - 2.0 * c
        if a2 <= 1e-12:
            if m2 > m:
                m, v, cm = m2, v2, v2
            continue
        a = math.sqrt(a2)
        alpha = (m - m2) / a
        big = 0.5 * math.erfc(-alpha / _SQRT2)  # Φ(α)
        small = 1.0 - big
        phi = _INV_SQRT_2PI * math.exp(-0.5 * alpha * alpha)
        m1 = m * big + m2 * small + a * phi
        second = (m * m + v) * big + (m2 * m2 + v2) * small + (m + m2) * a * phi
        cm = cm * big + v2 * small
        m, v = m1, max(0.0, second - m1 * m1)
    return _overflow(m, v, 0.0, k)


class PredictivePacer:
    """Model-based predictive pacing under an abandon-rate ceiling (see the module docstring).

    `safety` scales the per-decision budget; `taper_start` is the fraction of the target at
    which the window's measured rate starts shrinking it; `floor` is the least budget, as a
    share of the target, kept up to and above it (the recovery budget; 0: progressive there,
    the pacer before it; it does not scale with `safety`); `exact_limit` is the largest agent
    count solved exactly (above it, the Edgeworth approximation); `connect_grace` extends the
    horizon by the seconds an answered human may wait for an agent (0 is the conservative
    choice). `margin_humans` sizes the budget's margin for the next abandon (`budget`; inf:
    none). `ring_age` (weigh ringing calls by how long they have rung), `talk_lookahead`
    (wrap-up quantiles and actuarial censoring in the agents' residual times) and
    `uncertainty` (the answer rate's memory sized in answers, its standard error in the
    variance) and `cohort` (residual times on a consistent cohort, `_Durations`) are on by
    default; off, they reproduce the pacer before them
    (docs/PACING_BENCH.md, "baseline").
    `time_resolved` (off by default: measured, not better; docs/PACING_BENCH.md) decides on
    several checkpoints instead of one horizon (`_timed`), with `answer_grace` the seconds a
    person may wait for an agent; it needs a `TimedPacingModel` (the `Estimator` is one) and
    falls back to the one-horizon model until the estimator has its checkpoints.
    `lift_max` is the most the budget is lifted while the realised rate stays under
    `lift_aim` × target (`_steer`; 1: never, the pacer before it), `lift_step` how fast (in log
    per person reached); the lift acts on teams of `lift_team` agents or more (ready, on a
    call or in wrap-up; a matching group's own agents for a group's snapshot); it starts at
    1 in a new pacer (and grows over about 1,400 people with no abandon, more at a higher
    rate), and is kept across a restart with the estimates (`export_state`).
    `model` defaults to a fresh `Estimator`; a simulator may pass known parameters.
    The defaults (safety 0.8, taper from 0.8 × target, floor 0.12: 0.36 % at a 3 % target)
    were chosen on the simulator's grid (docs/PACING_BENCH.md): at 5 and 20 agents larger
    budgets bought abandons, not talk time; the lift spends in larger teams what the model's
    caution leaves unspent.
    """

    __slots__ = ("_floor_failed", "_floor_from", "_lift", "_lift_open", "_lift_restored",
                 "_steered_from",
                 "answer_grace", "connect_grace", "exact_limit", "floor", "last_risk",
                 "last_theta", "lift_aim", "lift_max", "lift_step", "lift_team", "margin_humans",
                 "model", "safety", "taper_start", "target", "time_resolved", "uncertainty",
                 "warmup_dials")

    def __init__(self, target_abandon: float = 0.03, *, model: PacingModel | None = None,
                 warmup_dials: int = 30, safety: float = 0.8, taper_start: float = 0.8,
                 exact_limit: int = 10, connect_grace: float = 0.0, ring_age: bool = True,
                 talk_lookahead: bool = True, margin_humans: float = 100.0,
                 uncertainty: bool = True, time_resolved: bool = False,
                 answer_grace: float = 2.0, floor: float = 0.12, cohort: bool = True,
                 lift_max: float = 4.0, lift_aim: float = 0.5, lift_step: float = 0.001,
                 lift_team: int = 30) -> None:
        if not 0 < target_abandon < 1:
            raise ValueError(f"abandon target must be in (0, 1), not {target_abandon!r}")
        if not 0 <= taper_start < 1:
            raise ValueError(f"taper_start must be in [0, 1), not {taper_start!r}")
        if not safety > 0:
            raise ValueError(f"safety must be positive, not {safety!r}")
        if not margin_humans > 0:
            raise ValueError(f"margin_humans must be positive, not {margin_humans!r}")
        if not 0 <= floor < 1:
            raise ValueError(f"floor must be in [0, 1), not {floor!r}")
        if not 0 <= answer_grace <= 10:
            raise ValueError(f"answer_grace must be in [0, 10] seconds, not {answer_grace!r}")
        if not 1 <= lift_max <= 100:
            raise ValueError(f"lift_max must be in [1, 100], not {lift_max!r}")
        if not 0 < lift_aim <= 1:
            raise ValueError(f"lift_aim must be in (0, 1], not {lift_aim!r}")
        if not 0 <= lift_step <= 1:
            raise ValueError(f"lift_step must be in [0, 1], not {lift_step!r}")
        if not lift_team >= 1:
            raise ValueError(f"lift_team must be at least 1 agent, not {lift_team!r}")
        if not safety * lift_max * target_abandon < 1:
            raise ValueError(f"safety × lift_max × target must stay under 1, not "
                             f"{safety!r} × {lift_max!r} × {target_abandon!r}")
        self.time_resolved = time_resolved
        self.floor = floor
        self.answer_grace = answer_grace
        self.margin_humans = margin_humans
        self.target = target_abandon
        self.model: PacingModel = model if model is not None else \
            Estimator(ring_age=ring_age, wrap_points=3 if talk_lookahead else 0,
                      answers_in_memory=100 if uncertainty else 0, cohort=cohort)
        self.uncertainty = uncertainty
        self.warmup_dials = warmup_dials
        self.safety = safety
        self.taper_start = taper_start
        self.exact_limit = exact_limit
        self.connect_grace = connect_grace
        self.last_theta = 0.0  # budget used by the last decision
        self.last_risk = 0.0  # P(answers >= free agents) after the last decision's calls
        # (humans, abandoned) in the window when this stay on the floor began (`_floor_works`)
        self._floor_from: tuple[int, int] | None = None
        self._floor_failed = False  # this stay's people were abandoned at the target's rate
        self.lift_max = lift_max
        self.lift_aim = lift_aim
        self.lift_step = lift_step
        self.lift_team = lift_team
        self._lift = 0.0  # log of the budget's lift (`lift`), in [0, log lift_max]
        self._lift_open = False  # a decision since the counts last moved could use the lift
        # (people reached, abandoned) at the last `_steer`
        self._steered_from: tuple[int, int] | None = None
        self._lift_restored = False  # the lift came from a saved state, not yet confirmed

    @property
    def lift(self) -> float:
        """The factor on the budget that the realised abandon rate has earned (`_steer`)."""
        return math.exp(self._lift)

    def _steer(self, snap: PacingSnapshot) -> None:
        """Move the budget's lift by the people reached and abandoned since the last snapshot
        (`PacingSnapshot.people_reached`, `people_abandoned`): down ``lift_step / (lift_aim ×
        target)`` (in log) per abandon, always; up `lift_step` per person, only if a decision
        since the counts last moved could use the lift (a team of `lift_team` or more, past the
        warm-up, its lifted budget above the floor: no lift is earned where it is not spent; any
        decision counts, as matching groups are decided one after the other in a tick, each with
        its own agents); within [1, lift_max]. A running balance, it settles where the realised
        rate is ``lift_aim × target`` and stays at 1 (the budget as set) where the rate runs
        above that. A stochastic approximation on what is seen, not on the model: the model's
        own caution (no agent freed after the horizon, no 2 s a person may wait, the answer
        rate's error moving every call together) leaves large teams far under the target, and
        this spends what it leaves. The window's own counts would not do: they are re-read from
        the store, which counts a call at its end, and they move with the window (a new UK day).
        Counters that went down (another engine's) are taken afresh."""
        self._settle_restored_lift()
        now = (snap.people_reached, snap.people_abandoned)
        start = self._steered_from
        if start == now:
            return
        self._steered_from = now
        opened, self._lift_open = self._lift_open, False
        if start is None or now[0] < start[0] or now[1] < start[1]:
            return
        up = self.lift_step * (now[0] - start[0]) if opened else 0.0
        down = self.lift_step * (now[1] - start[1]) / (self.lift_aim * self.target)
        self._lift = min(math.log(self.lift_max), max(0.0, self._lift + up - down))

    def _settle_restored_lift(self) -> None:
        """Drop a restored lift (back to 1) once the estimates restored with it are refused
        (`Estimator.restored_refused`: a new list, and the lift was earned on another); stop
        watching once they can no longer be."""
        if not self._lift_restored:
            return
        model = self.model
        if isinstance(model, Estimator) and model.restored_refused:
            self._lift = 0.0
            self._lift_restored = False
        elif not isinstance(model, Estimator) or not model.restore_checking:
            self._lift_restored = False

    def observe_dial(self, ring_seconds: float, answered: bool, originated_at: float | None = None) -> None:
        self.model.observe_dial(ring_seconds, answered, originated_at)

    def observe_human(self, answered_human: bool) -> None:
        self.model.observe_human(answered_human)

    def observe_talk(self, seconds: float) -> None:
        self.model.observe_talk(seconds)

    def observe_wrap(self, seconds: float) -> None:
        self.model.observe_wrap(seconds)

    def observe_abandon(self) -> None:
        self.model.observe_abandon()

    def export_state(self) -> dict[str, object] | None:
        """The online estimates (`Estimator.export_state`) and the budget's lift (`lift`), to
        keep across a restart; None when the model is not an `Estimator` (a simulator's known
        parameters)."""
        if not isinstance(self.model, Estimator):
            return None
        self._settle_restored_lift()  # refused since the last decision: not saved on
        state = self.model.export_state()
        state["lift"] = round(self.lift, 6)
        return state

    def restore_state(self, state: object) -> None:
        """Start from estimates `export_state` gave (`Estimator.restore_state`) and from its
        lift (within this pacer's `lift_max`; 1 when the state has none, as saved before the
        lift was, or when its answer rate rests on too few answers to be taken up). A lift is
        the realised rate's verdict on the model's caution, so it is dropped (back to 1) if
        today's calls do not fit the restored estimates (a new list:
        `Estimator.restored_refused`; `_settle_restored_lift`). ValueError, the pacer left as
        it was, on a malformed state, or when the model is not an `Estimator`."""
        model = self.model
        if not isinstance(model, Estimator):
            raise ValueError("this pacer's model keeps no state")
        lift = 1.0
        if isinstance(state, dict) and state.get("version") == STATE_VERSION and "lift" in state:
            value = _state_float(state["lift"], 1.0, 100.0)
            if value is None:
                raise ValueError(f"pacer state: lift must be a number in [1, 100], not "
                                 f"{state['lift']!r}"[:300])
            lift = value
        model.restore_state(state)  # a wrong version, or any malformed field: raises here
        if not model.rate_restored:  # the saved answer rate rests on too few answers
            lift = 1.0
        self._lift = min(math.log(self.lift_max), math.log(lift))
        self._lift_open = False
        self._steered_from = None
        self._lift_restored = self._lift > 0.0

    def budget(self, snap: PacingSnapshot) -> float:
        """Expected abandon rate allowed for the calls in flight: the target × safety (× the
        lift, `_steer`, in a team of `lift_team` or more below the taper's end; never more of
        it than the window's people could have earned, ``exp(lift_step × humans)``), tapered
        toward 0 as the window's rate climbs from taper_start × target to the target, but never
        below `floor` × target, also at and above the target. The floor is the way back under
        the ceiling: cohorts paced at a fraction of the target dilute the window's abandons, and
        many more of them reach an agent than under progressive dialing (docs/PACING_BENCH.md,
        "A recovery budget at the ceiling"). Where the estimated abandons alone
        (`estimated_abandons`, AMD false positives in UK mode) plus the floor would hold the
        window above taper_start × target, dilution cannot bring it clearly under, and the
        taper goes to 0 (progressive), as without a floor. The taper reads the rate plus a
        margin for the next abandon, ``A / H + 1 / (H + margin_humans)``: in a small window
        (a small team, a new UK day) one abandon is a large step, and the
        measured rate alone would let the pacer run at full budget right up to the target;
        the margin fades as the window fills (0.3 points at 200 humans, 0.05 at 2,000).
        Records when a stay on the floor begins, for its check (`_floor_works`)."""
        return self._budget(snap)[0]

    def _budget(self, snap: PacingSnapshot) -> tuple[float, bool]:
        """`budget`, and whether the lift sets it (a team of `lift_team` or more, the lifted
        share above the floor): where it does, the people this decision reaches earn it."""
        rate = snap.window_abandon_rate + 1.0 / (snap.humans_in_window + self.margin_humans)
        room = min(1.0, (self.target - rate) / (self.target * (1.0 - self.taper_start)))
        open_ = snap.ready_agents + snap.agents_engaged >= self.lift_team and room > 0.0
        # No more lift than the window's people could have earned (`lift_step` each): with
        # few in it (a restart's saved lift, a new UK day) one abandon is a large step.
        lift = math.exp(min(self._lift, self.lift_step * snap.humans_in_window)) if open_ else 1.0
        share = self.safety * lift * max(0.0, room)
        lifted = open_ and share >= self.floor
        if share >= self.floor:
            self._floor_from = None  # off the floor: the next stay on it is checked afresh
        elif self._floor_works(snap):
            share = self.floor
        return self.target * share, lifted

    def _floor_works(self, snap: PacingSnapshot) -> bool:
        """Whether the floor leads back under the target. Not when the estimated abandons (AMD
        false positives) alone keep the window near it, whatever the pace; and not once the
        people reached since this stay on the floor began have been abandoned at the target's
        rate or more (at least `_FLOOR_CHECK` of them): the model that sets the floor's calls is
        then wrong, and the pacer is progressive until the window is back under the taper."""
        humans, abandoned = snap.humans_in_window, snap.abandoned_in_window
        fixed = snap.estimated_abandons / humans if humans else 0.0
        if fixed + self.floor * self.target > self.taper_start * self.target:
            return False
        start = self._floor_from
        if start is None or humans < start[0] or abandoned < start[1]:  # new stay, or the
            self._floor_from = start = (humans, abandoned)  # window moved on (a new day)
            self._floor_failed = False
        if not self._floor_failed:
            lost = abandoned - start[1]
            self._floor_failed = lost >= _FLOOR_CHECK and lost >= self.target * (humans - start[0])
        return not self._floor_failed

    def decide(self, snap: PacingSnapshot) -> int:
        self.last_theta = 0.0
        self.last_risk = 0.0
        model = self.model
        model.advance(snap.now)
        self._steer(snap)
        if snap.ready_agents == 0 and not snap.busy_agents and not snap.wrapping_agents:
            return 0
        floor = _progressive(snap)
        cap = min(snap.leads_available, snap.channels_free)
        theta, lifted = self._budget(snap)
        if theta <= 0.0 or model.dials < self.warmup_dials or cap <= max(0, floor):
            return _clamp(floor, snap)  # its budget does not set this pace: no lift earned
        self._lift_open |= lifted
        p = min(1.0, max(1e-4, model.p_live))
        if self.time_resolved and isinstance(model, TimedPacingModel) and \
                snap.ready_agents + snap.agents_engaged > self.exact_limit:
            marks = model.checkpoints
            if marks:
                extra = self._timed(model, marks, snap, p, cap, theta)
                self.last_theta = theta
                return _clamp(max(floor, extra), snap)
        horizon = model.ring_time + self.connect_grace

        # Busy agents: certain to stay busy (cancel out), certain to be free, or a Bernoulli.
        k = snap.ready_agents - snap.calls_waiting
        still_busy: list[float] = []  # P(agent still busy at the horizon), uncertain ones only
        for q in model.p_free(snap.busy_agents, snap.wrapping_agents, horizon, snap.team):
            if q >= 1.0 - _SURE:
                k += 1
            elif q > _SURE:
                k += 1
                still_busy.append(1.0 - q)
        if k <= 0:
            return _clamp(floor, snap)
        # The calls in flight: each brings a person with its own probability (by ring age,
        # or in AMD); claimed calls not yet dialed are fresh, Bernoulli(p) like the new ones.
        flight = [(r, r, count) for r, count in model.live_groups(snap.ringing_ages, snap.calls_in_amd)]
        fresh = snap.calls_fresh
        if k <= self.exact_limit:
            extra = self._exact(k, p, p, flight, fresh, still_busy, cap, theta)
        else:
            extra = self._approx(k, p, p, flight, fresh, still_busy, cap, theta)
        self.last_theta = theta
        return _clamp(max(floor, extra), snap)

    def _timed(self, model: TimedPacingModel, marks: tuple[float, ...], snap: PacingSnapshot,
               p: float, cap: int, theta: float) -> int:
        """The time-resolved decision. At each checkpoint t_c (seconds from now) let
        X_c = A_c − F_c: the live answers arriving by t_c less the busy agents free (talk and
        wrap-up done) by t_c + `answer_grace`. By Hall's theorem on these nested sets, with
        k = ready − waiting, the humans left without an agent are (max_c X_c − k)⁺. X_c is a
        sum of independent Bernoullis (each call in flight: its chance of a person times the
        share of its answers due by t_c, by ring age; each agent: its chance to be free); its
        mean and variance add up, and the covariance of X_b and X_c (b < c) is taken as
        Var X_b (nested counts, independent increments). max_c X_c is folded by Clark's
        moment-matching (`_clark`), and E[(M − k)⁺] must stay within the budget over every
        human the cohort brings. The largest such n of new calls is dialed (`last_risk` is
        not computed on this path: it stays 0)."""
        groups, new_shares = model.timed_groups(snap.ringing_ages, snap.calls_in_amd)
        grace = self.answer_grace
        frees = model.p_free_many(snap.busy_agents, snap.wrapping_agents, [t + grace for t in marks],
                                  snap.team)
        k = snap.ready_agents - snap.calls_waiting
        fresh = snap.calls_fresh
        count = len(marks)
        mus = [0.0] * count  # E[A_c − F_c] before new calls
        vs = [0.0] * count  # its variance (Binomial parts)
        idle_mus = [0.0] * count  # E[−F_c], Var F_c: the agents alone (no calls at all)
        idle_vs = [0.0] * count
        arrivals = [0.0] * count  # E[A_c]: for the answer rate's common error
        whole = fresh * p  # humans the calls in flight bring, by any time
        for c, qs in enumerate(frees):
            mf = vf = 0.0
            for q in qs:
                mf += q
                vf += q * (1.0 - q)
            ma = va = 0.0
            for r, n_calls, shares in groups:
                ra = r * shares[c]
                ma += ra * n_calls
                va += ra * (1.0 - ra) * n_calls
            ra = p * new_shares[c]
            ma += ra * fresh
            va += ra * (1.0 - ra) * fresh
            mus[c] = ma - mf
            vs[c] = va + vf
            idle_mus[c] = -mf
            idle_vs[c] = vf
            arrivals[c] = ma
        for r, n_calls, _ in groups:
            whole += r * n_calls
        pas = [p * sh for sh in new_shares]
        eps2 = model.p_live_error ** 2 if self.uncertainty else 0.0

        def overflow(n: int) -> float:
            means = []
            variances = []
            for c in range(count):
                pa = pas[c]
                a = arrivals[c] + n * pa
                means.append(mus[c] + n * pa)
                variances.append(vs[c] + n * pa * (1.0 - pa) + eps2 * a * a)
            return _clark(means, variances, k)

        # The waiting humans' share, not the calls' (as in `_approx`): with no calls at all.
        base = _clark(idle_mus, idle_vs, k)
        budget = theta * whole
        if overflow(0) - base > budget:
            return 0
        lo, hi = 0, 1  # gallop then bisect; invariant: fits(lo), and hi > cap or not fits(hi)
        while hi <= cap and overflow(hi) - base <= budget + theta * hi * p:
            lo, hi = hi, hi * 2
        hi = min(hi, cap + 1)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if overflow(mid) - base <= budget + theta * mid * p:
                lo = mid
            else:
                hi = mid
        return lo

    def _exact(self, k: int, pa: float, p: float, flight: list[tuple[float, float, int]],
               fresh: int, still_busy: list[float], cap: int, theta: float) -> int:
        """Largest n <= cap keeping the cohort's expected abandon rate <= theta, with Y's pmf
        kept exactly: pmf[y] = P(Y = y) for y < k, pmf[k] = P(Y >= k) (the slot absorbs).
        A call counts in Y with its chance of a person arriving in the look-ahead (`pa`, the
        flight's first figure) and in the rate's denominator with its chance of a person at
        all (`p`, the second): equal in the one-horizon model."""
        pmf = [0.0] * (k + 1)
        pmf[0] = 1.0
        top = 0  # highest index holding mass

        def add(r: float) -> None:  # Y += Bernoulli(r), in place, highest index first
            nonlocal top
            s = 1.0 - r
            hi = top + 1
            if hi >= k:
                pmf[k] += pmf[k - 1] * r
                hi = k - 1
            for y in range(hi, 0, -1):
                pmf[y] = pmf[y] * s + pmf[y - 1] * r
            pmf[0] *= s
            if top < k:
                top += 1

        for r in still_busy:
            add(r)
        overflow = 0.0  # expected abandoned humans among the calls in flight and new calls
        expected = 0.0  # expected humans among them
        for ra, r, count in flight:
            for _ in range(count):
                overflow += ra * pmf[k]
                expected += r
                add(ra)
        for _ in range(fresh):
            overflow += pa * pmf[k]
            expected += p
            add(pa)
        n = 0
        while n < cap:
            step = pa * pmf[k]
            if overflow + step > theta * (expected + p):
                break
            overflow += step
            expected += p
            add(pa)
            n += 1
        self.last_risk = pmf[k]
        return n

    def _approx(self, k: int, pa: float, p: float, flight: list[tuple[float, float, int]],
                fresh: int, still_busy: list[float], cap: int, theta: float) -> int:
        """As `_exact`, with E[(Y − k)⁺] from Y's first three cumulants (`_overflow`)."""
        mu0 = var0 = k30 = 0.0
        for r in still_busy:
            v = r * (1.0 - r)
            mu0 += r
            var0 += v
            k30 += v * (1.0 - 2.0 * r)
        base = _overflow(mu0, var0, k30, k)  # the waiting humans' share, not the calls'
        pq = pa * (1.0 - pa)
        k3p = pq * (1.0 - 2.0 * pa)
        # The calls in flight, then the fresh ones: cumulants add up. `whole`: the humans they
        # bring at all (the rate's denominator), `mu1`: those arriving in the look-ahead.
        mu1 = var1 = k31 = whole = 0.0
        for ra, r, count in flight:
            v = ra * (1.0 - ra)
            mu1 += ra * count
            var1 += v * count
            k31 += v * (1.0 - 2.0 * ra) * count
            whole += r * count
        mu1 += fresh * pa
        var1 += fresh * pq
        k31 += fresh * k3p
        whole += fresh * p
        mu0 += mu1
        var0 += var1
        k30 += k31

        # The answer rate is an estimate: a relative error ε moves every call's chance
        # together, adding (ε · expected humans)² to the variance (the Binomial's alone
        # shrinks relative to the mean as calls grow; this does not: it is what a large team
        # at a low answer rate is exposed to).
        eps2 = self.model.p_live_error ** 2 if self.uncertainty else 0.0

        def fits(n: int) -> bool:
            m = mu1 + n * pa
            return _overflow(mu0 + n * pa, var0 + n * pq + eps2 * m * m, k30 + n * k3p, k) - base \
                <= theta * (whole + n * p)

        if not fits(0):
            return 0
        lo, hi = 0, 1  # gallop then bisect; invariant: fits(lo), and hi > cap or not fits(hi)
        while hi <= cap and fits(hi):
            lo, hi = hi, hi * 2
        hi = min(hi, cap + 1)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid
        var = var0 + lo * pq + eps2 * (mu1 + lo * pa) ** 2
        if var > 0.0:  # P(Y >= k) = P(Y > k - 1), Edgeworth-corrected as in `_overflow`
            x = (k - 0.5 - mu0 - lo * pa) / math.sqrt(var)
            gamma = (k30 + lo * k3p) / (var * math.sqrt(var))
            phi = _INV_SQRT_2PI * math.exp(-0.5 * x * x)
            tail = 0.5 * math.erfc(x / _SQRT2) + gamma * (1.0 - x * x) * phi / 6.0
            self.last_risk = min(1.0, max(0.0, tail))
        return lo


# --- calls per second -----------------------------------------------------------------------

_EPS = 1e-9  # tolerance for float drift in the token count


class RateLimiter:
    """Token bucket: `cps` tokens per second, at most `burst` stored; one call per token.

    Over any window of length t it lets at most ``burst + cps × t`` calls through; with the
    default burst of 1, consecutive calls are at least 1/cps apart."""

    __slots__ = ("_last", "_tokens", "burst", "cps")

    def __init__(self, cps: float, burst: float = 1.0) -> None:
        if not cps > 0 or math.isinf(cps):
            raise ValueError(f"cps must be a positive number, not {cps!r}")
        if not burst >= 1:
            raise ValueError(f"burst must be >= 1, not {burst!r}")
        self.cps = cps
        self.burst = burst
        self._tokens = burst
        self._last: float | None = None

    def _refill(self, now: float) -> None:
        if self._last is None:
            self._last = now
        elif now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.cps)
            self._last = now

    def allow(self, now: float, wanted: int) -> int:
        """How many of `wanted` calls may start at `now` (they are taken from the bucket)."""
        self._refill(now)
        if wanted <= 0:
            return 0
        n = min(wanted, int(self._tokens + _EPS))
        self._tokens = max(0.0, self._tokens - n)
        return n

    def ready_at(self, now: float) -> float:
        """When the next call may start: `now` if a token is there, else when one will be (for a
        timer, instead of polling)."""
        self._refill(now)
        if self._tokens + _EPS >= 1.0:
            return now
        assert self._last is not None
        return self._last + (1.0 - self._tokens) / self.cps


def make_pacer(mode: DialMode, *, power_ratio: float, abandon_target: float,
               agentless_max_in_flight: int | None = None) -> Pacer:
    match mode:
        case DialMode.PREVIEW:
            return PreviewPacer()
        case DialMode.PROGRESSIVE:
            return ProgressivePacer()
        case DialMode.POWER:
            return PowerPacer(power_ratio)
        case DialMode.PREDICTIVE:
            return PredictivePacer(abandon_target)
        case DialMode.AGENTLESS:
            return AgentlessPacer(agentless_max_in_flight)
        case _:
            assert_never(mode)
