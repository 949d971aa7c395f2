"""A diagnostic for the bench's "why" plot, not a policy: the core's pacer unchanged, and at
each decision a record of the live answers the model expects from the calls in flight — as
the previous pacer counted them (every ringing call fresh: calls × p) and as the core now
weighs them (by ring age, `Estimator.live_to_come`) — against those truly still to come, which
only the simulator knows (`truth`, set by it).

The ring-age proposal that this module used to measure (`RingAgeAdapter`) is now in the core:
`PacingSnapshot.ringing_ages` / `calls_in_amd`, weighed by `Estimator.live_to_come`; the
bench's `baseline` policy is the pacer without it, kept as a measured ablation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from dialer.core.pacing import Estimator, ForwardingObservations, PacingSnapshot, PredictivePacer


class RingingProbe(ForwardingObservations):
    inner: PredictivePacer

    def __init__(self, inner: PredictivePacer) -> None:
        self.inner = inner
        self.truth: Callable[[], int] | None = None
        # (now, expected as calls × p, expected by ring age, truly to come)
        self.samples: list[tuple[float, float, float, int]] = []

    def decide(self, snap: PacingSnapshot) -> int:
        model = self.inner.model
        if self.truth is not None and model.dials >= self.inner.warmup_dials:
            flight = len(snap.ringing_ages) + snap.calls_in_amd
            weighed = sum(r * n for r, n in model.live_groups(snap.ringing_ages, snap.calls_in_amd))
            self.samples.append((snap.now, flight * model.p_live, weighed, self.truth()))
        return self.inner.decide(snap)



class AgentOracle(Estimator):
    """A diagnostic model, not a policy: the online `Estimator` (its ring-time table, learnt
    from the calls' outcomes), except that it is told what no pacer may know — when every
    busy agent will be free (the end of the call the simulator drew, plus the wrap-up the
    agent will take; an agent going on a break after it never frees) and the list's true
    rates: a dial is answered with `live` + `machine`, a person with `live` (`machine` 0: no
    answering machines). Handed to the core's `PredictivePacer`, it measures how much of the
    gap to the oracle is the agents' uncertain free times and the estimated answer rates, and
    how much is left to what it still cannot know: which calls will be answered, and when
    (docs/PACING_BENCH.md, "Knowing the agents")."""

    __slots__ = ("free_times", "live", "machine")

    def __init__(self, live: float, machine: float = 0.0) -> None:
        super().__init__()
        self.live = live
        self.machine = machine
        # Set by the simulator: when each agent on a call or in wrap-up will be READY again.
        self.free_times: Callable[[], list[float]] = list

    @property
    def p_answer(self) -> float:
        return min(1.0, self.live + self.machine)

    @property
    def p_human(self) -> float:
        answered = self.live + self.machine
        return self.live / answered if answered > 0.0 else 1.0

    @property
    def p_live_error(self) -> float:
        return 0.0

    def p_free(self, talking: tuple[float, ...], wrapping: tuple[float, ...], horizon: float,
               team: tuple[tuple[float, ...], tuple[float, ...]] | None = None) -> list[float]:
        return self._free_by(self.free_times(), [horizon])[0]

    def p_free_many(self, talking: tuple[float, ...], wrapping: tuple[float, ...],
                    horizons: list[float],
                    team: tuple[tuple[float, ...], tuple[float, ...]] | None = None
                    ) -> list[list[float]]:
        return self._free_by(self.free_times(), horizons)

    def _free_by(self, free: list[float], horizons: list[float]) -> list[list[float]]:
        """1 for each agent free (`free`: its READY time) by now + each horizon, else 0."""
        now = self._clock if self._clock > -math.inf else 0.0
        return [[1.0 if t <= now + h else 0.0 for t in free] for h in horizons]
