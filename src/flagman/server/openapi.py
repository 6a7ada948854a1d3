"""GET /openapi.json: a hand-written OpenAPI 3.1 description of flagman's HTTP API.

Hand-written rather than generated: the chat bodies are pass-through (every
unknown field goes upstream unchanged), which generated schemas would either
reject or leave empty.  The fuzz test (tests/server/test_fuzz.py) drives the
server from this document, so it is checked against the running code.
"""

from __future__ import annotations

import functools
from types import MappingProxyType
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from flagman import __version__

JSON = "application/json"
SSE = "text/event-stream"
ERROR_STATUSES = MappingProxyType({
    "400": "Bad request (also `context_window_exceeded`, `content_policy`)",
    "401": "Upstream authentication failed",
    "403": "Upstream permission denied, or a policy allows no deployment",
    "404": "Unknown model, or a replayed prompt that was not recorded",
    "413": "Request body over `server.max_body_bytes`",
    "415": "Content-Type is not JSON",
    "429": "Rate limited upstream, or every deployment cooling down (Retry-After kept)",
    "502": "Upstream answered with something unusable",
    "503": "Upstream unavailable (connection refused/reset, 502/503/529)",
    "504": "Upstream timed out (deployment `timeout` or `ttft_timeout`)",
})


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": _ref(schema)}}}


def _errors(*codes: str) -> dict[str, Any]:
    return {c: {"description": ERROR_STATUSES[c],
                "content": {JSON: {"schema": _ref("Error")}}} for c in codes}


def _ok(schema: str, description: str, *, stream: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {JSON: {"schema": _ref(schema)}}
    if stream:
        content[SSE] = {"schema": {"type": "string"}}
    return {"200": {"description": description, "content": content}}


UPSTREAM = ("400", "401", "403", "404", "413", "415", "429", "502", "503", "504")
LOCAL = ("400", "413", "415")


def _message() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["role"],
        "properties": {
            "role": {"type": "string"},
            "content": {"type": ["string", "array", "null"]},
            "name": {"type": "string"},
            "tool_call_id": {"type": "string"},
        },
    }


def _schemas() -> dict[str, Any]:
    return {
        "ChatRequest": {
            "type": "object",
            "required": ["model", "messages"],
            "description": "OpenAI Chat Completions body; unknown fields pass through unchanged.",
            "properties": {
                "model": {"type": "string", "minLength": 1},
                "messages": {"type": "array", "minItems": 1, "items": _message()},
                "stream": {"type": "boolean"},
                "stream_options": {"type": "object",
                                   "properties": {"include_usage": {"type": "boolean"}}},
                "temperature": {"type": "number"},
                "max_tokens": {"type": "integer"},
                "tools": {"type": "array", "items": {"type": "object"}},
                "user": {"type": "string"},
                "metadata": {"type": "object"},
            },
        },
        "ChatCompletion": {
            "type": "object",
            "required": ["choices"],
            "properties": {"id": {"type": "string"}, "object": {"type": "string"},
                           "model": {"type": ["string", "null"]},
                           "choices": {"type": "array", "items": {"type": "object"}},
                           "usage": {"type": ["object", "null"]}},
        },
        "MessagesRequest": {
            "type": "object",
            "required": ["model", "messages", "max_tokens"],
            "description": "Anthropic Messages body.",
            "properties": {
                "model": {"type": "string", "minLength": 1},
                "max_tokens": {"type": "integer", "minimum": 1},
                "messages": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["role", "content"],
                    "properties": {"role": {"type": "string", "enum": ["user", "assistant"]},
                                   "content": {"type": ["string", "array"]}}}},
                "system": {"type": ["string", "array"]},
                "stream": {"type": "boolean"},
                "temperature": {"type": "number"},
            },
        },
        "Message": {"type": "object", "properties": {"id": {"type": "string"},
                                                      "type": {"type": "string"},
                                                      "content": {"type": "array"}}},
        "ModelList": {
            "type": "object", "required": ["object", "data"],
            "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": {
                "type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}}},
        },
        "RoutePreview": {
            "type": "object", "required": ["decision", "plan"],
            "properties": {"decision": {"type": "object"},
                           "plan": {"type": "array", "items": {"type": "string"}}},
        },
        "FeedbackRequest": {
            "type": "object", "required": ["request_id", "score"],
            "properties": {"request_id": {"type": "string", "minLength": 1},
                           "score": {"type": "number", "minimum": 0, "maximum": 1},
                           "comment": {"type": "string"}},
        },
        "FeedbackStored": {"type": "object", "required": ["status", "request_id"],
                           "properties": {"status": {"const": "stored"},
                                          "request_id": {"type": "string"}}},
        "Health": {"type": "object", "required": ["status"],
                   "properties": {"status": {"type": "string"}}},
        "Ready": {
            "type": "object", "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["ready", "degraded", "starting"]},
                           "deployments": {"type": "object", "additionalProperties": {
                               "type": "object", "properties": {
                                   "breaker": {"enum": ["closed", "open", "half_open"]},
                                   "cooldown_s": {"type": "number"},
                                   "inflight": {"type": "integer"},
                                   "available": {"type": "boolean"}}}},
                           "retry_budget": {"type": "object"}},
        },
        "Error": {
            "type": "object", "required": ["error"],
            "description": "OpenAI-style error; Anthropic-style `{type: error, error}` "
                           "on /v1/messages.",
            "properties": {"type": {"type": "string"}, "error": {
                "type": "object", "required": ["message", "type"],
                "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                               "param": {"type": ["string", "null"]},
                               "code": {"type": ["string", "null"]}}}},
        },
    }


def _paths() -> dict[str, Any]:
    chat = {"summary": "OpenAI Chat Completions (JSON or SSE)", "operationId": "chat",
            "requestBody": _body("ChatRequest"),
            "responses": {**_ok("ChatCompletion", "The answer", stream=True),
                          **_errors(*UPSTREAM)}}
    return {
        "/v1/chat/completions": {"post": chat},
        "/v1/messages": {"post": {
            "summary": "Anthropic Messages (JSON or SSE)", "operationId": "messages",
            "requestBody": _body("MessagesRequest"),
            "responses": {**_ok("Message", "The answer", stream=True), **_errors(*UPSTREAM)}}},
        "/v1/models": {"get": {"summary": "Names clients may ask for", "operationId": "models",
                               "responses": _ok("ModelList", "Virtual models, then groups")}},
        "/v1/route": {"post": {
            "summary": "The routing decision and try order; calls no upstream",
            "operationId": "route", "requestBody": _body("ChatRequest"),
            "responses": {**_ok("RoutePreview", "Decision and plan"),
                          **_errors(*LOCAL, "403", "404")}}},
        "/v1/feedback": {"post": {
            "summary": "Store a score against a logged request", "operationId": "feedback",
            "requestBody": _body("FeedbackRequest"),
            "responses": {**_ok("FeedbackStored", "Stored"), **_errors(*LOCAL, "404")}}},
        "/healthz": {"get": {"summary": "Liveness", "operationId": "healthz",
                             "responses": _ok("Health", "Alive")}},
        "/readyz": {"get": {
            "summary": "Readiness, with each deployment's breaker, cooldown, in-flight count",
            "operationId": "readyz",
            "responses": {**_ok("Ready", "At least one deployment available"),
                          "503": {"description": "No deployment available",
                                  "content": {JSON: {"schema": _ref("Ready")}}}}}},
    }


@functools.cache
def openapi_bytes() -> bytes:
    """The document, encoded once (immutable bytes, no shared mutable dict)."""
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "flagman", "version": __version__,
                 "description": "An AI gateway: OpenAI/Anthropic-compatible endpoints, "
                                "routing, failover."},
        "paths": _paths(),
        "components": {"schemas": _schemas()},
    }
    return orjson.dumps(doc)


async def openapi_json(request: Request) -> Response:
    return Response(openapi_bytes(), media_type=JSON)
