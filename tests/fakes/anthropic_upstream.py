"""A fake Anthropic Messages API: a real HTTP server on loopback for tests.

It runs aiohttp.web on its own event loop in a background thread, so both
async clients (the provider under test) and blocking ones (the official
`anthropic` SDK) can talk to it.  Answers are scripted with a queue of
`Reply` objects; with an empty queue it answers a short text message.  Every
request is recorded (path, lower-cased headers, decoded JSON body).

    with FakeAnthropicUpstream() as up:          # or the `anthropic_upstream` fixture
        up.reply_tool_use("get_weather", {"city": "Paris"}, text="Let me check.")
        ... POST {up.url}/v1/messages ...
        up.requests[-1].headers["x-api-key"]
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

Event = tuple[str, dict[str, Any]]


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    """One scripted answer, rendered as JSON or SSE depending on the request's `stream`."""

    content: list[dict[str, Any]] = field(default_factory=lambda: [{"type": "text", "text": "Hi"}])
    stop_reason: str = "end_turn"
    usage: dict[str, int] = field(default_factory=lambda: {"input_tokens": 11, "output_tokens": 7})
    status: int = 200
    error_type: str | None = None  # with status >= 400: the Anthropic error type
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the body (streams: after the headers)
    #: streams only: after this many events send an `error` event (error_type) and stop
    error_after: int | None = None
    cut_after: int | None = None  # streams only: stop after this many events, no message_stop
    raw: bytes | None = None  # sent verbatim (content type from `raw_type`)
    raw_type: str = "text/event-stream"


def message_object(reply: Reply, model: str) -> dict[str, Any]:
    return {
        "id": "msg_fake0001", "type": "message", "role": "assistant", "model": model,
        "content": reply.content, "stop_reason": reply.stop_reason, "stop_sequence": None,
        "usage": reply.usage,
    }


def _chunks(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def _block_events(index: int, block: dict[str, Any], size: int) -> list[Event]:
    if block["type"] == "tool_use":
        start = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": p}
                  for p in _chunks(orjson.dumps(block["input"]).decode(), size)]
    else:
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in _chunks(block["text"], size)]
    events: list[Event] = [("content_block_start", {
        "type": "content_block_start", "index": index, "content_block": start})]
    events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
               for d in deltas]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def message_events(message: dict[str, Any], chunk_size: int = 5) -> list[Event]:
    """The SSE sequence the real API sends for `message` (text and tool_use blocks)."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None,
             "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1}}
    events: list[Event] = [("message_start", {"type": "message_start", "message": start}),
                           ("ping", {"type": "ping"})]
    for i, block in enumerate(message["content"]):
        events += _block_events(i, block, chunk_size)
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append(("message_delta", {"type": "message_delta", "delta": delta,
                                     "usage": {"output_tokens": usage["output_tokens"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def assemble_openai_chunks(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold OpenAI stream chunks back into one assistant message (as a client would)."""
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    out: dict[str, Any] = {"finish_reason": None, "usage": None}
    for chunk in chunks:
        if chunk.get("usage"):
            out["usage"] = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text.append(delta.get("content") or "")
            for tc in delta.get("tool_calls") or []:
                call = calls.setdefault(tc["index"], {"id": None, "name": "", "arguments": ""})
                call["id"] = tc.get("id") or call["id"]
                fn = tc.get("function") or {}
                call["name"] += fn.get("name") or ""
                call["arguments"] += fn.get("arguments") or ""
            out["finish_reason"] = choice.get("finish_reason") or out["finish_reason"]
    out["content"] = "".join(text)
    out["tool_calls"] = [calls[i] for i in sorted(calls)]
    return out


def _error_body(etype: str, message: str = "fake error") -> dict[str, Any]:
    return {"type": "error", "error": {"type": etype, "message": message}}


class FakeAnthropicUpstream:
    def __init__(self, expected_api_key: str | None = None) -> None:
        self.expected_api_key = expected_api_key  # when set, other keys get a 401
        self.requests: list[Recorded] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- scripting -------------------------------------------------------------
    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def reply_text(self, text: str, **kw: Any) -> None:
        self.enqueue(Reply(content=[{"type": "text", "text": text}], **kw))

    def reply_tool_use(
        self, name: str, tool_input: dict[str, Any], text: str | None = None,
        tool_id: str = "toolu_fake01", **kw: Any,
    ) -> None:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        blocks.append({"type": "tool_use", "id": tool_id, "name": name, "input": tool_input})
        self.enqueue(Reply(content=blocks, stop_reason="tool_use", **kw))

    def reply_error(self, status: int, error_type: str, **kw: Any) -> None:
        self.enqueue(Reply(status=status, error_type=error_type, **kw))

    def reply_raw(
        self, raw: bytes, content_type: str = "text/event-stream", status: int = 200
    ) -> None:
        self.enqueue(Reply(raw=raw, raw_type=content_type, status=status))

    def _next(self) -> Reply:
        with self._lock:
            return self._replies.popleft() if self._replies else Reply()

    # -- HTTP ------------------------------------------------------------------
    async def _messages(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw) if raw else None
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(Recorded(request.path, headers, body))
        if self.expected_api_key is not None and headers.get("x-api-key") != self.expected_api_key:
            return web.json_response(_error_body("authentication_error", "bad key"), status=401)
        reply = self._next()
        if reply.raw is not None:
            return web.Response(body=reply.raw, status=reply.status, headers=reply.headers,
                                content_type=reply.raw_type)
        if reply.status >= 400:
            await asyncio.sleep(reply.delay)
            return web.Response(body=orjson.dumps(_error_body(reply.error_type or "api_error")),
                                status=reply.status, headers=reply.headers,
                                content_type="application/json")
        model = body.get("model", "claude-fake") if isinstance(body, dict) else "claude-fake"
        message = message_object(reply, model)
        if isinstance(body, dict) and body.get("stream"):
            return await self._stream(request, reply, message)
        await asyncio.sleep(reply.delay)
        return web.Response(body=orjson.dumps(message), headers=reply.headers,
                            content_type="application/json")

    async def _stream(
        self, request: web.Request, reply: Reply, message: dict[str, Any]
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", **reply.headers})
        await resp.prepare(request)
        await asyncio.sleep(reply.delay)
        events = message_events(message)
        if reply.error_after is not None:
            err = _error_body(reply.error_type or "overloaded_error", "Overloaded")
            events = [*events[: reply.error_after], ("error", err)]
        elif reply.cut_after is not None:
            events = events[: reply.cut_after]
        for name, data in events:
            await resp.write(b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n")
        await resp.write_eof()
        return resp

    # -- lifecycle ---------------------------------------------------------------
    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = runner.addresses[0][1]
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def start(self) -> FakeAnthropicUpstream:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake Anthropic upstream did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = self._thread = None

    def __enter__(self) -> FakeAnthropicUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def anthropic_upstream() -> Iterator[FakeAnthropicUpstream]:
    """A started fake upstream, one per test (starting one takes a few milliseconds)."""
    with FakeAnthropicUpstream() as upstream:
        yield upstream
