"""Failover inside a group, fallback chains by error class, Retry-After, breakers, budget.

All through a real flagman server and real fault-injecting upstreams on loopback.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
from tests.conftest import openai_model
from tests.fakes.gateway import GatewayServer
from tests.fakes.openai_upstream import Reply
from tests.reliability.helpers import (
    MakeGateway,
    Upstream,
    attempts_of,
    chat,
    closed_port_url,
    wait_until,
)

ORDERED = {"m": {"strategy": "ordered"}}


def test_hard_down_deployment_every_request_succeeds(
    make_gateway: MakeGateway, upstream: Upstream,
) -> None:
    gw = make_gateway({"models": [
        {"name": "m", "id": "down", "base_url": closed_port_url()},
        {"name": "m", "id": "up", "base_url": upstream.url},
    ], "reliability": {"breaker": {"cooldown": 60}}})
    results = [chat(gw, stream=i % 3 == 0) for i in range(40)]
    assert [r.status_code for r in results] == [200] * 40
    assert all(r.headers["x-flagman-model"] == "up" for r in results)
    assert len(upstream.requests) == 40
    tried_down = sum(1 for r in results for a in attempts_of(r) if a.startswith("down:"))
    # weighted order puts `down` first half the time until 5 failures open its breaker
    assert 1 <= tried_down <= 5
    assert all(a == "down:upstream_unavailable" for r in results for a in attempts_of(r)
               if a.startswith("down:"))
    ready = gw.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["deployments"]["down"]["breaker"] in ("open", "half_open")
    assert ready["deployments"]["down"]["last_error"] == "upstream_unavailable"


def test_attempts_are_logged_with_class_and_latency(
    make_gateway: MakeGateway, upstream: Upstream, upstream_b: Upstream,
) -> None:
    upstream.enqueue(Reply(delay=1.0))
    gw = make_gateway({"models": [openai_model("m", upstream, id="a", timeout=0.3),
                                  openai_model("m", upstream_b, id="b")], "groups": ORDERED})
    r = chat(gw)
    assert r.status_code == 200 and attempts_of(r) == ["a:timeout", "b:ok"]
    row = gw.rows()[-1]
    attempts = json.loads(row["attempts"])
    pairs = [(a["deployment"], a["error_class"]) for a in attempts]
    assert pairs == [("a", "timeout"), ("b", None)]
    assert 250 <= attempts[0]["latency_ms"] < 3000  # the deployment's 0.3 s total timeout
    assert row["deployment"] == "b" and row["id"] == r.headers["x-flagman-request-id"]


# -- fallback chains by error class ----------------------------------------------------------


def test_context_window_skips_small_model_before_trying(
    make_gateway: MakeGateway, upstream: Upstream, upstream_b: Upstream,
) -> None:
    gw = make_gateway({
        "models": [openai_model("small", upstream, context_window=50),
                   openai_model("big", upstream_b, context_window=100000)],
        "groups": {"small": {"fallbacks": ["big"]}},
    })
    long = [{"role": "user", "content": "word " * 200}]
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": "small", "messages": long})
    assert r.status_code == 200 and r.headers["x-flagman-model"] == "big"
    assert len(upstream.requests) == 0 and len(upstream_b.requests) == 1
    assert chat(gw, "small").headers["x-flagman-model"] == "small"  # short prompts stay


def test_context_window_error_goes_to_larger_model_not_sibling(
    make_gateway: MakeGateway, upstream: Upstream, upstream_b: Upstream,
) -> None:
    upstream.enqueue(Reply(status=400, error_code="context_length_exceeded"))
    gw = make_gateway({
        "models": [openai_model("small", upstream, id="s1"),
                   openai_model("small", upstream, id="s2"),
                   openai_model("big", upstream_b)],
        "groups": {"small": {"strategy": "ordered", "fallbacks": ["big"]}},
    })
    r = chat(gw, "small")
    assert r.status_code == 200 and r.headers["x-flagman-model"] == "big"
    assert attempts_of(r) == ["s1:context_window_exceeded", "big:ok"]
    assert len(upstream.requests) == 1  # the sibling shares the window: not tried


def test_context_window_error_without_fallback_is_returned(
    make_gateway: MakeGateway, upstream: Upstream,
) -> None:
    upstream.enqueue(Reply(status=400, error_code="context_length_exceeded"))
    gw = make_gateway({"models": [openai_model("m", upstream), openai_model("m", upstream)]})
    r = chat(gw)
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_window_exceeded"
    assert len(upstream.requests) == 1


def test_authentication_and_bad_request_are_returned_not_retried(
    make_gateway: MakeGateway, upstream: Upstream, upstream_b: Upstream,
) -> None:
    gw = make_gateway({
        "models": [openai_model("m", upstream, id="a1"), openai_model("m", upstream, id="a2"),
                   openai_model("other", upstream_b)],
        "groups": {"m": {"strategy": "ordered", "fallbacks": ["other"]}},
    })
    for status, code in [(401, "authentication"), (400, "bad_request"), (403, "permission")]:
        before = len(upstream.requests)
        upstream.enqueue(Reply(status=status))
        r = chat(gw)
        assert r.status_code == status and r.json()["error"]["code"] == code
        assert len(upstream.requests) == before + 1
    assert len(upstream_b.requests) == 0


def test_fallback_on_limits_which_classes_cross_groups(
    make_gateway: MakeGateway, upstream: Upstream, upstream_b: Upstream,
) -> None:
    gw = make_gateway({
        "models": [openai_model("m", upstream), openai_model("other", upstream_b)],
        "groups": {"m": {"fallbacks": ["other"],
                         "fallback_on": ["rate_limited", "content_policy"]}},
        "reliability": {"retry": {"backoff_base": 0.001}},
    })
    upstream.enqueue(Reply(status=503), Reply(status=503), Reply(status=503))
    r = chat(gw)
    assert r.status_code == 503 and len(upstream_b.requests) == 0
    upstream.enqueue(Reply(status=400, error_code="content_policy_violation"))
    r = chat(gw)
    assert r.status_code == 200 and r.headers["x-flagman-model"] == "other"
    upstream.enqueue(Reply(status=429, headers={"retry-after": "0"}))
    r = chat(gw)
    assert r.status_code == 200 and attempts_of(r) == ["m:rate_limited", "other:ok"]


def test_router_fallbacks_after_group_fails(
    make_gateway: MakeGateway, upstream: Upstream, upstream_b: Upstream,
) -> None:
    upstream.default = Reply(status=502)
    gw = make_gateway({
        "models": [openai_model("a", upstream), openai_model("b", upstream_b)],
        "routers": [{"name": "auto", "default": "a", "fallbacks": ["b"]}],
    })
    r = chat(gw, "auto")
    assert r.status_code == 200 and r.headers["x-flagman-model"] == "b"
    assert attempts_of(r) == ["a:upstream_unavailable", "b:ok"]


# -- Retry-After ------------------------------------------------------------------------------


def test_429_retry_after_nothing_sent_before_it(
    make_gateway: MakeGateway, upstream: Upstream, upstream_b: Upstream,
) -> None:
    upstream.enqueue(Reply(status=429, error_type="rate_limit_error", headers={"retry-after": "1"}))
    gw = make_gateway({"models": [openai_model("m", upstream, id="a"),
                                  openai_model("m", upstream_b, id="b")], "groups": ORDERED})
    r = chat(gw)
    assert r.status_code == 200 and attempts_of(r) == ["a:rate_limited", "b:ok"]
    limited_at = upstream.requests[0].at
    assert gw.get("/readyz").json()["deployments"]["a"]["cooldown_s"] > 0
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        assert chat(gw).status_code == 200
        time.sleep(0.03)
    later = [q.at for q in upstream.requests[1:]]
    assert later, "the deployment must come back after its Retry-After"
    assert min(later) >= limited_at + 1.0


def test_short_retry_after_is_waited_for_in_request(
    make_gateway: MakeGateway, upstream: Upstream,
) -> None:
    upstream.enqueue(Reply(status=429, headers={"retry-after": "1"}))
    gw = make_gateway({"models": [openai_model("m", upstream)]})
    t0 = time.monotonic()
    r = chat(gw)
    assert r.status_code == 200 and time.monotonic() - t0 >= 1.0
    assert upstream.requests[1].at - upstream.requests[0].at >= 1.0


def test_long_retry_after_is_passed_to_the_client(
    make_gateway: MakeGateway, upstream: Upstream,
) -> None:
    upstream.enqueue(Reply(status=429, headers={"retry-after": "30"}))
    gw = make_gateway({"models": [openai_model("m", upstream)]})
    for _ in range(3):
        r = chat(gw)
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        assert 28 <= int(r.headers["retry-after"]) <= 30
    assert len(upstream.requests) == 1  # still cooling down: nothing more was sent


# -- circuit breaker ---------------------------------------------------------------------------


def _breaker(gw: GatewayServer, dep: str) -> dict[str, Any]:
    return gw.get("/readyz").json()["deployments"][dep]


def test_breaker_opens_skips_half_opens_and_closes(
    make_gateway: MakeGateway, upstream: Upstream, upstream_b: Upstream,
) -> None:
    upstream.enqueue(*[Reply(status=503)] * 3)
    gw = make_gateway({
        "models": [openai_model("m", upstream, id="a"), openai_model("m", upstream_b, id="b")],
        "groups": ORDERED,
        "reliability": {"breaker": {"consecutive_failures": 3, "cooldown": 1.5}},
    })
    for _ in range(3):
        assert chat(gw).status_code == 200
    assert _breaker(gw, "a")["breaker"] == "open"
    for _ in range(5):  # open: skipped, no attempt at all
        r = chat(gw)
        assert r.headers["x-flagman-model"] == "b" and not attempts_of(r)
    assert len(upstream.requests) == 3

    # half-open: exactly one probe at a time, everyone else goes to b
    time.sleep(1.6)
    upstream.enqueue(Reply(status=503, delay=0.4))
    probe = threading.Thread(target=chat, args=(gw,))
    probe.start()
    assert wait_until(lambda: upstream.active == 1)
    assert all(chat(gw).headers["x-flagman-model"] == "b" for _ in range(5))
    probe.join()
    assert len(upstream.requests) == 4
    state = _breaker(gw, "a")
    assert state["breaker"] == "open" and state["breaker_opened"] == 2  # the failed probe

    time.sleep(1.6)
    r = chat(gw)  # the probe succeeds: closed again
    assert r.headers["x-flagman-model"] == "a" and not attempts_of(r)
    assert _breaker(gw, "a")["breaker"] == "closed"
    assert all(chat(gw).headers["x-flagman-model"] == "a" for _ in range(3))


# -- retry budget -----------------------------------------------------------------------------


NO_BREAKER = {"consecutive_failures": 1_000_000, "min_requests": 1_000_000}


def test_retry_budget_caps_extra_load_on_a_failing_upstream(
    make_gateway: MakeGateway, upstream: Upstream,
) -> None:
    upstream.default = Reply(status=503)
    gw = make_gateway({
        "models": [openai_model("m", upstream)],
        "reliability": {"breaker": NO_BREAKER, "retry": {
            "attempts": 2, "backoff_base": 0.001, "budget_ratio": 0.2, "budget_floor": 0,
            "budget_window": 60}},
    })
    n = 60
    assert all(chat(gw).status_code == 503 for _ in range(n))
    extra = len(upstream.requests) - n
    assert n * 0.2 - 1 <= extra <= n * 0.2 + 1, extra  # without the budget: 2 * n
    budget = gw.get("/readyz").json()["retry_budget"]
    assert budget["first_attempts"] == n and budget["extra_attempts"] == extra
    assert budget["denied_total"] > 0


def test_failover_to_a_healthy_sibling_is_not_budgeted(
    make_gateway: MakeGateway, upstream: Upstream, upstream_b: Upstream,
) -> None:
    upstream.default = Reply(status=503)
    gw = make_gateway({
        "models": [openai_model("m", upstream, id="a"), openai_model("m", upstream_b, id="b")],
        "groups": ORDERED,
        "reliability": {"breaker": NO_BREAKER, "retry": {"budget_ratio": 0, "budget_floor": 0}},
    })
    assert all(chat(gw).status_code == 200 for _ in range(30))
    assert len(upstream.requests) == 30 and len(upstream_b.requests) == 30
