"""OpenAI chat request → Anthropic Messages request (what the Anthropic provider sends).

The Anthropic API rejects unknown fields, so unlike the inbound direction
this one keeps only fields Anthropic accepts: OpenAI-only knobs such as
`presence_penalty`, `seed` or `response_format` are dropped, and `n > 1`,
which cannot be honoured, is refused.
"""

from __future__ import annotations

import re
from typing import Any

from flagman.errors import BadRequestError
from flagman.formats.anthropic_response import as_dict, parse_arguments

#: Anthropic-only fields a client may put in an OpenAI body; forwarded as they are.
_PASSTHROUGH = ("top_k", "thinking", "container", "mcp_servers", "context_management")
_DATA_URL = re.compile(r"^data:([^;,]+);base64,(.*)$", re.DOTALL)


def _bad(param: str, message: str) -> BadRequestError:
    return BadRequestError(f"{param}: {message}", param=param)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text") or p.get("refusal") or "") for p in content if isinstance(p, dict)
        )
    return ""


def _image_block(part: dict[str, Any], param: str) -> dict[str, Any]:
    spec = part.get("image_url")
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str):
        raise _bad(f"{param}.image_url.url", "expected a string")
    m = _DATA_URL.match(url)
    if m:
        source = {"type": "base64", "media_type": m.group(1), "data": m.group(2)}
        return {"type": "image", "source": source}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _file_block(part: dict[str, Any], param: str) -> dict[str, Any]:
    spec = as_dict(part.get("file"))
    m = _DATA_URL.match(str(spec.get("file_data") or ""))
    if not m:
        raise _bad(f"{param}.file", "only inline (base64 data URL) files can be sent to Anthropic")
    block: dict[str, Any] = {
        "type": "document",
        "source": {"type": "base64", "media_type": m.group(1), "data": m.group(2)},
    }
    if isinstance(spec.get("filename"), str):
        block["title"] = spec["filename"]
    return block


def _blocks(content: Any, param: str) -> list[dict[str, Any]]:
    """OpenAI content (string or parts) → Anthropic blocks; empty text is skipped (rejected)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if content is None:
        return []
    if not isinstance(content, list):
        raise _bad(param, "must be a string or a list of content parts")
    out: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        p = f"{param}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "refusal"):
            text = part.get(kind) if kind == "refusal" else part.get("text")
            if isinstance(text, str) and text:
                out.append({"type": "text", "text": text})
        elif kind == "image_url":
            out.append(_image_block(part, p))
        elif kind == "file":
            out.append(_file_block(part, p))
        elif isinstance(part, dict) and kind in ("image", "document"):
            out.append(part)  # already an Anthropic block
        else:
            raise _bad(f"{p}.type", f"content part type {kind!r} cannot be sent to Anthropic")
    return out


def _tool_uses(calls: Any, param: str) -> list[dict[str, Any]]:
    out = []
    for j, c in enumerate(calls if isinstance(calls, list) else []):
        fn = c.get("function") if isinstance(c, dict) else None
        if not isinstance(fn, dict) or not isinstance(c.get("id"), str):
            raise _bad(f"{param}[{j}]", "a tool call needs an `id` and a `function`")
        out.append({
            "type": "tool_use", "id": c["id"], "name": str(fn.get("name") or ""),
            "input": parse_arguments(fn.get("arguments")),
        })
    return out


def _append(out: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Merge consecutive same-role turns: tool results and the next user text share a turn."""
    if not blocks:
        return
    if out and out[-1]["role"] == role:
        out[-1]["content"].extend(blocks)
    else:
        out.append({"role": role, "content": blocks})


def _convert_messages(messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (system blocks, Anthropic messages)."""
    if not isinstance(messages, list) or not messages:
        raise _bad("messages", "must be a non-empty list of messages")
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        p = f"messages[{i}]"
        if not isinstance(m, dict):
            raise _bad(p, "each message must be an object")
        role = m.get("role")
        if role in ("system", "developer"):
            text = _text_of(m.get("content"))
            if text:
                system.append({"type": "text", "text": text})
        elif role == "user":
            _append(out, "user", _blocks(m.get("content"), f"{p}.content"))
        elif role == "assistant":
            blocks = _blocks(m.get("content"), f"{p}.content")
            _append(out, "assistant", blocks + _tool_uses(m.get("tool_calls"), f"{p}.tool_calls"))
        elif role == "tool":
            if not isinstance(m.get("tool_call_id"), str):
                raise _bad(f"{p}.tool_call_id", "a tool message needs a `tool_call_id`")
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": m["tool_call_id"]}
            text = _text_of(m.get("content"))
            if text:
                result["content"] = text
            _append(out, "user", [result])
        else:
            raise _bad(f"{p}.role", f"role {role!r} cannot be sent to Anthropic")
    return system, out


def _tools(tools: Any) -> list[dict[str, Any]]:
    out = []
    for i, t in enumerate(tools if isinstance(tools, list) else []):
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _bad(f"tools[{i}].function.name", "each tool needs a function name")
        schema = fn.get("parameters") or {"type": "object", "properties": {}}
        tool: dict[str, Any] = {"name": fn["name"], "input_schema": schema}
        if isinstance(fn.get("description"), str):
            tool["description"] = fn["description"]
        out.append(tool)
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    out: dict[str, Any]
    if choice is None or choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise _bad("tool_choice", "must be auto, none, required, or a named function")
    if parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    elif choice is None:
        return None  # leave Anthropic's default alone
    return out


def _sampling(body: dict[str, Any], out: dict[str, Any]) -> None:
    if isinstance(body.get("temperature"), int | float):
        out["temperature"] = min(float(body["temperature"]), 1.0)  # OpenAI allows up to 2
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        out["stop_sequences"] = [s for s in stop if isinstance(s, str)]
    for key in _PASSTHROUGH:
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("service_tier") in ("auto", "standard_only"):
        out["service_tier"] = body["service_tier"]


def openai_request_to_anthropic(
    body: dict[str, Any], *, default_max_tokens: int = 4096
) -> dict[str, Any]:
    """Translate an OpenAI chat request into an Anthropic Messages request.

    Anthropic requires `max_tokens`, so `default_max_tokens` fills it when the
    OpenAI body has neither `max_tokens` nor `max_completion_tokens`.
    """
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise _bad("n", "Anthropic returns one choice per request")
    system, messages = _convert_messages(body.get("messages"))
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    out: dict[str, Any] = {"model": body.get("model"), "messages": messages,
                           "max_tokens": max_tokens}
    if system:
        out["system"] = system
    if body.get("stream"):
        out["stream"] = True
    _sampling(body, out)
    if body.get("tools"):
        out["tools"] = _tools(body.get("tools"))
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    metadata = dict(body["metadata"]) if isinstance(body.get("metadata"), dict) else {}
    if isinstance(body.get("user"), str):
        metadata["user_id"] = body["user"]
    if "user_id" in metadata:
        out["metadata"] = {"user_id": metadata["user_id"]}  # the only key Anthropic accepts
    return out
