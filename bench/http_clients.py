"""Compare async HTTP clients against a local upstream: why providers use aiohttp.

    python bench/http_clients.py [--requests 4000] [--connections 16]

Starts a bare uvicorn upstream on loopback in a subprocess, then measures
requests/s for httpx.AsyncClient and aiohttp.ClientSession with the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time

import aiohttp
import httpx
import orjson

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from fake_upstream import wait_port  # noqa: E402

PAYLOAD = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})


async def run_httpx(url: str, n: int, c: int) -> float:
    limits = httpx.Limits(max_connections=c * 2, max_keepalive_connections=c * 2)
    async with httpx.AsyncClient(limits=limits) as client:
        async def worker(k: int) -> None:
            for _ in range(k):
                r = await client.post(url, content=PAYLOAD, headers={"content-type": "application/json"})
                r.read()
        t = time.perf_counter()
        await asyncio.gather(*[worker(n // c) for _ in range(c)])
        return n / (time.perf_counter() - t)


async def run_aiohttp(url: str, n: int, c: int) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c * 2)) as s:
        async def worker(k: int) -> None:
            for _ in range(k):
                async with s.post(url, data=PAYLOAD, headers={"content-type": "application/json"}) as r:
                    await r.read()
        t = time.perf_counter()
        await asyncio.gather(*[worker(n // c) for _ in range(c)])
        return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--port", type=int, default=9911)
    a = ap.parse_args()
    proc = subprocess.Popen([sys.executable, __file__.rsplit("/", 1)[0] + "/fake_upstream.py",
                             "--port", str(a.port)])
    try:
        wait_port(a.port)
        url = f"http://127.0.0.1:{a.port}/v1/chat/completions"
        print(f"{'client':<10} {'requests/s':>12}   ({a.requests} requests, {a.connections} connections)")
        for name, fn in (("httpx", run_httpx), ("aiohttp", run_aiohttp)):
            rps = asyncio.run(fn(url, a.requests, a.connections))
            print(f"{name:<10} {rps:>12,.0f}")
    finally:
        proc.terminate()


if __name__ == "__main__":
    main()
