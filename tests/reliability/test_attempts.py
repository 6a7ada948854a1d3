"""The attempt loop on its own, with scripted calls: ordering, limits, exclusions."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable

import pytest

from flagman.config import BreakerConfig, RetryConfig
from flagman.errors import (
    AuthenticationError,
    ContextWindowExceededError,
    FlagmanError,
    RateLimitedError,
    TimeoutError_,
    UpstreamUnavailableError,
)
from flagman.reliability.attempts import AttemptLoop, PlanEntry
from flagman.reliability.retry import RetryBudget
from flagman.reliability.state import HealthBoard


def plan(*spec: tuple[str, str, int | None]) -> list[PlanEntry[str]]:
    return [PlanEntry(dep, dep, group, cw) for dep, group, cw in spec]


def loop(**retry: object) -> AttemptLoop:
    cfg = RetryConfig(**{"backoff_base": 0.001, **retry})  # type: ignore[arg-type]
    return AttemptLoop(HealthBoard(BreakerConfig(consecutive_failures=100)), cfg,
                       RetryBudget(cfg), random.Random(0), frozenset({"rate_limited", "timeout",
                                                                      "context_window_exceeded"}))


def scripted(errors: dict[str, list[FlagmanError | None]]) -> tuple[
        Callable[[PlanEntry[str]], Awaitable[str]], list[str]]:
    calls: list[str] = []

    async def call(e: PlanEntry[str]) -> str:
        calls.append(e.id)
        script = errors.get(e.id) or [None]
        err = script.pop(0) if len(script) > 1 else script[0]
        if err is not None:
            raise err
        return e.id

    return call, calls


async def test_siblings_then_fallback_group_then_new_round_with_attempt_cap() -> None:
    lp = loop(attempts=4)
    down = UpstreamUnavailableError("x")
    call, calls = scripted({"a1": [down], "a2": [down], "b": [TimeoutError_("t")]})
    with pytest.raises(UpstreamUnavailableError):
        await lp.run(plan(("a1", "a", None), ("a2", "a", None), ("b", "fb", None)), call)
    # 503 is not in fallback_on: the fallback group `b` is never tried; a second round is
    assert calls == ["a1", "a2", "a1", "a2", "a1"]


async def test_per_class_limit_stops_early() -> None:
    lp = loop(attempts=5, per_class={"timeout": 1})
    call, calls = scripted({"a": [TimeoutError_("t")]})
    with pytest.raises(TimeoutError_):
        await lp.run(plan(("a", "g", None)), call)
    assert calls == ["a", "a"]  # one retry after a timeout, not five


async def test_non_retryable_is_raised_at_once() -> None:
    lp = loop(attempts=5)
    call, calls = scripted({"a": [AuthenticationError("no")]})
    with pytest.raises(AuthenticationError):
        await lp.run(plan(("a", "g", None), ("b", "g", None)), call)
    assert calls == ["a"]


async def test_context_window_error_skips_models_that_are_not_larger() -> None:
    lp = loop(attempts=5)
    call, calls = scripted({"small": [ContextWindowExceededError("long")],
                            "same": [ContextWindowExceededError("long")]})
    p = plan(("small", "s", 4000), ("sib", "s", 4000), ("same", "f1", 4000),
             ("unknown", "f2", None), ("big", "f3", 32000))
    entry, result = await lp.run(p, call)
    assert result == "unknown" and calls == ["small", "unknown"]


async def test_short_cooldown_is_awaited_long_one_is_not() -> None:
    lp = loop(attempts=2, backoff_max=0.5)
    call, calls = scripted({"a": [RateLimitedError("slow down", retry_after=0.2), None]})
    t0 = time.monotonic()
    _, result = await lp.run(plan(("a", "g", None)), call)
    assert result == "a" and calls == ["a", "a"] and time.monotonic() - t0 >= 0.2
    lp2 = loop(attempts=2, backoff_max=0.5)
    call2, calls2 = scripted({"a": [RateLimitedError("slow down", retry_after=5)]})
    with pytest.raises(RateLimitedError):
        await lp2.run(plan(("a", "g", None)), call2)
    assert calls2 == ["a"]


async def test_open_breaker_is_skipped_by_the_loop() -> None:
    lp = loop(attempts=2)
    lp.health.breaker = BreakerConfig(consecutive_failures=1, cooldown=60)
    lp.health.failure("a", "timeout")
    call, calls = scripted({})
    entry, _ = await lp.run(plan(("a", "g", None), ("b", "g", None)), call)
    assert entry.id == "b" and calls == ["b"]


async def test_a_gateway_bug_is_an_internal_error_not_a_breaker_failure() -> None:
    lp = loop(attempts=2)
    lp.health.breaker = BreakerConfig(consecutive_failures=1)

    async def call(e: PlanEntry[str]) -> str:
        raise KeyError("bug")

    with pytest.raises(FlagmanError) as info:
        await lp.run(plan(("a", "g", None), ("b", "g", None)), call)
    assert info.value.status == 500 and info.value.error_class == "internal"
    assert [a.deployment for a in lp.attempts] == ["a"]  # not retried elsewhere
    assert lp.health.get("a").breaker == "closed" and lp.health.available("a")
    assert lp.health.get("a").inflight == 0


async def test_a_new_round_starts_with_the_healthiest_deployment() -> None:
    lp = loop(attempts=3)
    for _ in range(10):  # `a` has been failing for everyone lately, `b` has not
        lp.health.failure("a", "upstream_error")
        lp.health.success("b", 5.0)
    down = UpstreamUnavailableError("x")
    call, calls = scripted({"a": [down], "b": [down, None]})
    entry, _ = await lp.run(plan(("a", "g", None), ("b", "g", None)), call)
    # round 1 in the balancer's order, round 2 where success is likelier
    assert calls == ["a", "b", "b"] and entry.id == "b"
