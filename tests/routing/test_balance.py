"""Load balancing inside a group: weighted splits, least-busy, latency-aware, cheapest, sticky."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from dataclasses import dataclass

import openai
import yaml
from tests.conftest import openai_model
from tests.fakes.openai_upstream import Reply

from flagman.config import BreakerConfig
from flagman.reliability.state import HealthBoard
from flagman.routing import balance
from flagman.types import ChatRequest


@dataclass
class D:
    id: str
    weight: float = 1.0
    price: float = 0.0


def test_weighted_split_within_statistical_bounds() -> None:
    cands = [D("stable", 90), D("canary", 10)]
    rng = random.Random(42)
    health = HealthBoard(BreakerConfig())
    n = 20000
    firsts = Counter(balance.order("weighted", cands, health, rng)[0].id for _ in range(n))
    p = 0.10
    sd = math.sqrt(n * p * (1 - p))
    assert abs(firsts["canary"] - n * p) < 4 * sd, firsts  # 4 sigma: fails ~1 in 15,000 runs


def test_zero_weight_is_only_a_backup() -> None:
    cands = [D("a", 1), D("b", 0)]
    rng = random.Random(1)
    h = HealthBoard(BreakerConfig())
    orders = [tuple(d.id for d in balance.order("weighted", cands, h, rng)) for _ in range(200)]
    assert set(orders) == {("a", "b")}


def test_cheapest_and_ordered() -> None:
    cands = [D("dear", price=30), D("cheap", price=1), D("mid", price=5)]
    h = HealthBoard(BreakerConfig())
    assert [d.id for d in balance.order("cheapest", cands, h, random.Random())] == \
        ["cheap", "mid", "dear"]
    assert [d.id for d in balance.order("ordered", cands, h, random.Random())] == \
        ["dear", "cheap", "mid"]


def test_sticky_conversation_keeps_its_deployment() -> None:
    cands = [D(f"d{i}") for i in range(5)]
    h = HealthBoard(BreakerConfig())
    turn1 = ChatRequest({"messages": [{"role": "user", "content": "plan my trip"}]})
    turn3 = ChatRequest({"messages": [{"role": "user", "content": "plan my trip"},
                                      {"role": "assistant", "content": "ok"},
                                      {"role": "user", "content": "and hotels?"}]})
    k1, k3 = balance.sticky_key(turn1, "conversation"), balance.sticky_key(turn3, "conversation")
    assert k1 == k3
    first = balance.order("weighted", cands, h, random.Random(), k1)[0].id
    assert all(balance.order("weighted", cands, h, random.Random(), k3)[0].id == first
               for _ in range(20))
    keys = {balance.sticky_key(ChatRequest({"messages": [{"role": "user", "content": str(i)}]}),
                               "conversation") for i in range(50)}
    # if that deployment is gone, only its conversations move: the others stay put
    others = [c for c in cands if c.id != first]
    kept = 0
    for k in keys:
        was = balance.order("weighted", cands, h, random.Random(), k)[0].id
        if was != first:
            assert balance.order("weighted", others, h, random.Random(), k)[0].id == was
            kept += 1
    assert kept >= 25
    spread = Counter(balance.order("weighted", cands, h, random.Random(), k)[0].id for k in keys)
    assert len(spread) == 5  # different conversations still spread out


async def test_least_busy_prefers_idle_deployment(make_gateway, upstream, upstream_b) -> None:
    upstream.default = Reply(delay=0.5)  # slow: its requests pile up in flight
    upstream_b.default = Reply(delay=0.01)
    gw = make_gateway({"models": [openai_model("m", upstream), openai_model("m", upstream_b)],
                       "groups": {"m": {"strategy": "least_busy"}}})
    c = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)

    async def one() -> str:
        r = await c.chat.completions.with_raw_response.create(
            model="m", messages=[{"role": "user", "content": "x"}])
        return r.headers["x-flagman-model"]

    tasks = []
    for _ in range(20):  # a steady arrival, one request every 20 ms
        tasks.append(asyncio.ensure_future(one()))
        await asyncio.sleep(0.02)
    counts = Counter(await asyncio.gather(*tasks))
    # the slow deployment keeps requests in flight, so the idle fast one takes the rest
    assert counts["m#0"] <= 3 and counts["m#1"] >= 17, counts
    await c.close()


async def test_latency_aware_moves_traffic_to_fast_deployment(make_gateway, upstream,
                                                              upstream_b) -> None:
    upstream.default = Reply(delay=0.15)
    upstream_b.default = Reply(delay=0.0)
    gw = make_gateway({"models": [openai_model("m", upstream), openai_model("m", upstream_b)],
                       "groups": {"m": {"strategy": "latency"}}})
    c = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    answered = []
    for _ in range(30):
        r = await c.chat.completions.with_raw_response.create(
            model="m", messages=[{"role": "user", "content": "x"}])
        answered.append(r.headers["x-flagman-model"])
    later = Counter(answered[5:])
    assert later["m#1"] >= 24, answered  # after measuring both, the fast one wins
    await c.close()


def test_weighted_split_over_http_and_reload(make_gateway, upstream, upstream_b) -> None:
    gw = make_gateway({"server": {"reload_interval": 0.05},
                       "models": [openai_model("m", upstream, weight=80),
                                  openai_model("m", upstream_b, weight=20)]})
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    n = 400
    sd = math.sqrt(n * 0.2 * 0.8)
    for _ in range(n):
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    b = len(upstream_b.requests)
    assert abs(b - n * 0.2) < 4 * sd, b
    # a canary promoted by editing the file: the split follows the reloaded weights
    cfg = yaml.safe_load(gw.config_path.read_text())
    cfg["models"][0]["weight"], cfg["models"][1]["weight"] = 20, 80
    gw.config_path.write_text(yaml.safe_dump(cfg))
    deadline = time.monotonic() + 10
    while gw.gateway.reloads == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gw.gateway.reloads == 1
    for _ in range(n):
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    b2 = len(upstream_b.requests) - b
    assert abs(b2 - n * 0.8) < 4 * sd, b2
