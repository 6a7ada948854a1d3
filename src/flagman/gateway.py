"""The gateway core, independent of HTTP: route, attempt, account, log.

One `Gateway` per server.  It owns what lives across config reloads (the
HTTP session, deployment health, the retry budget, the log writer) and the
current `Runtime`, which a reload swaps atomically.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from flagman.config import Config, load_config
from flagman.errors import FlagmanError
from flagman.metrics import Metrics
from flagman.providers.base import ChatResult
from flagman.reliability.attempts import AttemptLoop, PlanEntry
from flagman.reliability.retry import RetryBudget
from flagman.reliability.state import HealthBoard
from flagman.reliability.streams import PrefixedStream, first_token
from flagman.runtime import Runtime, Target
from flagman.store.base import RequestRecord
from flagman.store.sqlite import SQLiteLogStore
from flagman.store.writer import BatchWriter
from flagman.types import ChatRequest, Decision, Usage
from flagman.watch import Signature, file_signature

log = logging.getLogger("flagman")


@dataclass
class Exchange:
    """One client request on its way through the gateway."""

    req: ChatRequest
    endpoint: str
    runtime: Runtime
    id: str = field(default_factory=lambda: os.urandom(16).hex())  # cheaper than uuid4 (no UUID object)
    t0: float = field(default_factory=time.perf_counter)
    created: float = field(default_factory=time.time)
    decision: Decision | None = None
    loop: AttemptLoop | None = None
    target: Target | None = None
    usage: Usage = field(default_factory=Usage)
    status: int = 200
    error_class: str | None = None
    ttft_s: float | None = None
    response_text: str | None = None

    @property
    def cost(self) -> float:
        return self.target.provider.cost(self.usage) if self.target else 0.0

    def overhead_ms(self, now: float | None = None) -> float:
        total = (now or time.perf_counter()) - self.t0
        upstream = self.loop.upstream_s if self.loop else 0.0
        return max(0.0, (total - upstream) * 1000)

    def fail(self, exc: FlagmanError) -> None:
        self.status, self.error_class = exc.status, exc.error_class


class Gateway:
    def __init__(self, config: Config, config_path: str | Path | None = None) -> None:
        self.config_path = Path(config_path) if config_path else None
        self.health = HealthBoard(config.reliability.breaker)
        self.budget = RetryBudget(config.reliability.retry)
        self.rng = random.Random()
        self.metrics = Metrics()
        self.resources: dict[str, Any] = {}  # encoders, learned routers: kept across reloads
        self.session: aiohttp.ClientSession | None = None
        self._config = config
        self.runtime: Runtime | None = None
        self.store = SQLiteLogStore(config.resolve_path(config.log.path))
        self.writer: BatchWriter | None = None
        self._file_sig = self._stat()
        self.reloads = 0
        self.started = time.time()

    @property
    def config(self) -> Config:
        return self.runtime.config if self.runtime else self._config

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
        self.session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        # Building may load encoders or router weights: keep it off the event loop.
        self.runtime = await asyncio.to_thread(Runtime, self._config, self.session, self.resources)
        self._file_sig = self._stat()  # now with the runtime's router files
        lc = self._config.log
        self.writer = BatchWriter(self.store, batch_size=lc.batch_size,
                                  flush_interval=lc.flush_interval, sinks=[self.metrics.observe])
        self.writer.start()

    async def close(self) -> None:
        if self.writer:
            await self.writer.close()
        if self.runtime:
            await self.runtime.aclose()
        if self.session:
            await self.session.close()
        # encoders outlive reloads (a new runtime reuses them), so only the gateway closes them
        for res in self.resources.values():
            close = getattr(res, "close", None)
            if callable(close):
                close()
        self.store.close()

    # -- config reload -------------------------------------------------------------------------

    def _stat(self) -> tuple[Signature, ...]:
        """The config file's signature, then those of files the runtime was built from
        (learned-router artifacts): a change to any of them reloads."""
        if self.config_path is None:
            return ()
        watched = self.runtime.watched if self.runtime is not None else []
        return tuple(file_signature(p) for p in [self.config_path, *watched])

    async def reload(self) -> bool:
        """Load the config file again; a broken file is logged and the old config kept."""
        if self.config_path is None:
            return False
        # taken before reading, so a change made while building triggers another reload
        self._file_sig = before = self._stat()
        try:
            cfg = await asyncio.to_thread(load_config, self.config_path)
            runtime = await asyncio.to_thread(Runtime, cfg, self.session, self.resources)
        except FlagmanError as exc:
            log.error("config reload rejected, still serving the previous config:\n%s", exc)
            self.metrics.reloads.labels(result="rejected").inc()
            return False
        old, self.runtime = self.runtime, runtime
        self._file_sig = (before[0], *self._stat()[1:])  # the new runtime's router files
        self.health.breaker = cfg.reliability.breaker
        self.budget.cfg = cfg.reliability.retry
        self.reloads += 1
        self.metrics.reloads.labels(result="applied").inc()
        log.info("config reloaded from %s", self.config_path)
        if old is not None:
            # Requests in flight hold `old`; close its routers' resources a little later.
            asyncio.get_running_loop().call_later(30, lambda: asyncio.ensure_future(old.aclose()))
        return True

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.config.server.reload_interval)
            if self._stat() != self._file_sig:
                await self.reload()

    # -- requests --------------------------------------------------------------------------------

    def exchange(self, req: ChatRequest, endpoint: str, t0: float | None = None) -> Exchange:
        """`t0`: when the handler started, so body parsing counts as flagman's overhead."""
        assert self.runtime is not None, "gateway not started"
        ex = Exchange(req, endpoint, self.runtime)
        if t0 is not None:
            ex.t0 = t0
        return ex

    async def route(self, ex: Exchange) -> list[PlanEntry[Target]]:
        ex.decision = await ex.runtime.decide(ex.req)
        plan = ex.runtime.plan(ex.req, ex.decision, self.health, self.rng)
        gcfg = ex.runtime.group_cfg[ex.decision.group or ""]
        ex.loop = AttemptLoop(self.health, ex.runtime.config.reliability.retry, self.budget,
                              self.rng, ex.runtime.fallback_on[ex.decision.group or ""], hedge=gcfg.hedge,
                              kind="stream" if ex.req.stream else "complete")
        return plan

    def upstream_body(self, ex: Exchange, entry: PlanEntry[Target]) -> dict[str, Any]:
        body = {**ex.req.body, "model": entry.target.deployment.upstream_model}
        if ex.req.stream:
            # Always ask for usage so cost is known; stripped again if the client did not ask.
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return body

    async def complete(self, ex: Exchange) -> ChatResult:
        plan = await self.route(ex)
        assert ex.loop is not None

        async def call(entry: PlanEntry[Target]) -> ChatResult:
            return await entry.target.provider.complete(self.upstream_body(ex, entry))

        entry, result = await ex.loop.run(plan, call)
        ex.target, ex.usage = entry.target, result.usage
        if ex.decision:
            ex.decision.deployment = entry.id
        if self.config.log.store_bodies:
            msg = (result.data.get("choices") or [{}])[0].get("message") or {}
            ex.response_text = str(msg.get("content") or "")
        return result

    async def open_stream(
        self, ex: Exchange
    ) -> tuple[dict[str, Any], AsyncIterator[dict[str, Any]]]:
        """Attempt until an upstream sends its first token; failover stops there."""
        plan = await self.route(ex)
        assert ex.loop is not None

        async def call(entry: PlanEntry[Target]) -> tuple[dict[str, Any], PrefixedStream]:
            it = entry.target.provider.stream(self.upstream_body(ex, entry))
            return await first_token(it, entry.id, entry.target.deployment.ttft_timeout)

        async def discard(opened: tuple[dict[str, Any], PrefixedStream]) -> None:
            await opened[1].aclose()

        entry, (first, it) = await ex.loop.run(plan, call, discard)
        ex.target = entry.target
        ex.ttft_s = time.perf_counter() - ex.t0
        if ex.decision:
            ex.decision.deployment = entry.id
        return first, it

    def stream_failed(self, ex: Exchange, exc: FlagmanError) -> None:
        ex.fail(exc)
        if ex.target is not None:
            # the attempt already released the deployment when its first token arrived
            self.health.failure(ex.target.id, exc.error_class, exc.retry_after, release=False)

    def finish(self, ex: Exchange) -> None:
        """Hand the finished request to the log writer (never blocks)."""
        if self.writer is None:
            return
        d = ex.decision
        store_bodies = ex.runtime.config.log.store_bodies
        now = time.perf_counter()
        rec = RequestRecord(
            id=ex.id, created=ex.created, endpoint=ex.endpoint, requested_model=ex.req.model,
            key_id=ex.req.key_id, group_name=d.group if d else None,
            deployment=ex.target.id if ex.target else None,
            strategy=d.strategy if d else None, decision=d.to_dict() if d else None,
            status=ex.status, error_class=ex.error_class,
            attempts=[a.to_dict() for a in (ex.loop.attempts if ex.loop else [])],
            stream=ex.req.stream, latency_ms=(now - ex.t0) * 1000,
            ttft_ms=ex.ttft_s * 1000 if ex.ttft_s is not None else None,
            overhead_ms=ex.overhead_ms(now), prompt_tokens=ex.usage.prompt_tokens,
            completion_tokens=ex.usage.completion_tokens, cost_usd=ex.cost,
            prompt=_redacted(ex, ex.req.conversation_text) if store_bodies else None,
            response=_redacted(ex, ex.response_text) if store_bodies else None,
        )
        self.writer.submit(rec)


def _redacted(ex: Exchange, text: str | None) -> str | None:
    redact = ex.decision.redact if ex.decision else None
    return redact(text) if redact is not None and text is not None else text


