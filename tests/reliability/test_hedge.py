"""Hedging: past the group's recent p95, a second copy goes to a sibling; first answer wins."""

from __future__ import annotations

import time

from tests.conftest import openai_model
from tests.fakes.gateway import GatewayServer
from tests.fakes.openai_upstream import Reply
from tests.reliability.helpers import MakeGateway, Upstream, attempts_of, chat, wait_until


def _gw(make_gateway: MakeGateway, a: Upstream, b: Upstream, hedge: bool) -> GatewayServer:
    return make_gateway({
        "models": [openai_model("m", a, id="a"), openai_model("m", b, id="b")],
        "groups": {"m": {"strategy": "ordered", "hedge": hedge}},
    })


def test_slow_answer_is_hedged_and_the_loser_cancelled(
    make_gateway: MakeGateway, upstream: Upstream, upstream_b: Upstream,
) -> None:
    gw = _gw(make_gateway, upstream, upstream_b, hedge=True)
    for _ in range(25):  # enough samples for a p95 (all fast, all from `a`)
        chat(gw)
    # fast answers stay under the 50 ms floor: at most a rare scheduling hiccup is hedged
    assert len(upstream_b.requests) <= 2
    upstream.enqueue(Reply(delay=5.0, text="slow"))
    t0 = time.monotonic()
    r = chat(gw)
    assert time.monotonic() - t0 < 3.0
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] != "slow"
    assert r.headers["x-flagman-model"] == "b"
    assert sorted(attempts_of(r)) == ["a:cancelled", "b:ok"]
    assert wait_until(lambda: upstream.cancelled == 1 and upstream.active == 0)
    assert gw.get("/readyz").json()["deployments"]["a"]["breaker"] == "closed"


def test_slow_stream_first_token_is_hedged(
    make_gateway: MakeGateway, upstream: Upstream, upstream_b: Upstream,
) -> None:
    gw = _gw(make_gateway, upstream, upstream_b, hedge=True)
    for _ in range(25):
        assert chat(gw, stream=True).status_code == 200
    upstream.enqueue(Reply(ttft_delay=5.0))
    t0 = time.monotonic()
    r = chat(gw, stream=True)
    assert time.monotonic() - t0 < 3.0
    assert r.headers["x-flagman-model"] == "b" and r.text.rstrip().endswith("data: [DONE]")
    assert wait_until(lambda: upstream.active == 0)


def test_without_hedge_the_slow_answer_is_awaited(
    make_gateway: MakeGateway, upstream: Upstream, upstream_b: Upstream,
) -> None:
    gw = _gw(make_gateway, upstream, upstream_b, hedge=False)
    for _ in range(25):
        chat(gw)
    upstream.enqueue(Reply(delay=0.5, text="slow"))
    r = chat(gw)
    assert r.json()["choices"][0]["message"]["content"] == "slow"
    assert len(upstream_b.requests) == 0
