"""POST /v1/messages: the Anthropic Messages API in front of any model.

The request is translated to the internal OpenAI shape, routed like any chat
request, and the answer (JSON or stream events) translated back.  Errors use
Anthropic's error body.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from flagman.errors import FlagmanError, UpstreamError
from flagman.formats.anthropic import (
    OpenAIStreamToAnthropic,
    anthropic_error_body,
    anthropic_request_to_openai,
    openai_response_to_anthropic,
    sse_event,
)
from flagman.gateway import Exchange, Gateway
from flagman.reliability.streams import close_quietly
from flagman.server.chat import flagman_headers
from flagman.server.http import JSONBytes, error_response, read_json, validate_chat
from flagman.server.sse import SSEResponse
from flagman.types import ChatRequest, Usage


def _anthropic_body(exc: FlagmanError) -> dict[str, Any]:
    return anthropic_error_body(exc.status, exc.error_class, exc.message)


async def messages(request: Request) -> Response:
    t0 = time.perf_counter()
    gw: Gateway = request.app.state.gateway
    try:
        raw = await read_json(request, gw.config.server.max_body_bytes)
        body = anthropic_request_to_openai(raw)
        validate_chat(body)
    except FlagmanError as exc:
        return error_response(exc, uuid.uuid4().hex, body=_anthropic_body)
    req = ChatRequest(body, headers=request.headers)  # type: ignore[arg-type]
    model = str(raw.get("model"))
    ex = gw.exchange(req, "messages", t0)
    if req.stream:
        return await _stream(gw, ex, model)
    try:
        result = await gw.complete(ex)
    except FlagmanError as exc:
        ex.fail(exc)
        gw.finish(ex)
        return error_response(exc, ex.id, body=_anthropic_body, extra_headers=flagman_headers(ex))
    headers = flagman_headers(ex)
    gw.finish(ex)
    return JSONBytes(openai_response_to_anthropic(result.data, model), headers=headers)


async def _stream(gw: Gateway, ex: Exchange, model: str) -> Response:
    try:
        first, upstream = await gw.open_stream(ex)
    except FlagmanError as exc:
        ex.fail(exc)
        gw.finish(ex)
        return error_response(exc, ex.id, body=_anthropic_body, extra_headers=flagman_headers(ex))
    return SSEResponse(_events(gw, ex, model, first, upstream),
                       headers=flagman_headers(ex, final=False))


async def _events(
    gw: Gateway, ex: Exchange, model: str, first: dict[str, Any],
    upstream: AsyncIterator[dict[str, Any]],
) -> AsyncIterator[bytes]:
    tr = OpenAIStreamToAnthropic(model, message_id=f"msg_{ex.id[:24]}")
    try:
        chunk: dict[str, Any] | None = first
        while chunk is not None:
            if chunk.get("usage"):
                ex.usage = Usage.from_openai(chunk["usage"])
            for event, data in tr.feed(chunk):
                yield sse_event(event, data)
            chunk = await anext(upstream, None)
        for event, data in tr.finish():
            yield sse_event(event, data)
    except FlagmanError as exc:
        gw.stream_failed(ex, exc)
        yield sse_event("error", _anthropic_body(exc))
    except asyncio.CancelledError:
        ex.status, ex.error_class = 499, "client_disconnected"
        raise
    except Exception:
        exc2 = UpstreamError("stream failed inside the gateway")
        gw.stream_failed(ex, exc2)
        yield sse_event("error", _anthropic_body(exc2))
    finally:
        await close_quietly(upstream)
        gw.finish(ex)
