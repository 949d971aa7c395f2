"""Every Prometheus metric of the dialer, defined in one place.

Names follow Prometheus conventions: `dialer_` prefix, base units, `_total` for counters,
`_seconds` for durations; never a call or lead id as a label.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.ari_stream_up = Gauge(
            "dialer_ari_event_stream_up", "1 while the ARI event WebSocket is connected", registry=r
        )
        self.ari_reconnects = Counter(
            "dialer_ari_event_stream_reconnects_total", "ARI event WebSocket reconnections",
            registry=r,
        )

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


METRICS = Metrics()
