"""Breaker state machine, cooldowns, retry budget and backoff, on an injected clock."""

from __future__ import annotations

import random
import statistics

import pytest

from flagman.config import BreakerConfig, RetryConfig, parse_config
from flagman.errors import ConfigError
from flagman.reliability.retry import RetryBudget, backoff_delay
from flagman.reliability.state import HealthBoard


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def board(**kw: float) -> tuple[HealthBoard, Clock]:
    clock = Clock()
    return HealthBoard(BreakerConfig(**kw), clock=clock), clock  # type: ignore[arg-type]


def fail(h: HealthBoard, dep: str = "d", cls: str = "upstream_unavailable",
         retry_after: float | None = None) -> None:
    h.start(dep)
    h.failure(dep, cls, retry_after)


def ok(h: HealthBoard, dep: str = "d", ms: float = 10.0) -> None:
    h.start(dep)
    h.success(dep, ms)


def test_consecutive_failures_open_then_one_probe_then_close() -> None:
    h, clock = board(consecutive_failures=3, cooldown=5)
    fail(h), fail(h)
    assert h.available("d")
    fail(h)
    assert h.get("d").breaker == "open" and not h.available("d")
    clock.t += 4.9
    assert not h.available("d")
    clock.t += 0.2
    assert h.available("d") and h.get("d").breaker == "half_open"
    h.start("d")  # the probe
    assert not h.available("d"), "a half-open breaker admits one probe at a time"
    h.success("d", 5.0)
    assert h.get("d").breaker == "closed" and h.available("d")


def test_failed_probe_reopens_and_cancelled_probe_frees_the_slot() -> None:
    h, clock = board(consecutive_failures=1, cooldown=1)
    fail(h)
    clock.t += 1.1
    assert h.available("d")
    h.start("d")
    h.release("d")  # the client went away: no verdict, another probe may go
    assert h.available("d")
    fail(h)
    assert h.get("d").breaker == "open" and h.get("d").opened == 2
    assert h.cooldown_remaining("d") == pytest.approx(1.0)


def test_error_rate_over_window_opens() -> None:
    h, clock = board(consecutive_failures=100, error_rate=0.5, window=10, min_requests=10)
    for _ in range(5):
        ok(h)
        fail(h)
        clock.t += 0.1
    # 5 of 10 failed: the 10th outcome crosses the threshold
    assert h.get("d").breaker == "open"
    h2, clock2 = board(consecutive_failures=100, error_rate=0.5, window=10, min_requests=10)
    for _ in range(4):
        fail(h2)
        clock2.t += 20  # outside the window: old failures do not count
        ok(h2), ok(h2)
    assert h2.get("d").breaker == "closed"


def test_closing_forgets_the_failures_that_opened_it() -> None:
    h, clock = board(consecutive_failures=100, error_rate=0.5, window=60, min_requests=4,
                     cooldown=1)
    for _ in range(4):
        fail(h)
    assert h.get("d").breaker == "open"
    clock.t += 1.5
    assert h.available("d")
    ok(h)
    fail(h)  # one failure after recovery must not re-open it through the stale rate
    assert h.get("d").breaker == "closed"


def test_rate_limit_cools_down_for_retry_after_without_tripping_breaker() -> None:
    h, clock = board(consecutive_failures=2, cooldown=5, max_cooldown=60)
    for _ in range(3):
        fail(h, cls="rate_limited", retry_after=2.0)
    assert h.get("d").breaker == "closed" and h.get("d").consecutive_failures == 0
    assert not h.available("d")
    clock.t += 2.01
    assert h.available("d")
    fail(h, cls="rate_limited")  # no Retry-After: the breaker cooldown
    assert h.cooldown_remaining("d") == pytest.approx(5.0)
    clock.t += 6
    fail(h, cls="rate_limited", retry_after=86400)  # capped
    assert h.cooldown_remaining("d") == pytest.approx(60.0)


@pytest.mark.parametrize("cls", ["bad_request", "context_window_exceeded", "content_policy",
                                 "authentication"])
def test_request_errors_say_nothing_about_health(cls: str) -> None:
    h, _ = board(consecutive_failures=1)
    for _ in range(5):
        fail(h, cls=cls)
    assert h.get("d").breaker == "closed" and h.available("d") and h.get("d").inflight == 0


def test_failure_after_release_does_not_undercount_inflight() -> None:
    h, _ = board()
    h.start("d"), h.start("d")
    h.success("d", 1.0)  # a stream's first token
    h.failure("d", "upstream_error", release=False)  # the same stream breaking later
    assert h.get("d").inflight == 1


def test_p95_needs_enough_samples_and_is_per_kind() -> None:
    h, _ = board()
    for i in range(19):
        ok(h, ms=float(i))
    assert h.p95_ms("d") is None
    ok(h, ms=100.0)
    assert h.p95_ms("d") == 18.0
    assert h.p95_ms("d", "stream") is None
    assert h.group_p95_ms(["d", "other"]) == 18.0


def test_budget_ratio_floor_and_sliding_window() -> None:
    clock = Clock()
    cfg = RetryConfig(budget_ratio=0.2, budget_floor=2, budget_window=10)
    b = RetryBudget(cfg, clock=clock)
    for _ in range(10):
        b.record_first("d")
    spent = sum(b.try_spend("d") for _ in range(10))
    assert spent == 2 + 2  # floor + 20% of 10
    assert b.try_spend("other")  # budgets are per deployment
    clock.t += 11  # the window slid past: a fresh budget (floor only)
    assert sum(b.try_spend("d") for _ in range(10)) == 2
    assert b.stats()["denied_total"] == 6 + 8


def test_backoff_is_full_jitter_and_capped() -> None:
    cfg = RetryConfig(backoff_base=0.1, backoff_max=1.0)
    rng = random.Random(3)
    for attempt, cap in [(0, 0.1), (2, 0.4), (10, 1.0), (500, 1.0)]:
        xs = [backoff_delay(attempt, cfg, rng) for _ in range(2000)]
        assert 0 <= min(xs) < cap * 0.05 and cap * 0.95 < max(xs) <= cap
        assert statistics.mean(xs) == pytest.approx(cap / 2, rel=0.1)


def test_config_rejects_unknown_error_classes() -> None:
    base = {"models": [{"name": "m", "base_url": "http://127.0.0.1:1/v1"}]}
    with pytest.raises(ConfigError, match=r"groups\.m\.fallback_on.*ratelimited"):
        parse_config({**base, "groups": {"m": {"fallback_on": ["ratelimited"]}}})
    with pytest.raises(ConfigError, match=r"reliability\.retry\.per_class"):
        parse_config({**base, "reliability": {"retry": {"per_class": {"timout": 1}}}})
    cfg = parse_config({**base, "reliability": {"retry": {"per_class": {"timeout": 0}}}})
    assert cfg.reliability.retry.per_class == {"timeout": 0}
