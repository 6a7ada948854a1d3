"""POST /v1/chat/completions: the OpenAI endpoint, JSON and SSE."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from flagman.errors import FlagmanError, UpstreamError
from flagman.gateway import Exchange, Gateway
from flagman.reliability.streams import close_quietly
from flagman.server.http import JSONBytes, error_response, read_json, validate_chat
from flagman.server.sse import SSEResponse
from flagman.types import ChatRequest, Usage

DONE = b"data: [DONE]\n\n"


def flagman_headers(ex: Exchange, *, final: bool = True) -> dict[str, str]:
    h = {"x-flagman-request-id": ex.id}
    if ex.target is not None:
        h["x-flagman-model"] = ex.target.id
    if ex.decision is not None:
        h["x-flagman-route"] = ex.decision.header()
    if ex.loop is not None and len(ex.loop.attempts) > 1:
        h["x-flagman-attempts"] = ",".join(
            f"{a.deployment}:{a.error_class or 'ok'}" for a in ex.loop.attempts
        )
    if final:
        h["x-flagman-cost-usd"] = f"{ex.cost:.8f}"
    h["x-flagman-overhead-ms"] = f"{ex.overhead_ms():.3f}"
    return h


async def parse_chat(request: Request, gw: Gateway) -> ChatRequest:
    body = await read_json(request, gw.config.server.max_body_bytes)
    validate_chat(body)
    return ChatRequest(body, headers=request.headers)  # type: ignore[arg-type]


async def chat_completions(request: Request) -> Response:
    t0 = time.perf_counter()
    gw: Gateway = request.app.state.gateway
    try:
        req = await parse_chat(request, gw)
    except FlagmanError as exc:
        return error_response(exc, uuid.uuid4().hex)
    ex = gw.exchange(req, "chat", t0)
    if req.stream:
        return await _stream(gw, ex)
    try:
        result = await gw.complete(ex)
    except FlagmanError as exc:
        ex.fail(exc)
        gw.finish(ex)
        return error_response(exc, ex.id, extra_headers=flagman_headers(ex))
    headers = flagman_headers(ex)
    gw.finish(ex)
    return JSONBytes(result.raw if result.raw is not None else result.data, headers=headers)


def error_event(exc: FlagmanError) -> bytes:
    """The documented mid-stream error: one `data:` event with an OpenAI error body."""
    return b"data: " + orjson.dumps(exc.to_body()) + b"\n\n"


async def _stream(gw: Gateway, ex: Exchange) -> Response:
    try:
        first, upstream = await gw.open_stream(ex)
    except FlagmanError as exc:
        ex.fail(exc)
        gw.finish(ex)
        return error_response(exc, ex.id, extra_headers=flagman_headers(ex))
    opts = ex.req.body.get("stream_options")
    want_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
    headers = flagman_headers(ex, final=False)
    return SSEResponse(_sse(gw, ex, first, upstream, want_usage), headers=headers)


async def _sse(
    gw: Gateway, ex: Exchange, first: dict[str, Any], upstream: AsyncIterator[dict[str, Any]],
    want_usage: bool,
) -> AsyncIterator[bytes]:
    text: list[str] = []
    store = ex.runtime.config.log.store_bodies
    try:
        chunk: dict[str, Any] | None = first
        while chunk is not None:
            if chunk.get("usage"):
                ex.usage = Usage.from_openai(chunk["usage"])
            if store:
                for ch in chunk.get("choices") or ():
                    text.append(str((ch.get("delta") or {}).get("content") or ""))
            if want_usage or chunk.get("choices"):
                if not want_usage and "usage" in chunk:
                    chunk = {k: v for k, v in chunk.items() if k != "usage"}
                yield b"data: " + orjson.dumps(chunk) + b"\n\n"
            chunk = await anext(upstream, None)
        yield DONE
    except FlagmanError as exc:
        gw.stream_failed(ex, exc)
        yield error_event(exc)
        yield DONE
    except asyncio.CancelledError:
        ex.status, ex.error_class = 499, "client_disconnected"
        raise
    except Exception:  # never a silent truncation: the client gets a well-formed error
        exc2 = UpstreamError("stream failed inside the gateway")
        gw.stream_failed(ex, exc2)
        yield error_event(exc2)
        yield DONE
    finally:
        await close_quietly(upstream)
        if store:
            ex.response_text = "".join(text)
        gw.finish(ex)
