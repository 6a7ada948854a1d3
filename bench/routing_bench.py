"""Decision latency of routing pipelines (no upstream calls).

    python bench/routing_bench.py [--iterations 50000]

Measures `Runtime.decide` + `Runtime.plan` — everything flagman does to pick a
deployment — for a rules-only pipeline and for a policy (PII scan) + rules
pipeline, on a 30-token prompt.  Target: rules-only p50 <= 20 microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from typing import Any

from flagman.config import parse_config
from flagman.reliability.state import HealthBoard
from flagman.runtime import Runtime
from flagman.types import ChatRequest

PROMPT = ("Can you help me understand why my monthly statement shows two charges from the same "
          "merchant on the same day for the same amount")  # ~30 tokens

RULES = [
    {"name": "free", "when": {"metadata.tier": {"$eq": "free"}}, "to": "small"},
    {"name": "code", "when": {"messages": {"$regex": "(?i)\\b(python|traceback|debug)\\b"}},
     "to": "code"},
    {"name": "long", "when": {"prompt_tokens": {"$gt": 2000}}, "to": "big"},
    {"name": "tools", "when": {"$and": [{"has_tools": True}, {"user": {"$in": ["a", "b"]}}]},
     "to": "code"},
]


def config(steps: list[dict[str, Any]]) -> Any:
    return parse_config({
        "models": [{"name": n, "base_url": "http://127.0.0.1:1/v1", "tags": t}
                   for n, t in (("small", []), ("code", []), ("big", []),
                                ("general", []), ("local", ["on_prem"]))],
        "routers": [{"name": "auto", "steps": steps, "default": "general"}],
    })


async def measure(steps: list[dict[str, Any]], iterations: int) -> list[float]:
    cfg = config(steps)
    rt = Runtime(cfg, None, {})
    health = HealthBoard(cfg.reliability.breaker)
    rng = random.Random(0)
    body = {"model": "auto", "messages": [{"role": "user", "content": PROMPT}],
            "metadata": {"tier": "pro"}}
    out = []
    for i in range(iterations + 1000):
        req = ChatRequest(body)  # fresh request: no cached views carried over
        t = time.perf_counter_ns()
        d = await rt.decide(req)
        rt.plan(req, d, health, rng)
        dt = time.perf_counter_ns() - t
        if i >= 1000:  # warm-up
            out.append(dt / 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=50000)
    a = ap.parse_args()
    print(f"$ python bench/routing_bench.py --iterations {a.iterations}")
    print(f"{'pipeline':<34} {'p50 µs':>8} {'p99 µs':>8} {'target':>12}")
    cases = [("rules only (4 rules, no match)", [{"rules": RULES}], "p50 <= 20"),
             ("policy (6 detectors) + rules", [{"policy": {"to": "local"}}, {"rules": RULES}], "-")]
    for name, steps, target in cases:
        lat = sorted(asyncio.run(measure(steps, a.iterations)))
        p50 = statistics.median(lat)
        p99 = lat[int(0.99 * (len(lat) - 1))]
        print(f"{name:<34} {p50:>8.1f} {p99:>8.1f} {target:>12}")


if __name__ == "__main__":
    main()
