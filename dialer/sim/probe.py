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

from collections.abc import Callable

from dialer.core.pacing import ForwardingObservations, PacingSnapshot, PredictivePacer


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

