"""Per-deployment live state: in-flight count, latency, circuit breaker, cooldown.

In-process by default; the interface (`available`, `start`, `success`,
`failure`, `release`) is what a shared (Redis) backend would implement.
Times are seconds of an injectable monotonic clock, so the breaker's state
machine can be tested without sleeping.

What counts against a deployment is decided here, in one place:

- `upstream_unavailable`, `upstream_error`, `timeout` are health failures:
  they feed the breaker (consecutive failures, error rate over a window);
- `rate_limited` (and any error carrying Retry-After) starts a cooldown of
  exactly that long, capped by `max_cooldown`, and does not trip the breaker:
  the deployment is healthy, just pacing us;
- every other class (bad request, context window, content policy,
  authentication…) says nothing about the deployment's health.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flagman.config import BreakerConfig

#: error classes that mean "this deployment is unhealthy"
BREAKER_CLASSES = frozenset({"upstream_unavailable", "upstream_error", "timeout"})
#: samples needed before a p95 is trusted (hedging waits for it)
MIN_P95_SAMPLES = 20


@dataclass
class DeploymentHealth:
    inflight: int = 0
    ewma_ms: float | None = None
    consecutive_failures: int = 0
    #: breaker: closed | open | half_open
    breaker: str = "closed"
    open_until: float = 0.0  # breaker open or Retry-After cooldown until this time
    probe_inflight: bool = False
    opened: int = 0  # how many times the breaker opened (readyz, tests)
    outcomes: deque[tuple[float, bool]] = field(default_factory=lambda: deque(maxlen=512))
    #: recent successful latencies by kind: "complete" (whole answer), "stream" (first token)
    latencies: dict[str, deque[float]] = field(default_factory=dict)
    last_error: str | None = None

    def samples(self, kind: str) -> deque[float]:
        q = self.latencies.get(kind)
        if q is None:
            q = self.latencies[kind] = deque(maxlen=256)
        return q


class HealthBoard:
    """Health of every deployment, kept across config reloads (keyed by deployment id)."""

    EWMA_ALPHA = 0.2

    def __init__(
        self, breaker: BreakerConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.breaker = breaker
        self.clock = clock
        self._health: dict[str, DeploymentHealth] = {}

    def get(self, dep: str) -> DeploymentHealth:
        h = self._health.get(dep)
        if h is None:
            h = self._health[dep] = DeploymentHealth()
        return h

    # -- admission ---------------------------------------------------------------------------

    def available(self, dep: str, now: float | None = None) -> bool:
        """May a request go to `dep` now?  A half-open breaker admits one probe at a time."""
        h = self.get(dep)
        now = self.clock() if now is None else now
        if now < h.open_until:
            return False
        if h.breaker == "open":
            h.breaker = "half_open"
        return not (h.breaker == "half_open" and h.probe_inflight)

    def cooldown_remaining(self, dep: str) -> float:
        return max(0.0, self.get(dep).open_until - self.clock())

    def start(self, dep: str) -> None:
        h = self.get(dep)
        h.inflight += 1
        if h.breaker == "half_open":
            h.probe_inflight = True

    # -- outcomes ----------------------------------------------------------------------------

    def success(self, dep: str, latency_ms: float, kind: str = "complete") -> None:
        h = self.get(dep)
        h.inflight = max(0, h.inflight - 1)
        h.consecutive_failures = 0
        h.outcomes.append((self.clock(), True))
        h.samples(kind).append(latency_ms)
        a = self.EWMA_ALPHA
        h.ewma_ms = latency_ms if h.ewma_ms is None else a * latency_ms + (1 - a) * h.ewma_ms
        if h.breaker == "half_open":
            self._close(h)

    def failure(
        self, dep: str, error_class: str, retry_after: float | None = None, *,
        release: bool = True,
    ) -> None:
        """Record an error answer; `release=False` when the request was already released
        (a stream failing after its first chunk)."""
        h = self.get(dep)
        now = self.clock()
        if release:
            h.inflight = max(0, h.inflight - 1)
        h.last_error = error_class
        if error_class == "rate_limited" or retry_after is not None:
            # Respect the upstream's own pacing: nothing goes there before Retry-After.
            wait = retry_after if retry_after is not None else self.breaker.cooldown
            h.open_until = max(h.open_until, now + min(wait, self.breaker.max_cooldown))
        if error_class not in BREAKER_CLASSES:
            h.probe_inflight = False  # a probe that proved nothing: let another one through
            return
        h.consecutive_failures += 1
        h.outcomes.append((now, False))
        if h.breaker == "half_open" or self._should_open(h, now):
            self._open(h, now)

    def release(self, dep: str) -> None:
        """A request that ended with neither success nor failure (cancelled, client gone)."""
        h = self.get(dep)
        h.inflight = max(0, h.inflight - 1)
        h.probe_inflight = False

    # -- breaker -----------------------------------------------------------------------------

    def _open(self, h: DeploymentHealth, now: float) -> None:
        h.breaker = "open"
        h.probe_inflight = False
        h.opened += 1
        h.open_until = max(h.open_until, now + self.breaker.cooldown)

    def _close(self, h: DeploymentHealth) -> None:
        # Forget the failures that opened it, or the old error rate would re-open it at once.
        h.breaker, h.probe_inflight = "closed", False
        h.outcomes.clear()

    def _should_open(self, h: DeploymentHealth, now: float) -> bool:
        b = self.breaker
        if h.consecutive_failures >= b.consecutive_failures:
            return True
        recent = [ok for t, ok in h.outcomes if now - t <= b.window]
        if len(recent) < b.min_requests:
            return False
        return recent.count(False) / len(recent) >= b.error_rate

    def error_rate(self, dep: str) -> float | None:
        now = self.clock()
        recent = [ok for t, ok in self.get(dep).outcomes if now - t <= self.breaker.window]
        return recent.count(False) / len(recent) if recent else None

    # -- latency -----------------------------------------------------------------------------

    def p95_ms(self, dep: str, kind: str = "complete") -> float | None:
        return self.group_p95_ms([dep], kind)

    def group_p95_ms(self, deps: Iterable[str], kind: str = "complete") -> float | None:
        """p95 of the recent successful latencies of these deployments together."""
        lat = sorted(x for d in deps for x in self.get(d).samples(kind))
        if len(lat) < MIN_P95_SAMPLES:
            return None
        return lat[int(0.95 * (len(lat) - 1))]

    def snapshot(self) -> dict[str, dict[str, object]]:
        now = self.clock()
        out: dict[str, dict[str, object]] = {}
        for dep, h in self._health.items():
            rate = self.error_rate(dep)
            p95 = self.p95_ms(dep)
            out[dep] = {
                "breaker": h.breaker,
                "cooldown_s": round(max(0.0, h.open_until - now), 3),
                "inflight": h.inflight,
                "ewma_ms": round(h.ewma_ms, 3) if h.ewma_ms is not None else None,
                "p95_ms": round(p95, 3) if p95 is not None else None,
                "consecutive_failures": h.consecutive_failures,
                "error_rate": round(rate, 4) if rate is not None else None,
                "breaker_opened": h.opened,
                "last_error": h.last_error,
            }
        return out
