"""Anthropic Messages request → the OpenAI chat shape the gateway routes on.

The gateway's internal request is the OpenAI chat body, so an Anthropic
client is translated once at the edge and then routed like any other request.
Malformed bodies are rejected here with a `BadRequestError` naming the
parameter, because the routing steps assume a well-formed `messages` list.

Fields with no OpenAI equivalent that a client may still rely on (`thinking`,
`service_tier`, …) are passed through unchanged: the Anthropic provider
forwards them, and an OpenAI upstream that rejects them says so itself.
"""

from __future__ import annotations

from typing import Any

import orjson

from flagman.errors import BadRequestError

#: Anthropic request fields translated explicitly (everything else passes through).
_HANDLED = {
    "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature",
    "top_p", "top_k", "tools", "tool_choice", "metadata",
}


def _bad(param: str, message: str) -> BadRequestError:
    return BadRequestError(f"{param}: {message}", param=param)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _block_text(blocks: list[Any], param: str) -> str:
    """Join the text of a list of text blocks (system prompts, tool results)."""
    parts: list[str] = []
    for j, b in enumerate(blocks):
        if not isinstance(b, dict) or not isinstance(b.get("text"), str):
            raise _bad(f"{param}[{j}]", "expected a text block with a string `text`")
        parts.append(b["text"])
    return "\n".join(parts)


def _image_part(block: dict[str, Any], param: str) -> dict[str, Any]:
    """Anthropic image block → OpenAI `image_url` part (base64 becomes a data URL)."""
    src = block.get("source")
    if not isinstance(src, dict):
        raise _bad(f"{param}.source", "an image block needs a `source` object")
    if src.get("type") == "base64":
        media, data = src.get("media_type"), src.get("data")
        if not isinstance(media, str) or not isinstance(data, str):
            raise _bad(f"{param}.source", "base64 images need `media_type` and `data` strings")
        return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}
    if src.get("type") == "url" and isinstance(src.get("url"), str):
        return {"type": "image_url", "image_url": {"url": src["url"]}}
    raise _bad(f"{param}.source.type", f"image source {src.get('type')!r} is not supported here")


def _document_part(block: dict[str, Any], param: str) -> dict[str, Any]:
    """Anthropic document block → OpenAI `file` part (PDF) or a text part."""
    src = block.get("source")
    if isinstance(src, dict) and src.get("type") == "base64" and isinstance(src.get("data"), str):
        media = src.get("media_type") or "application/pdf"
        name = block.get("title") if isinstance(block.get("title"), str) else "document.pdf"
        url = f"data:{media};base64,{src['data']}"
        return {"type": "file", "file": {"filename": name, "file_data": url}}
    if isinstance(src, dict) and src.get("type") == "text" and isinstance(src.get("data"), str):
        return {"type": "text", "text": src["data"]}
    raise _bad(f"{param}.source", "only base64 and text document sources are supported here")


def _tool_message(block: dict[str, Any], param: str) -> tuple[dict[str, Any], list[Any]]:
    """A `tool_result` block → an OpenAI `role: tool` message, plus any images it held.

    OpenAI tool messages carry text only, so images in a result are returned
    separately and placed in the user message that follows the tool messages.
    """
    tool_id = block.get("tool_use_id")
    if not isinstance(tool_id, str):
        raise _bad(f"{param}.tool_use_id", "a tool_result needs a string `tool_use_id`")
    content = block.get("content", "")
    images: list[Any] = []
    if isinstance(content, list):
        texts = []
        for j, b in enumerate(content):
            if isinstance(b, dict) and b.get("type") == "image":
                images.append(_image_part(b, f"{param}.content[{j}]"))
            else:
                texts.append(b)
        content = _block_text(texts, f"{param}.content")
    elif not isinstance(content, str):
        raise _bad(f"{param}.content", "expected a string or a list of blocks")
    return {"role": "tool", "tool_call_id": tool_id, "content": content}, images


def _user_messages(content: list[Any], param: str) -> list[dict[str, Any]]:
    """One Anthropic user turn → tool messages first, then the user's own parts."""
    tools: list[dict[str, Any]] = []
    parts: list[Any] = []
    for j, b in enumerate(content):
        p = f"{param}[{j}]"
        kind = b.get("type")
        if kind == "text":
            if not isinstance(b.get("text"), str):
                raise _bad(f"{p}.text", "expected a string")
            parts.append({"type": "text", "text": b["text"]})
        elif kind == "image":
            parts.append(_image_part(b, p))
        elif kind == "document":
            parts.append(_document_part(b, p))
        elif kind == "tool_result":
            msg, images = _tool_message(b, p)
            tools.append(msg)
            parts.extend(images)
        else:
            raise _bad(f"{p}.type", f"content block type {kind!r} is not supported in user turns")
    out = list(tools)
    if parts:
        simple = len(parts) == 1 and parts[0]["type"] == "text"
        out.append({"role": "user", "content": parts[0]["text"] if simple else parts})
    return out


def _assistant_message(content: list[Any], param: str) -> dict[str, Any]:
    """Text blocks are concatenated (Anthropic splits text around citations only)."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, b in enumerate(content):
        kind = b.get("type")
        if kind == "text" and isinstance(b.get("text"), str):
            texts.append(b["text"])
        elif kind == "tool_use":
            if not isinstance(b.get("id"), str) or not isinstance(b.get("name"), str):
                raise _bad(f"{param}[{j}]", "a tool_use block needs string `id` and `name`")
            args = orjson.dumps(b.get("input") or {}).decode()
            calls.append(
                {"id": b["id"], "type": "function",
                 "function": {"name": b["name"], "arguments": args}}
            )
        elif kind in ("thinking", "redacted_thinking"):
            continue  # reasoning of an earlier turn: no OpenAI field carries it back
        else:
            raise _bad(f"{param}[{j}].type", f"content block type {kind!r} is not supported")
    msg: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        msg["tool_calls"] = calls
    return msg


def _messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise _bad("messages", "must be a non-empty list of messages")
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        p = f"messages[{i}]"
        if not isinstance(m, dict):
            raise _bad(p, "each message must be an object")
        role, content = m.get("role"), m.get("content")
        if role not in ("user", "assistant"):
            raise _bad(f"{p}.role", "must be 'user' or 'assistant'")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        if not isinstance(content, list) or not all(isinstance(b, dict) for b in content):
            raise _bad(f"{p}.content", "must be a string or a list of content blocks")
        if role == "user":
            out.extend(_user_messages(content, f"{p}.content"))
        else:
            out.append(_assistant_message(content, f"{p}.content"))
    return out


def _system(system: Any) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return _block_text(system, "system")
    raise _bad("system", "must be a string or a list of text blocks")


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise _bad("tools", "must be a list")
    out = []
    for i, t in enumerate(tools):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise _bad(f"tools[{i}].name", "each tool needs a string `name`")
        if t.get("type") not in (None, "custom"):
            raise _bad(f"tools[{i}].type", f"server tool {t['type']!r} cannot be routed")
        schema = t.get("input_schema")
        if not isinstance(schema, dict):
            raise _bad(f"tools[{i}].input_schema", "must be a JSON schema object")
        fn: dict[str, Any] = {"name": t["name"], "parameters": schema}
        if isinstance(t.get("description"), str):
            fn["description"] = t["description"]
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(choice: Any, out: dict[str, Any]) -> None:
    if not isinstance(choice, dict):
        raise _bad("tool_choice", "must be an object with a `type`")
    kind = choice.get("type")
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise _bad("tool_choice.type", "must be auto, any, none, or tool (with a `name`)")
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False


def _sampling(body: dict[str, Any], out: dict[str, Any]) -> None:
    for name in ("temperature", "top_p"):
        if name in body:
            if not _is_number(body[name]):
                raise _bad(name, "must be a number")
            out[name] = body[name]
    if "top_k" in body:
        if not isinstance(body["top_k"], int) or isinstance(body["top_k"], bool):
            raise _bad("top_k", "must be an integer")
        out["top_k"] = body["top_k"]  # not OpenAI; vLLM and the Anthropic provider read it
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise _bad("stop_sequences", "must be a list of strings")
        out["stop"] = stops


def anthropic_request_to_openai(body: dict[str, Any]) -> dict[str, Any]:
    """Translate (and validate) an Anthropic Messages request into the OpenAI shape."""
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _bad("model", "a model name (string) is required")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _bad("max_tokens", "a positive integer is required")
    messages = _messages(body.get("messages"))
    if body.get("system"):
        messages.insert(0, {"role": "system", "content": _system(body["system"])})
    out: dict[str, Any] = {"model": body["model"], "messages": messages, "max_tokens": max_tokens}
    if "stream" in body:
        if not isinstance(body["stream"], bool):
            raise _bad("stream", "must be a boolean")
        out["stream"] = body["stream"]
        if body["stream"]:
            out["stream_options"] = {"include_usage": True}  # usage feeds message_delta
    _sampling(body, out)
    if body.get("tools") is not None:
        out["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        _tool_choice(body["tool_choice"], out)
    meta = body.get("metadata")
    if meta is not None:
        if not isinstance(meta, dict):
            raise _bad("metadata", "must be an object")
        if isinstance(meta.get("user_id"), str):
            out["user"] = meta["user_id"]
    for key, value in body.items():
        if key not in _HANDLED:
            out[key] = value
    return out
