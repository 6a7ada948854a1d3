"""Streaming translation between OpenAI chunks and Anthropic SSE events.

Anthropic streams are block-structured (a block is opened, filled with
deltas, closed; indexes count up), while OpenAI chunks are flat deltas.  Each
translator is a small state machine fed one item at a time so the gateway can
forward every piece as soon as it arrives.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from flagman.errors import UpstreamError
from flagman.formats.anthropic_response import (
    STOP_TO_FINISH,
    as_dict,
    finish_to_stop,
    new_message_id,
    usage_to_anthropic,
    usage_to_openai,
)

Event = tuple[str, dict[str, Any]]


def sse_event(event: str, data: dict[str, Any]) -> bytes:
    """Encode one Anthropic SSE event (`event:` line, `data:` line, blank line)."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class OpenAIStreamToAnthropic:
    """OpenAI `chat.completion.chunk`s → Anthropic stream events (for Anthropic clients).

    Usage arrives only in the last OpenAI chunk, so `message_start` reports
    zero tokens and the real counts go in `message_delta` (Anthropic SDKs take
    the cumulative values from there).
    """

    def __init__(self, model: str, message_id: str | None = None) -> None:
        self.model = model
        self.message_id = message_id or new_message_id()
        self._started = False
        self._done = False
        self._open: int | None = None  # index of the open content block
        self._open_kind: str | None = None
        self._next_index = 0
        self._tools: dict[Any, int] = {}  # OpenAI tool-call key → block index
        self._last_tool: Any = None
        self._finish: str | None = None
        self._usage: Any = None

    def _start(self) -> list[Event]:
        if self._started:
            return []
        self._started = True
        message: dict[str, Any] = {
            "id": self.message_id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        index, self._open, self._open_kind = self._open, None, None
        return [("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _open_block(self, kind: str, block: dict[str, Any]) -> list[Event]:
        events = self._close()
        self._open, self._open_kind = self._next_index, kind
        self._next_index += 1
        data = {"type": "content_block_start", "index": self._open, "content_block": block}
        return [*events, ("content_block_start", data)]

    def _text(self, text: str) -> list[Event]:
        events = [] if self._open_kind == "text" else self._open_block(
            "text", {"type": "text", "text": ""}
        )
        delta = {"type": "text_delta", "text": text}
        data = {"type": "content_block_delta", "index": self._open, "delta": delta}
        return [*events, ("content_block_delta", data)]

    def _tool(self, call: dict[str, Any]) -> list[Event]:
        key = call.get("index")
        if key is None:  # some servers omit the index; a new id means a new call
            key = ("id", call["id"]) if call.get("id") else self._last_tool
        fn = as_dict(call.get("function"))
        events: list[Event] = []
        if key not in self._tools:
            block: dict[str, Any] = {
                "type": "tool_use", "id": call.get("id") or f"toolu_{uuid.uuid4().hex[:24]}",
                "name": fn.get("name") or "", "input": {},
            }
            events = self._open_block("tool_use", block)
            self._tools[key] = self._next_index - 1
        self._last_tool = key
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            delta = {"type": "input_json_delta", "partial_json": args}
            data = {"type": "content_block_delta", "index": self._tools[key], "delta": delta}
            events.append(("content_block_delta", data))
        return events

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        """Translate one OpenAI chunk; returns the events to send, possibly none."""
        events = self._start()
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # Anthropic messages have one choice
            delta = as_dict(choice.get("delta"))
            for key in ("content", "refusal"):
                if isinstance(delta.get(key), str) and delta[key]:
                    events += self._text(delta[key])
            for call in delta.get("tool_calls") or []:
                if isinstance(call, dict):
                    events += self._tool(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return events

    def finish(self) -> list[Event]:
        """Close the open block and end the message (call once the OpenAI stream ends)."""
        if self._done:
            return []
        self._done = True
        events = self._start() + self._close()
        usage = usage_to_anthropic(self._usage)
        delta = {"stop_reason": finish_to_stop(self._finish, bool(self._tools)),
                 "stop_sequence": None}
        events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        events.append(("message_stop", {"type": "message_stop"}))
        return events


class AnthropicStreamToOpenAI:
    """Anthropic stream events → OpenAI chunks (for the Anthropic provider).

    The chunk carrying `finish_reason` is sent on `message_delta`, and a last
    chunk with empty `choices` and the usage on `message_stop`, as OpenAI does
    with `stream_options.include_usage`.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.finished = False  # True once message_stop arrived
        self._tool_index: dict[int, int] = {}  # Anthropic block index → OpenAI tool index
        self._usage: dict[str, Any] = {}

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    def _tool_delta(self, block_index: int, **fields: Any) -> dict[str, Any]:
        return self._chunk({"tool_calls": [{"index": self._tool_index[block_index], **fields}]})

    def _merge_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if isinstance(v, int)})

    def _on_block_start(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        block = as_dict(data.get("content_block"))
        index = int(data.get("index") or 0)
        if block.get("type") == "tool_use":
            self._tool_index[index] = len(self._tool_index)
            args = orjson.dumps(block["input"]).decode() if block.get("input") else ""
            fn = {"name": block.get("name"), "arguments": args}
            return [self._tool_delta(index, id=block.get("id"), type="function", function=fn)]
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        return []  # thinking and server-tool blocks have no OpenAI chunk form

    def _on_block_delta(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        delta = as_dict(data.get("delta"))
        index = int(data.get("index") or 0)
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if delta.get("type") == "input_json_delta" and index in self._tool_index:
            part = delta.get("partial_json") or ""
            return [self._tool_delta(index, function={"arguments": part})] if part else []
        return []

    def _on_error(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        err = as_dict(data.get("error"))
        etype = str(err.get("type") or "api_error")
        raise UpstreamError(
            f"upstream error mid-stream: {err.get('message') or etype}", code=etype
        )

    def feed(self, event: str | None, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Translate one SSE event; raises `UpstreamError` on an `error` event."""
        kind = data.get("type") or event
        if kind == "message_start":
            message = as_dict(data.get("message"))
            self._merge_usage(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._on_block_start(data)
        if kind == "content_block_delta":
            return self._on_block_delta(data)
        if kind == "message_delta":
            self._merge_usage(data.get("usage"))
            stop = as_dict(data.get("delta")).get("stop_reason")
            return [self._chunk({}, STOP_TO_FINISH.get(str(stop), "stop"))]
        if kind == "message_stop":
            self.finished = True
            final = self._chunk({})
            final["choices"] = []
            final["usage"] = usage_to_openai(self._usage)
            return [final]
        if kind == "error":
            return self._on_error(data)
        return []  # ping, content_block_stop, unknown future events
