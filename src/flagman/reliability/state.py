"""Per-deployment live state: in-flight count, latency EWMA, breaker, cooldown.

In-process by default; the interface is what a shared (Redis) backend implements.
Times are `time.monotonic()` seconds.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from flagman.config import BreakerConfig


@dataclass
class DeploymentHealth:
    inflight: int = 0
    ewma_ms: float | None = None
    consecutive_failures: int = 0
    #: breaker: closed | open | half_open
    breaker: str = "closed"
    open_until: float = 0.0  # breaker open or 429 cooldown until this time
    probe_inflight: bool = False
    outcomes: deque[tuple[float, bool]] = field(default_factory=lambda: deque(maxlen=512))
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=256))
    last_error: str | None = None


class HealthBoard:
    """Health of every deployment, kept across config reloads (keyed by deployment id)."""

    EWMA_ALPHA = 0.2

    def __init__(self, breaker: BreakerConfig) -> None:
        self.breaker = breaker
        self._health: dict[str, DeploymentHealth] = {}

    def get(self, dep: str) -> DeploymentHealth:
        h = self._health.get(dep)
        if h is None:
            h = self._health[dep] = DeploymentHealth()
        return h

    def available(self, dep: str, now: float | None = None) -> bool:
        """May a request go to `dep` now?  A half-open breaker admits one probe."""
        h = self.get(dep)
        now = time.monotonic() if now is None else now
        if now < h.open_until:
            return False
        if h.breaker == "open":
            h.breaker = "half_open"
        return not (h.breaker == "half_open" and h.probe_inflight)

    def cooldown_remaining(self, dep: str) -> float:
        return max(0.0, self.get(dep).open_until - time.monotonic())

    def start(self, dep: str) -> None:
        h = self.get(dep)
        h.inflight += 1
        if h.breaker == "half_open":
            h.probe_inflight = True

    def success(self, dep: str, latency_ms: float) -> None:
        h = self.get(dep)
        h.inflight = max(0, h.inflight - 1)
        h.consecutive_failures = 0
        h.outcomes.append((time.monotonic(), True))
        h.latencies.append(latency_ms)
        a = self.EWMA_ALPHA
        h.ewma_ms = latency_ms if h.ewma_ms is None else a * latency_ms + (1 - a) * h.ewma_ms
        if h.breaker == "half_open":
            h.breaker, h.probe_inflight = "closed", False

    def failure(self, dep: str, error_class: str, retry_after: float | None = None) -> None:
        h = self.get(dep)
        now = time.monotonic()
        h.inflight = max(0, h.inflight - 1)
        h.consecutive_failures += 1
        h.outcomes.append((now, False))
        h.last_error = error_class
        if error_class == "rate_limited":
            # Respect the upstream's own pacing: nothing goes there before Retry-After.
            wait = retry_after if retry_after is not None else self.breaker.cooldown
            h.open_until = max(h.open_until, now + wait)
        if h.breaker == "half_open" or self._should_open(h, now):
            h.breaker = "open"
            h.probe_inflight = False
            h.open_until = max(h.open_until, now + self.breaker.cooldown)

    def release(self, dep: str) -> None:
        """A request that ended with neither success nor failure (client went away)."""
        h = self.get(dep)
        h.inflight = max(0, h.inflight - 1)
        h.probe_inflight = False

    def _should_open(self, h: DeploymentHealth, now: float) -> bool:
        b = self.breaker
        if h.consecutive_failures >= b.consecutive_failures:
            return True
        recent = [ok for t, ok in h.outcomes if now - t <= b.window]
        if len(recent) < b.min_requests:
            return False
        return recent.count(False) / len(recent) >= b.error_rate

    def p95_ms(self, dep: str) -> float | None:
        lat = sorted(self.get(dep).latencies)
        return lat[int(0.95 * (len(lat) - 1))] if len(lat) >= 20 else None

    def snapshot(self) -> dict[str, dict[str, object]]:
        now = time.monotonic()
        return {
            dep: {
                "breaker": h.breaker,
                "cooldown_s": round(max(0.0, h.open_until - now), 3),
                "inflight": h.inflight,
                "ewma_ms": round(h.ewma_ms, 3) if h.ewma_ms is not None else None,
                "last_error": h.last_error,
            }
            for dep, h in self._health.items()
        }
