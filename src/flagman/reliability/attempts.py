"""The attempt loop: try a plan of deployments until one answers.

The plan is the chosen group's deployments in balancer order followed by its
fallback groups (`Runtime.plan`).  The loop walks it:

- deployments whose breaker is open or that are cooling down are skipped;
- deployments of the first group fail over to each other on any retryable
  error; crossing to a fallback group needs the error class to be in the
  group's `fallback_on`;
- a `context_window_exceeded` answer rules out every deployment whose
  context window is not larger, so the next try is a bigger model;
- non-retryable errors (bad request, authentication…) are returned at once;
- when every candidate was tried once, a new round starts after a
  full-jitter backoff, while `attempts`, `per_class` and the per-deployment
  retry budget allow;
- when nothing is available only because of a short cooldown (Retry-After no
  longer than `backoff_max`), the loop waits for it instead of failing.

With `hedge`, an attempt that outlives the group's recent p95 latency gets a
second copy on a sibling deployment; the first success wins and the other
is cancelled (`hedge.py`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from flagman.config import RetryConfig
from flagman.errors import FlagmanError, RateLimitedError, UpstreamUnavailableError
from flagman.reliability.hedge import hedged
from flagman.reliability.retry import RetryBudget, backoff_delay
from flagman.reliability.state import HealthBoard
from flagman.types import Attempt

log = logging.getLogger("flagman")

T = TypeVar("T")
Tgt = TypeVar("Tgt")
Discard = Callable[[T], Awaitable[None]]


@dataclass
class PlanEntry(Generic[Tgt]):
    target: Tgt
    id: str
    group: str
    context_window: int | None = None


@dataclass
class Progress:
    """What one request has learnt while walking its plan."""

    first_group: str
    tried: set[str] = field(default_factory=set)  # deployments tried in this round
    ever: set[str] = field(default_factory=set)  # deployments tried by this request
    excluded: set[str] = field(default_factory=set)  # never again (context window too small)
    last: FlagmanError | None = None
    retries: int = 0  # re-sends to deployments already tried (they back off)
    round: int = 1  # 1: the balancer's order; later rounds prefer the healthiest
    waits: int = 0  # cooldown waits (bounded like attempts)


def too_small(e: PlanEntry[Tgt], failed: PlanEntry[Tgt]) -> bool:
    """Could `e` not take a prompt `failed` rejected as too long for its context window?"""
    if e.context_window is not None and failed.context_window is not None:
        return e.context_window <= failed.context_window
    return e.group == failed.group  # unknown windows: siblings share the model


@dataclass
class AttemptLoop:
    health: HealthBoard
    retry: RetryConfig
    budget: RetryBudget
    rng: random.Random
    fallback_on: frozenset[str] = frozenset()
    hedge: bool = False
    kind: str = "complete"  # "stream" when success is the first token (hedge delay, p95)
    attempts: list[Attempt] = field(default_factory=list)
    upstream_s: float = 0.0  # time spent waiting on upstreams, for the overhead figure

    @property
    def max_attempts(self) -> int:
        return 1 + self.retry.attempts

    async def run(
        self, plan: list[PlanEntry[Tgt]], call: Callable[[PlanEntry[Tgt]], Awaitable[T]],
        discard: Discard[T] | None = None,
    ) -> tuple[PlanEntry[Tgt], T]:
        """The first successful answer along the plan, or the most telling error."""
        if not plan:
            raise UpstreamUnavailableError("no deployment available for this request")
        p = Progress(plan[0].group)
        while len(self.attempts) < self.max_attempts:
            entry = await self._choose(plan, p)
            if entry is None:
                break
            if self.hedge and entry.group == p.first_group:
                won = await hedged(self, plan, p, entry, call, discard)
            else:
                won = await self.single(plan, p, entry, call)
            if won is not None:
                return won
        raise p.last or self._nothing_available(plan)

    # -- choosing the next deployment -----------------------------------------------------------

    def eligible(self, e: PlanEntry[Tgt], p: Progress) -> bool:
        if e.id in p.excluded:
            return False
        crossing = e.group != p.first_group
        return not (crossing and p.last is not None and p.last.error_class not in self.fallback_on)

    def _next(self, plan: list[PlanEntry[Tgt]], p: Progress) -> PlanEntry[Tgt] | None:
        for e in plan if p.round == 1 else self._healthiest_first(plan):
            if e.id not in p.tried and self.eligible(e, p) and self.health.available(e.id):
                return e
        return None

    def _healthiest_first(self, plan: list[PlanEntry[Tgt]]) -> list[PlanEntry[Tgt]]:
        """A retry goes where it is most likely to succeed: lowest recent error rate first,
        groups kept in plan order (a fallback group is a substitute, not an upgrade)."""
        rank = {g: i for i, g in enumerate(dict.fromkeys(e.group for e in plan))}
        return sorted(plan, key=lambda e: (rank[e.group], self.health.error_rate(e.id) or 0.0))

    async def _choose(self, plan: list[PlanEntry[Tgt]], p: Progress) -> PlanEntry[Tgt] | None:
        while True:
            entry = self._next(plan, p)
            if entry is None and p.tried:
                p.tried = set()  # every candidate was tried once: a new round
                p.round += 1
                entry = self._next(plan, p)
            if entry is None:
                if await self._wait_for_cooldown(plan, p):
                    continue
                return None
            if not self.attempts:
                self.budget.record_first(entry.id)
                return entry
            if not self._class_allows(p.last):
                return None
            if entry.id not in p.ever:  # failover to a deployment not tried yet: free
                self.budget.record_first(entry.id)
                return entry
            if p.retries >= self.max_attempts or not self.budget.try_spend(entry.id):
                return None
            await asyncio.sleep(backoff_delay(p.retries, self.retry, self.rng))
            p.retries += 1
            if self.health.available(entry.id):
                return entry
            p.tried.add(entry.id)  # it went away while we backed off; pick again

    async def _wait_for_cooldown(self, plan: list[PlanEntry[Tgt]], p: Progress) -> bool:
        """Honour a short Retry-After in-request instead of failing the client."""
        if p.waits >= self.max_attempts or (self.attempts and not self._class_allows(p.last)):
            return False
        candidates = [e for e in plan if self.eligible(e, p)]
        if not any(self.health.available(e.id) for e in candidates):
            waits = (self.health.cooldown_remaining(e.id) for e in candidates)
            wait = min((w for w in waits if w > 0), default=None)
            if wait is None or wait > self.retry.backoff_max:
                return False
            await asyncio.sleep(wait + 0.001)  # timers may fire a clock tick early
        # else: a cooldown ended between the caller's look and ours; look again
        p.waits += 1
        p.tried = set()
        return True

    def _class_allows(self, error: FlagmanError | None) -> bool:
        if error is None:
            return True
        limit = self.retry.per_class.get(error.error_class, self.retry.attempts)
        used = sum(1 for a in self.attempts if a.error_class == error.error_class)
        return used <= limit

    # -- one attempt ------------------------------------------------------------------------------

    def begin(self, entry: PlanEntry[Tgt], p: Progress) -> None:
        p.tried.add(entry.id)
        p.ever.add(entry.id)

    async def single(
        self, plan: list[PlanEntry[Tgt]], p: Progress, entry: PlanEntry[Tgt],
        call: Callable[[PlanEntry[Tgt]], Awaitable[T]],
    ) -> tuple[PlanEntry[Tgt], T] | None:
        self.begin(entry, p)
        t0 = time.perf_counter()
        try:
            return entry, await self.one(entry, call)
        except FlagmanError as exc:
            self.learn(plan, p, entry, exc)
            return None
        finally:
            self.upstream_s += time.perf_counter() - t0

    def learn(
        self, plan: list[PlanEntry[Tgt]], p: Progress, entry: PlanEntry[Tgt], exc: FlagmanError
    ) -> None:
        """Take a failed attempt into account, or re-raise it when retrying cannot help."""
        if not exc.retryable:
            raise exc
        p.last = exc
        if exc.error_class == "context_window_exceeded":
            p.excluded |= {e.id for e in plan if too_small(e, entry)}

    async def one(
        self, entry: PlanEntry[Tgt], call: Callable[[PlanEntry[Tgt]], Awaitable[T]]
    ) -> T:
        """Call one deployment and record the outcome in the attempts and the health board."""
        self.health.start(entry.id)
        t0 = time.perf_counter()
        try:
            result = await call(entry)
        except FlagmanError as exc:
            self._record(entry, t0, exc.error_class, exc.status)
            self.health.failure(entry.id, exc.error_class, exc.retry_after)
            raise
        except asyncio.CancelledError:
            self._record(entry, t0, "cancelled", None)
            self.health.release(entry.id)
            raise
        except Exception as exc:
            # A bug in flagman or a provider plugin, not an upstream failure: it must not open
            # the deployment's breaker (a malformed request could then take it out for
            # everyone) nor be retried elsewhere; it is logged and answered as a 500 body.
            log.exception("calling deployment %s failed inside the gateway", entry.id)
            err = FlagmanError(f"internal error calling deployment {entry.id} "
                               f"({type(exc).__name__}); see the server log", deployment=entry.id)
            self._record(entry, t0, err.error_class, err.status)
            self.health.release(entry.id)
            raise err from exc
        ms = self._record(entry, t0, None, 200)
        self.health.success(entry.id, ms, self.kind)
        return result

    def _record(
        self, entry: PlanEntry[Tgt], t0: float, error_class: str | None, status: int | None
    ) -> float:
        ms = (time.perf_counter() - t0) * 1000
        self.attempts.append(Attempt(entry.id, error_class, ms, status))
        return ms

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
