"""A load generator for the chaos tests and bench/chaos_bench.py: real HTTP, bounded concurrency.

Every answer is classified: a success (200 with content, or a stream ending in
`[DONE]` with no error event), a well-formed error (an OpenAI error body, or a
stream whose last events are `data: {"error": …}` then `data: [DONE]`), or
malformed (anything else, including a transport error on the client side).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson


@dataclass
class Outcome:
    status: int
    request_id: str | None
    success: bool
    well_formed: bool
    latency_s: float
    stream: bool
    attempts: str | None = None  # the x-flagman-attempts header


def _is_error_body(body: Any) -> bool:
    err = body.get("error") if isinstance(body, dict) else None
    return isinstance(err, dict) and isinstance(err.get("code"), str) and bool(err.get("message"))


def _classify_json(status: int, raw: bytes) -> tuple[bool, bool]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False, False
    if status == 200:
        ok = bool(((body.get("choices") or [{}])[0].get("message") or {}).get("content"))
        return ok, ok
    return False, _is_error_body(body)


def _classify_sse(raw: bytes) -> tuple[bool, bool]:
    events = [ln[5:].strip() for ln in raw.split(b"\n") if ln.startswith(b"data:")]
    if not events or events[-1] != b"[DONE]":
        return False, False
    chunks = [orjson.loads(e) for e in events[:-1]]
    if chunks and _is_error_body(chunks[-1]):
        return False, True
    text = "".join(str((c.get("delta") or {}).get("content") or "")
                   for ch in chunks for c in ch.get("choices") or [])
    return bool(text.strip()), bool(text.strip())


async def one_request(session: aiohttp.ClientSession, url: str, i: int, stream: bool) -> Outcome:
    body = {"model": "m", "messages": [{"role": "user", "content": f"question {i}"}],
            "stream": stream}
    t0 = time.perf_counter()
    try:
        async with session.post(url, data=orjson.dumps(body),
                                headers={"content-type": "application/json"}) as resp:
            raw = await resp.read()
            rid = resp.headers.get("x-flagman-request-id")
            attempts = resp.headers.get("x-flagman-attempts")
            if stream and resp.status == 200:
                success, formed = _classify_sse(raw)
            else:
                success, formed = _classify_json(resp.status, raw)
            return Outcome(resp.status, rid, success, formed, time.perf_counter() - t0, stream,
                           attempts)
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
        return Outcome(0, None, False, False, time.perf_counter() - t0, stream)


async def drive(base_url: str, n: int, concurrency: int, stream_every: int = 5,
                timeout: float = 30.0) -> list[Outcome]:
    """Send `n` chat requests (every `stream_every`-th streamed) with `concurrency` workers."""
    url = base_url + "/v1/chat/completions"
    counter = itertools.count()
    out: list[Outcome] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        async def worker() -> None:
            while (i := next(counter)) < n:
                out.append(await one_request(session, url, i, stream_every > 0
                                             and i % stream_every == 0))

        await asyncio.gather(*[worker() for _ in range(concurrency)])
    return out


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))] if s else float("nan")
