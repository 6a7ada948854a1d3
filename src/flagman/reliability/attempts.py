"""The attempt loop: try a plan of deployments until one answers.

The plan is the chosen group's deployments in balancer order followed by its
fallback groups.  Deployments of one group fail over to each other on any
retryable error; crossing to a fallback group needs the error class to be in
the group's `fallback_on`.  Non-retryable errors (bad request,
authentication…) are returned at once.  When every distinct deployment has
been tried, the loop starts again from the first still-available one after a
full-jitter backoff, while the attempt count, the per-class limits and the
retry budget allow.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from flagman.config import RetryConfig
from flagman.errors import FlagmanError, RateLimitedError, UpstreamUnavailableError
from flagman.reliability.retry import RetryBudget, backoff_delay
from flagman.reliability.state import HealthBoard
from flagman.types import Attempt

T = TypeVar("T")
Tgt = TypeVar("Tgt")


@dataclass
class PlanEntry(Generic[Tgt]):
    target: Tgt
    id: str
    group: str
    context_window: int | None = None


@dataclass
class AttemptLoop:
    health: HealthBoard
    retry: RetryConfig
    budget: RetryBudget
    rng: random.Random
    fallback_on: set[str] = field(default_factory=set)
    attempts: list[Attempt] = field(default_factory=list)
    upstream_s: float = 0.0  # time spent waiting on upstreams, for the overhead figure

    def _class_allows(self, error: FlagmanError | None) -> bool:
        if error is None:
            return True
        limit = self.retry.per_class.get(error.error_class, self.retry.attempts)
        used = sum(1 for a in self.attempts if a.error_class == error.error_class)
        return used <= limit

    def _next(
        self, plan: list[PlanEntry[Tgt]], skip: set[str], last: FlagmanError | None,
        first_group: str,
    ) -> PlanEntry[Tgt] | None:
        for e in plan:
            if e.id in skip:
                continue
            if last is not None and e.group != first_group and (
                last.error_class not in self.fallback_on
            ):
                continue
            if self.health.available(e.id):
                return e
        return None

    async def run(
        self, plan: list[PlanEntry[Tgt]], call: Callable[[PlanEntry[Tgt]], Awaitable[T]]
    ) -> tuple[PlanEntry[Tgt], T]:
        if not plan:
            raise UpstreamUnavailableError("no deployment available for this request")
        max_attempts = 1 + self.retry.attempts
        first_group = plan[0].group
        tried: set[str] = set()
        last: FlagmanError | None = None
        previous: str | None = None
        self.budget.record_first()
        while len(self.attempts) < max_attempts:
            entry = self._next(plan, tried, last, first_group)
            if entry is None and tried:
                tried = set()  # every deployment was tried once: start a new round
                entry = self._next(plan, tried, last, first_group)
            if entry is None:
                break
            if self.attempts:
                if not self._class_allows(last) or not self.budget.try_spend():
                    break
                if entry.id == previous:
                    await asyncio.sleep(backoff_delay(len(self.attempts) - 1, self.retry, self.rng))
                    if not self.health.available(entry.id):
                        continue
            tried.add(entry.id)
            previous = entry.id
            try:
                return entry, await self._one(entry, call)
            except FlagmanError as exc:
                if not exc.retryable:
                    raise
                last = exc
                if exc.error_class == "context_window_exceeded":
                    # the same group's siblings share the model: go straight to fallbacks
                    tried |= {e.id for e in plan if e.group == entry.group}
        raise last or self._nothing_available(plan)

    async def _one(self, entry: PlanEntry[Tgt], call: Callable[[PlanEntry[Tgt]], Awaitable[T]]) -> T:
        self.health.start(entry.id)
        t0 = time.perf_counter()
        try:
            result = await call(entry)
        except FlagmanError as exc:
            dt = time.perf_counter() - t0
            self.upstream_s += dt
            self.attempts.append(Attempt(entry.id, exc.error_class, dt * 1000, exc.status))
            if exc.retryable:
                self.health.failure(entry.id, exc.error_class, exc.retry_after)
            else:
                self.health.release(entry.id)
            raise
        except BaseException:
            self.upstream_s += time.perf_counter() - t0
            self.health.release(entry.id)
            raise
        dt = time.perf_counter() - t0
        self.upstream_s += dt
        self.health.success(entry.id, dt * 1000)
        self.attempts.append(Attempt(entry.id, None, dt * 1000, 200))
        return result

    def _nothing_available(self, plan: list[PlanEntry[Tgt]]) -> FlagmanError:
        waits = [self.health.cooldown_remaining(e.id) for e in plan]
        wait = min(waits) if waits else None
        limited = any(self.health.get(e.id).last_error == "rate_limited" for e in plan)
        if limited:
            return RateLimitedError(
                "every deployment for this model is rate limited; retry later", retry_after=wait
            )
        return UpstreamUnavailableError(
            "every deployment for this model is cooling down after failures", retry_after=wait
        )
