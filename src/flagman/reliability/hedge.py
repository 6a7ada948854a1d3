"""Hedged requests: a second copy once an attempt outlives the group's recent p95.

From "The Tail at Scale" (Dean & Barroso): waiting for the p95 before
hedging costs about 5% extra requests and cuts the tail that a slow replica
causes.  The copy goes to a sibling deployment of the same group (a fallback
group is another model, only for errors), is paid for from that deployment's
retry budget, and counts as an attempt.  The first success wins; the other
attempt is cancelled, which closes its upstream request, and is logged with
the error class `cancelled`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from flagman.errors import FlagmanError

if TYPE_CHECKING:
    from flagman.reliability.attempts import AttemptLoop, Discard, PlanEntry, Progress

T = TypeVar("T")
Tgt = TypeVar("Tgt")


MIN_HEDGE_DELAY_S = 0.05


def hedge_delay(loop: AttemptLoop, plan: list[PlanEntry[Tgt]], p: Progress) -> float | None:
    """Seconds to wait before hedging: the group's recent p95, once there are enough samples."""
    ids = [e.id for e in plan if e.group == p.first_group]
    if len(ids) < 2:
        return None
    p95 = loop.health.group_p95_ms(ids, loop.kind)
    # A floor: when answers take milliseconds, ~5% of them exceed the p95 by noise alone,
    # and hedging those doubles load for nothing (model calls take far longer than this).
    return None if p95 is None else max(p95 / 1000, MIN_HEDGE_DELAY_S)


def second_choice(
    loop: AttemptLoop, plan: list[PlanEntry[Tgt]], p: Progress, entry: PlanEntry[Tgt]
) -> PlanEntry[Tgt] | None:
    """A sibling not tried yet, if the attempt cap and its retry budget allow a copy."""
    if len(loop.attempts) + 2 > loop.max_attempts:
        return None
    for e in plan:
        if (e.group == entry.group and e.id not in p.ever and loop.eligible(e, p)
                and loop.health.available(e.id)):
            return e if loop.budget.try_spend(e.id) else None
    return None


async def hedged(
    loop: AttemptLoop, plan: list[PlanEntry[Tgt]], p: Progress, entry: PlanEntry[Tgt],
    call: Callable[[PlanEntry[Tgt]], Awaitable[T]], discard: Discard[T] | None,
) -> tuple[PlanEntry[Tgt], T] | None:
    """Like `AttemptLoop.single`, with a hedge copy when the first answer is slow."""
    delay = hedge_delay(loop, plan, p)
    if delay is None:
        return await loop.single(plan, p, entry, call)
    loop.begin(entry, p)
    t0 = time.perf_counter()
    tasks: dict[asyncio.Future[T], PlanEntry[Tgt]] = {
        asyncio.ensure_future(loop.one(entry, call)): entry}
    winner: asyncio.Future[T] | None = None
    try:
        done, _ = await asyncio.wait(set(tasks), timeout=delay)
        second = None if done else second_choice(loop, plan, p, entry)
        if second is not None:
            loop.begin(second, p)
            tasks[asyncio.ensure_future(loop.one(second, call))] = second
        pending = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for t in [t for t in tasks if t in done]:  # plan order when both finish together
                exc = t.exception()
                if exc is None:
                    winner = t
                    return tasks[t], t.result()
                if not isinstance(exc, FlagmanError):
                    raise exc
                loop.learn(plan, p, tasks[t], exc)
        return None
    finally:
        loop.upstream_s += time.perf_counter() - t0
        await _settle(tasks, winner, discard)


async def _settle(
    tasks: dict[asyncio.Future[T], Any], winner: asyncio.Future[T] | None,
    discard: Discard[T] | None,
) -> None:
    """Cancel the losers and wait for them, so no upstream request outlives the race."""
    losers = [t for t in tasks if t is not winner]
    for t in losers:
        t.cancel()
    results = await asyncio.gather(*losers, return_exceptions=True)
    for t, r in zip(losers, results, strict=True):
        # Both answered at once: the loser's answer (an open stream) must be released.
        if discard is not None and not t.cancelled() and t.exception() is None:
            await discard(r)  # type: ignore[arg-type]
