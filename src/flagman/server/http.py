"""Request parsing and error responses shared by the endpoints."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from flagman.errors import (
    BadRequestError,
    FlagmanError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)

log = logging.getLogger("flagman.server")

JSON_TYPE = "application/json"


class JSONBytes(Response):
    media_type = JSON_TYPE

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else orjson.dumps(content)


async def read_json(request: Request, max_bytes: int) -> dict[str, Any]:
    """Read and decode a JSON object body, enforcing type and size limits."""
    ctype = request.headers.get("content-type", "")
    if ctype and not ctype.split(";")[0].strip().lower().endswith("json"):
        raise UnsupportedMediaTypeError(
            f"Content-Type must be application/json, got {ctype!r}", code="unsupported_media_type"
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(
            f"request body of {declared} bytes is over the limit of {max_bytes}",
            code="request_too_large",
        )
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLargeError(
                    f"request body is over the limit of {max_bytes} bytes", code="request_too_large"
                )
            chunks.append(chunk)
    except ClientDisconnect:
        raise BadRequestError("client disconnected while sending the body") from None
    try:
        body = orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequestError("request body must be a JSON object", code="invalid_json")
    return body


def error_response(
    exc: FlagmanError,
    request_id: str,
    *,
    body: Callable[[FlagmanError], dict[str, Any]] | None = None,
    extra_headers: dict[str, str] | None = None,
) -> Response:
    headers = {"x-flagman-request-id": request_id, **exc.headers(), **(extra_headers or {})}
    payload = body(exc) if body else exc.to_body()
    return JSONBytes(payload, status_code=exc.status, headers=headers)


def validate_chat(body: dict[str, Any]) -> None:
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequestError("you must provide a model parameter", param="model",
                              code="missing_model")
    opts = body.get("stream_options")
    if opts is not None and not isinstance(opts, dict):
        raise BadRequestError("'stream_options' must be an object", param="stream_options",
                              code="invalid_stream_options")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise BadRequestError("'messages' must be a non-empty array", param="messages",
                              code="invalid_messages")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise BadRequestError(f"messages[{i}] must be an object with a 'role'",
                                  param=f"messages[{i}]", code="invalid_messages")
