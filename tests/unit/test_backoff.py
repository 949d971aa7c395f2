from __future__ import annotations

import random

from dialer.backoff import Backoff


def test_delays_grow_to_the_cap_and_reset() -> None:
    backoff = Backoff(initial=0.1, factor=2.0, maximum=1.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(8)]
    assert all(0 < d <= 1.0 for d in delays)
    assert delays[0] <= 0.1
    assert max(delays[-3:]) > 0.5
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_same_seed_same_delays() -> None:
    a = Backoff(rng=random.Random(1))
    b = Backoff(rng=random.Random(1))
    assert [a.next_delay() for _ in range(5)] == [b.next_delay() for _ in range(5)]
