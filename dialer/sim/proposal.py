"""A proposed core change, measured before it is made: ringing calls weighted by their age.

`PredictivePacer` counts every ringing call as a fresh Bernoulli(p) live answer. A call that has
rung 15 s when answered calls ring ~9 s is almost surely a no-answer (it will ring out at the
timeout): at 15 % live answer about two thirds of the calls in flight are such calls, so the
pacer expects about twice the humans that can still come, and under-dials.

The proposal (for dialer/core, not made here): `PacingSnapshot` carries the seconds each
ringing call has rung (as it does for busy agents), and the model weights each by
``P(live answer still to come | not ended after e s)``, estimated from the ring and end times
it already sees in `observe_dial`. This module measures what that would buy without a second
copy of the pacing logic: `RingAgeAdapter` wraps the core's `PredictivePacer` and only
replaces the snapshot's `calls_ringing` by the effective number of fresh calls
``round(Σ r_i / p)``; the decision is the core's. It reads the ringing calls' ages from the
engine's `calls` (the data the proposed snapshot field would carry), and estimates the
conditional answer rates online from the outcomes it forwards — never from the simulator.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from dialer.core.campaign import CallState, CampaignEngine
from dialer.core.pacing import Estimator, PacingSnapshot, PredictivePacer


class _Outcomes:
    """The last `size` dial outcomes (ring or end time, answered), the two kinds kept sorted
    apart: how many of each ended after e s, in two bisections."""

    __slots__ = ("answered", "order", "size", "unanswered")

    def __init__(self, size: int) -> None:
        self.size = size
        self.order: deque[tuple[float, bool]] = deque()
        self.answered: list[float] = []
        self.unanswered: list[float] = []

    def add(self, x: float, answered: bool) -> None:
        if len(self.order) >= self.size:
            old, was = self.order.popleft()
            kept = self.answered if was else self.unanswered
            del kept[bisect_right(kept, old) - 1]
        self.order.append((x, answered))
        insort(self.answered if answered else self.unanswered, x)

    def p_answer_after(self, e: float) -> float:
        """P(answered | not ended after e s)."""
        a = len(self.answered) - bisect_right(self.answered, e)
        u = len(self.unanswered) - bisect_right(self.unanswered, e)
        return a / (a + u) if a + u else 0.0


class RingAgeAdapter:
    """The core's predictive pacer, fed an age-weighted count of ringing calls."""

    def __init__(self, inner: PredictivePacer, samples: int = 2000) -> None:
        self.inner = inner
        self.engine: CampaignEngine | None = None  # set once the engine is built
        self._outcomes = _Outcomes(samples)

    def decide(self, snap: PacingSnapshot) -> int:
        engine = self.engine
        model = self.inner.model
        if engine is None or not isinstance(model, Estimator) or not self._outcomes.order:
            return self.inner.decide(snap)
        p = max(1e-4, model.p_live)
        p_human = model.p_human
        dialing = amd = 0
        weight = 0.0
        now = snap.now
        outcomes = self._outcomes
        for call in engine.calls.values():
            if call.state is CallState.DIALING:
                dialing += 1
                weight += p_human * outcomes.p_answer_after(now - call.attempt.originated_at)
            elif call.state is CallState.AMD:
                amd += 1
                weight += p_human
        pending = snap.calls_ringing - dialing - amd  # claimed, not yet dialed: fresh
        effective = round(weight / p) + max(0, pending)
        return self.inner.decide(replace(snap, calls_ringing=max(0, effective)))

    def observe_dial(self, ring_seconds: float, answered: bool, originated_at: float | None = None) -> None:
        self._outcomes.add(ring_seconds, answered)
        self.inner.observe_dial(ring_seconds, answered, originated_at)

    def observe_human(self, answered_human: bool) -> None:
        self.inner.observe_human(answered_human)

    def observe_talk(self, seconds: float) -> None:
        self.inner.observe_talk(seconds)

    def observe_wrap(self, seconds: float) -> None:
        self.inner.observe_wrap(seconds)

    def observe_abandon(self) -> None:
        self.inner.observe_abandon()


class RingingProbe:
    """Diagnostic, for the bench's "why" plot: the core's pacer unchanged, and at each decision
    a record of (now, live answers the model expects from the calls in flight = calls × p,
    live answers truly still to come). `truth` is set by whoever knows it (the simulator)."""

    def __init__(self, inner: PredictivePacer) -> None:
        self.inner = inner
        self.engine: CampaignEngine | None = None
        self.truth: Callable[[], int] | None = None
        self.samples: list[tuple[float, float, int]] = []

    def decide(self, snap: PacingSnapshot) -> int:
        model = self.inner.model
        if self.engine is not None and self.truth is not None \
                and model.dials >= self.inner.warmup_dials:
            flight = sum(1 for c in self.engine.calls.values()
                         if c.state in (CallState.DIALING, CallState.AMD))
            self.samples.append((snap.now, flight * model.p_live, self.truth()))
        return self.inner.decide(snap)

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
