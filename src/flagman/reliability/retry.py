"""Retry pacing: exponential backoff with full jitter, and a retry budget.

The budget is kept per deployment.  Sending a request to a deployment for the
first time (its first attempt, or a failover from another deployment) is
recorded as a *first send*; sending it again to a deployment that request
already tried, or a hedge copy, is an *extra send* and must be paid for:
within a sliding window, a deployment's extra sends may not exceed
`budget_floor + budget_ratio × first sends`.  So a deployment that is down
receives at most `1 + budget_ratio` times the load it would get with no
retries at all, however many clients retry, while failing over to a healthy
sibling or fallback stays free (that is the point of having one).  The floor
lets a quiet gateway still retry.

Counts are kept in time buckets (a tenth of the window each), so memory is
constant whatever the request rate.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from flagman.config import RetryConfig

BUCKETS = 10


def backoff_delay(attempt: int, cfg: RetryConfig, rng: random.Random) -> float:
    """Full jitter (AWS architecture blog): uniform(0, min(cap, base·2^attempt)).

    Spreading retries over the whole interval, rather than around its end,
    keeps many clients that failed together from retrying together.
    """
    return rng.uniform(0.0, min(cfg.backoff_max, cfg.backoff_base * (2 ** min(attempt, 30))))


@dataclass
class _Window:
    """Bucketed first/extra send counts of one deployment."""

    buckets: deque[list[float]] = field(default_factory=deque)  # [start, firsts, extras]

    def _current(self, now: float, window: float) -> list[float]:
        width = window / BUCKETS
        while self.buckets and now - self.buckets[0][0] >= window:
            self.buckets.popleft()
        if not self.buckets or now - self.buckets[-1][0] >= width:
            self.buckets.append([now, 0.0, 0.0])
        return self.buckets[-1]

    def totals(self, now: float, window: float) -> tuple[int, int]:
        self._current(now, window)
        return (int(sum(b[1] for b in self.buckets)), int(sum(b[2] for b in self.buckets)))


class RetryBudget:
    """Extra sends per deployment, capped relative to its first sends over a window."""

    def __init__(self, cfg: RetryConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.clock = clock
        self._windows: dict[str, _Window] = {}
        self.denied = 0  # extra sends refused since start (exported on /readyz)

    def _window(self, dep: str) -> _Window:
        w = self._windows.get(dep)
        if w is None:
            w = self._windows[dep] = _Window()
        return w

    def record_first(self, dep: str) -> None:
        self._window(dep)._current(self.clock(), self.cfg.budget_window)[1] += 1

    def try_spend(self, dep: str) -> bool:
        """Take one extra send to `dep` from its budget; False when it is used up."""
        c = self.cfg  # the gateway swaps it on reload
        w = self._window(dep)
        now = self.clock()
        firsts, extras = w.totals(now, c.budget_window)
        if extras >= c.budget_floor + c.budget_ratio * firsts:
            self.denied += 1
            return False
        w._current(now, c.budget_window)[2] += 1
        return True

    def stats(self) -> dict[str, int]:
        now = self.clock()
        firsts = extras = 0
        for w in self._windows.values():
            f, e = w.totals(now, self.cfg.budget_window)
            firsts, extras = firsts + f, extras + e
        return {"first_attempts": firsts, "extra_attempts": extras, "denied_total": self.denied}
