"""The chaos scenario as a benchmark: 30% random faults on the primary, a healthy backup.

    .venv/bin/python bench/chaos_bench.py [--requests 10000] [--concurrency 50]

Runs `flagman serve` in its own process and two fault-injecting fake upstreams (with the load
generator) in this one, all on loopback, and prints one row per scenario: success rate, malformed
answers, p50/p99 latency, and the extra upstream requests that failover and retries cost.
Every 5th request streams.  Faults (`tests/fakes/openai_upstream.py`): 500, 502, 503, 429,
hang, slow first token, connection reset, invalid JSON, stream cut after the role chunk; a
hang lasts 1 s against a deployment timeout of 0.3 s (TTFT 0.2 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Scenario:
    name: str
    fault_rate: float
    breaker: dict[str, Any]


SCENARIOS = [
    Scenario("no faults", 0.0, {}),
    Scenario("30% faults, default breaker", 0.3, {}),
    Scenario("30% faults, breaker kept closed", 0.3,
             {"consecutive_failures": 1_000_000, "min_requests": 1_000_000}),
]


def config(primary_url: str, backup_url: str, log: str, breaker: dict[str, Any]) -> dict[str, Any]:
    return {
        "log": {"path": log},
        "models": [
            {"name": "m", "id": "primary", "base_url": primary_url, "timeout": 0.3,
             "ttft_timeout": 0.2},
            {"name": "m", "id": "backup", "base_url": backup_url, "timeout": 10},
        ],
        "groups": {"m": {"strategy": "ordered"}},
        "reliability": {"breaker": breaker},
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gateway(path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`flagman serve` in its own process: the gateway gets a core of its own, as deployed."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "flagman", "serve", "--config", str(path),
                             "--port", str(port), "--log-level", "error"])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("flagman serve did not start")


def extra_sends(db: Path) -> tuple[int, int]:
    """(failovers, re-sends) from the request log: a re-send goes to a deployment the same
    request already tried (paid from the retry budget); a failover goes to a new one."""
    failovers = resends = 0
    with sqlite3.connect(db) as con:
        for (raw,) in con.execute("SELECT attempts FROM requests"):
            seen: set[str] = set()
            for i, a in enumerate(json.loads(raw)):
                if a["deployment"] in seen:
                    resends += 1
                elif i:
                    failovers += 1
                seen.add(a["deployment"])
    return failovers, resends


def run(s: Scenario, n: int, concurrency: int, tmp: Path) -> dict[str, Any]:
    from tests.fakes.gateway import write_config
    from tests.fakes.openai_upstream import FakeOpenAIUpstream
    from tests.reliability.load import drive, percentile

    with FakeOpenAIUpstream(name="primary", seed=7) as primary, \
            FakeOpenAIUpstream(name="backup", seed=8) as backup:
        primary.fault_rate, primary.hang_seconds = s.fault_rate, 1.0
        db = tmp / f"log-{len(s.name)}-{s.fault_rate}.db"
        path = write_config(tmp / "flagman.yaml", config(primary.url, backup.url, str(db),
                                                         s.breaker))
        proc, url = start_gateway(path)
        try:
            t0 = time.perf_counter()
            out = asyncio.run(drive(url, n, concurrency))
            elapsed = time.perf_counter() - t0
            denied = httpx.get(url + "/readyz").json()["retry_budget"]["denied_total"]
        finally:
            proc.terminate()
            proc.wait(30)
        upstream = len(primary.requests) + len(backup.requests)
        failovers, resends = extra_sends(db)
        lat = [o.latency_s * 1000 for o in out]
        return {
            "scenario": s.name, "requests": n,
            "success": sum(o.success for o in out) / n,
            "malformed": sum(not o.well_formed for o in out),
            "p50": percentile(lat, 0.5), "p99": percentile(lat, 0.99),
            "faults": sum(primary.injected.values()),
            "to_primary": len(primary.requests) / n,
            "extra": (upstream - n) / n, "failovers": failovers, "resends": resends,
            "denied": denied, "rps": n / elapsed,
        }


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| scenario | requests | success | malformed | p50 ms | p99 ms | faults injected "
            "| share sent to primary | extra upstream requests | failovers | re-sends "
            "| re-sends refused by budget | requests/s |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['requests']} | {r['success']:.2%} | {r['malformed']} "
            f"| {r['p50']:.1f} | {r['p99']:.1f} | {r['faults']} | {r['to_primary']:.0%} "
            f"| {r['extra']:+.1%} | {r['failovers']} | {r['resends']} | {r['denied']} "
            f"| {r['rps']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=50)
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))  # the fakes and the load generator live under tests/
    # the fake's `reset` fault closes sockets under aiohttp's feet; its complaints are expected
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(s, a.requests, a.concurrency, Path(tmp)) for s in SCENARIOS]
    print(f"\n{a.requests} requests per scenario, concurrency {a.concurrency}, "
          "every 5th streamed, loopback, 2 processes\n")
    print(table(rows))


if __name__ == "__main__":
    main()
