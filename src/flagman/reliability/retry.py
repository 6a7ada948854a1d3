"""Retry pacing: exponential backoff with full jitter, and a retry budget.

The budget caps extra upstream requests at `budget_ratio` of first attempts
over a sliding window (plus a small floor so a quiet gateway can still retry),
so retries cannot multiply the load on a provider that is already down.
"""

from __future__ import annotations

import random
import time
from collections import deque

from flagman.config import RetryConfig


def backoff_delay(attempt: int, cfg: RetryConfig, rng: random.Random) -> float:
    """Full jitter (AWS architecture blog): uniform(0, min(cap, base·2^attempt))."""
    return rng.uniform(0.0, min(cfg.backoff_max, cfg.backoff_base * (2**attempt)))


class RetryBudget:
    FLOOR = 10  # extra attempts always allowed per window

    def __init__(self, cfg: RetryConfig) -> None:
        self.ratio = cfg.budget_ratio
        self.window = cfg.budget_window
        self._firsts: deque[float] = deque()
        self._extras: deque[float] = deque()

    def _trim(self, now: float) -> None:
        for q in (self._firsts, self._extras):
            while q and now - q[0] > self.window:
                q.popleft()

    def record_first(self) -> None:
        self._firsts.append(time.monotonic())

    def try_spend(self) -> bool:
        """Take one extra attempt from the budget; False when it is used up."""
        now = time.monotonic()
        self._trim(now)
        if len(self._extras) >= self.FLOOR + self.ratio * len(self._firsts):
            return False
        self._extras.append(now)
        return True

    def stats(self) -> dict[str, int]:
        self._trim(time.monotonic())
        return {"first_attempts": len(self._firsts), "extra_attempts": len(self._extras)}
