"""Responses, usage, stop reasons and errors between OpenAI and Anthropic shapes.

Both directions live here so the two mappings of stop reasons and usage stay
next to each other and cannot drift apart.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

#: Anthropic stop_reason → OpenAI finish_reason.
STOP_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

#: OpenAI finish_reason → Anthropic stop_reason.
FINISH_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

#: flagman error class → Anthropic error `type` (what the Anthropic SDKs expect).
_ERROR_TYPES = {
    "bad_request": "invalid_request_error",
    "context_window_exceeded": "invalid_request_error",
    "content_policy": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "rate_limited": "rate_limit_error",
    "upstream_unavailable": "overloaded_error",
    "upstream_error": "api_error",
    "timeout": "api_error",
    "internal": "api_error",
}
_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def as_dict(value: Any) -> dict[str, Any]:
    """`value` when it is an object, else an empty one: wire data is never trusted."""
    return value if isinstance(value, dict) else {}


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex[:24]}"


def finish_to_stop(finish: Any, has_tool_calls: bool = False) -> str:
    """Some OpenAI-compatible servers say `stop` after tool calls; Anthropic says tool_use."""
    if has_tool_calls and finish in (None, "stop"):
        return "tool_use"
    return FINISH_TO_STOP.get(str(finish), "end_turn")


def usage_to_anthropic(u: Any) -> dict[str, int]:
    """OpenAI usage → Anthropic usage (cached prompt tokens become cache reads).

    OpenAI's `prompt_tokens` includes cached tokens while Anthropic's
    `input_tokens` excludes cache reads, so the cached part is moved over.
    """
    u = as_dict(u)
    prompt = int(u.get("prompt_tokens") or 0)
    details = u.get("prompt_tokens_details")
    cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    return {
        "input_tokens": max(0, prompt - cached),
        "output_tokens": int(u.get("completion_tokens") or 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def usage_to_openai(u: Any) -> dict[str, Any]:
    """Anthropic usage → OpenAI usage; every input token kind counts as a prompt token."""
    u = as_dict(u)
    cached = int(u.get("cache_read_input_tokens") or 0)
    prompt = int(u.get("input_tokens") or 0) + cached + int(
        u.get("cache_creation_input_tokens") or 0
    )
    completion = int(u.get("output_tokens") or 0)
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def parse_arguments(arguments: Any) -> dict[str, Any]:
    """Tool-call arguments (a JSON string) → an input object; unparsable text is kept whole."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw_arguments": arguments}
    return value if isinstance(value, dict) else {"value": value}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text") or p.get("refusal") or "") for p in content if isinstance(p, dict)
        )
    return ""


def openai_response_to_anthropic(data: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI `chat.completion` → an Anthropic `message` object."""
    choices = data.get("choices") or [{}]
    choice = as_dict(choices[0])
    msg = as_dict(choice.get("message"))
    content: list[dict[str, Any]] = []
    text = _content_text(msg.get("content")) or _content_text(msg.get("refusal"))
    if text:
        content.append({"type": "text", "text": text})
    calls = [c for c in msg.get("tool_calls") or [] if isinstance(c, dict)]
    for c in calls:
        fn = as_dict(c.get("function"))
        content.append({
            "type": "tool_use",
            "id": c.get("id") or f"toolu_{uuid.uuid4().hex[:24]}",
            "name": fn.get("name") or "",
            "input": parse_arguments(fn.get("arguments")),
        })
    raw_id = str(data.get("id") or "")
    return {
        "id": raw_id if raw_id.startswith("msg_") else (f"msg_{raw_id}" if raw_id else
                                                       new_message_id()),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": finish_to_stop(choice.get("finish_reason"), bool(calls)),
        "stop_sequence": None,
        "usage": usage_to_anthropic(data.get("usage")),
    }


def anthropic_response_to_openai(data: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic `message` → an OpenAI `chat.completion` (thinking blocks are dropped)."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for b in data.get("content") or []:
        if not isinstance(b, dict):
            continue
        if b.get("type") == "text":
            texts.append(str(b.get("text") or ""))
        elif b.get("type") == "tool_use":
            calls.append({
                "id": b.get("id"),
                "type": "function",
                "function": {
                    "name": b.get("name"),
                    "arguments": orjson.dumps(b.get("input") or {}).decode(),
                },
            })
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    stop = data.get("stop_reason")
    return {
        "id": data.get("id") or new_message_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("model"),
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": STOP_TO_FINISH.get(str(stop), "stop"),
            "logprobs": None,
        }],
        "usage": usage_to_openai(data.get("usage")),
    }


def anthropic_error_body(status: int, error_class: str, message: str) -> dict[str, Any]:
    """The Anthropic error body for a flagman error, so Anthropic SDKs raise the right class."""
    if status == 413:
        etype = "request_too_large"
    else:
        etype = _ERROR_TYPES.get(error_class) or _STATUS_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": etype, "message": message}}
