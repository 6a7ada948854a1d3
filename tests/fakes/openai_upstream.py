"""A fake OpenAI-compatible upstream: a real HTTP server on loopback, with fault injection.

Runs aiohttp.web on its own loop in a background thread.  Answers come from a
queue of scripted `Reply` objects, then from `default`; `fault_rate` with
`faults` injects random faults for chaos tests.  Every request is recorded.

    with FakeOpenAIUpstream() as up:
        up.enqueue(Reply(status=429, headers={"retry-after": "2"}))
        ... POST {up.url}/chat/completions ...
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Reply:
    text: str = "Hello from the fake upstream."
    status: int = 200
    error_code: str | None = None  # OpenAI error.code for status >= 400
    error_type: str | None = None
    error_message: str | None = None  # default "fake <status>"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the response headers
    ttft_delay: float = 0.0  # streams: after the headers, before the first chunk
    chunk_delay: float = 0.0  # streams: between chunks
    tool_calls: list[dict[str, Any]] | None = None
    invalid_json: bool = False
    reset: bool = False  # close the connection without answering
    cut_after: int | None = None  # streams: drop the connection after this many chunks
    usage: tuple[int, int] = (9, 5)


FAULTS = ("500", "502", "503", "429", "hang", "slow_first_token", "reset", "invalid_json",
          "cut_stream")


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any
    at: float


class FakeOpenAIUpstream:
    def __init__(
        self, *, name: str = "fake", seed: int = 0, keepalive_timeout: float = 75.0
    ) -> None:
        self.name = name
        #: idle keep-alive connections are closed after this long (chaos tests count open fds)
        self.keepalive_timeout = keepalive_timeout
        self.injected: Counter[str] = Counter()  # faults injected by `fault_rate`, by kind
        self.script: deque[Reply] = deque()
        self.default = Reply()
        self.fault_rate = 0.0
        self.faults: tuple[str, ...] = FAULTS
        self.hang_seconds = 30.0
        self.requests: list[Recorded] = []
        self.active = 0  # requests being answered now
        self.cancelled = 0  # requests whose client went away before the end
        self.rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def enqueue(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def _next(self) -> Reply:
        if self.script:
            return self.script.popleft()
        if self.fault_rate and self.rng.random() < self.fault_rate:
            kind = self.rng.choice(self.faults)
            self.injected[kind] += 1
            return self._fault(kind)
        return self.default

    def _fault(self, kind: str) -> Reply:
        d = self.default
        if kind in ("500", "502", "503"):
            return replace(d, status=int(kind))
        if kind == "429":
            return replace(d, status=429, error_type="rate_limit_error",
                           headers={"retry-after": "0"})
        if kind == "hang":
            return replace(d, delay=self.hang_seconds)
        if kind == "slow_first_token":
            return replace(d, ttft_delay=self.hang_seconds)
        if kind == "reset":
            return replace(d, reset=True)
        if kind == "invalid_json":
            return replace(d, invalid_json=True)
        return replace(d, cut_after=1)

    # -- HTTP ------------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        self.requests.append(Recorded(request.path, {k.lower(): v for k, v in request.headers.items()},
                                      body, time.monotonic()))
        reply = self._next()
        self.active += 1
        try:
            return await self._answer(request, body if isinstance(body, dict) else {}, reply)
        except (asyncio.CancelledError, ConnectionResetError):
            self.cancelled += 1
            raise
        finally:
            self.active -= 1

    async def _answer(self, request: web.Request, body: dict[str, Any],
                      reply: Reply) -> web.StreamResponse:
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.reset:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if reply.status >= 400:
            err = {"error": {"message": reply.error_message or f"fake {reply.status}", "type": reply.error_type or "api_error",
                             "code": reply.error_code, "param": None}}
            return web.Response(status=reply.status, body=orjson.dumps(err), headers=reply.headers,
                                content_type="application/json")
        if reply.invalid_json:
            return web.Response(status=200, body=b"{not json", content_type="application/json")
        if body.get("stream"):
            return await self._stream(request, body, reply)
        return web.Response(body=orjson.dumps(self._completion(body, reply)),
                            content_type="application/json", headers=reply.headers)

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": reply.text}
        finish = "stop"
        if reply.tool_calls:
            msg = {"role": "assistant", "content": None, "tool_calls": reply.tool_calls}
            finish = "tool_calls"
        p, c = reply.usage
        return {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model"), "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": msg, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
            "echo": {k: v for k, v in body.items() if k not in ("messages",)},
        }

    def _chunks(self, body: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model")}
        out = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "",
                                                            "refusal": None},
                                     "finish_reason": None}]}]
        if reply.tool_calls:
            for i, tc in enumerate(reply.tool_calls):
                out.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                    {"index": i, **tc}]}, "finish_reason": None}]})
            finish = "tool_calls"
        else:
            for word in reply.text.split(" "):
                out.append({**base, "choices": [{"index": 0, "delta": {"content": word + " "},
                                                 "finish_reason": None}]})
            finish = "stop"
        out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            p, c = reply.usage
            out.append({**base, "choices": [], "usage": {
                "prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}})
        return out

    async def _stream(self, request: web.Request, body: dict[str, Any],
                      reply: Reply) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", **reply.headers})
        await resp.prepare(request)
        if reply.ttft_delay:
            await asyncio.sleep(reply.ttft_delay)
        for i, chunk in enumerate(self._chunks(body, reply)):
            if reply.cut_after is not None and i >= reply.cut_after:
                assert request.transport is not None
                request.transport.close()
                return resp
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
            if reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i,
                 "embedding": [float(len(t) % 7), float(t.count("a")), 1.0]}
                for i, t in enumerate(inputs)]
        return web.json_response({"object": "list", "data": data, "model": body.get("model"),
                                  "usage": {"prompt_tokens": 1, "total_tokens": 1}})

    # -- lifecycle -------------------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        # handler_cancellation: a gateway that hangs up (timeout, hedge loser) stops the handler,
        # as a real server would stop generating.
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5,
                                     handler_cancellation=True,
                                     keepalive_timeout=self.keepalive_timeout)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def start(self) -> FakeOpenAIUpstream:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FakeOpenAIUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
