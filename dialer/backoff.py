"""The one retry backoff: exponential with full jitter, capped.

Randomness is injected (a `random.Random`), so the simulator and tests stay deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    initial: float = 0.1
    factor: float = 2.0
    maximum: float = 5.0
    rng: random.Random = field(default_factory=random.Random)
    _attempt: int = 0

    def next_delay(self) -> float:
        """The delay before the next try: uniform in [0, min(maximum, initial * factor**n)]."""
        ceiling = min(self.maximum, self.initial * self.factor**self._attempt)
        self._attempt += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempt = 0
