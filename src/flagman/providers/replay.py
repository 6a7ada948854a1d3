"""Answers from a recorded outcomes file, so demos and tests run without a network.

Options (under `options:` of a deployment):

    recording: data/gsm8k_responses.csv   # or an outcomes .jsonl with "responses"
    column: gpt-4-1106-preview            # which model's answers; default: `model` / `name`
    latency_ms: 0                         # simulated upstream time

A RouteLLM response CSV has a `prompt` column and `<model>_response`
columns; an outcomes JSONL line has `prompt` and `responses: {model: text}`.
The lookup key is the last user message, whitespace-trimmed.  A prompt that is
not in the recording is a 404 `prompt_not_recorded`, never a made-up answer.
"""

from __future__ import annotations

import asyncio
import csv
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flagman.config import format_validation_error
from flagman.errors import ConfigError, NotFoundError
from flagman.providers.base import Capabilities, ChatResult, Provider
from flagman.types import ChatRequest, Usage


class ReplayOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recording: str
    column: str | None = None
    latency_ms: float = Field(0.0, ge=0)


def load_recording(path: Path, column: str) -> dict[str, str]:
    """Map prompt → recorded response of `column` (a model name)."""
    out: dict[str, str] = {}
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            field = f"{column}_response"
            if field not in (reader.fieldnames or []):
                cols = [c.removesuffix("_response") for c in reader.fieldnames or []
                        if c.endswith("_response")]
                raise ConfigError(f"{path}: no responses for model {column!r} (has: {cols})")
            for row in reader:
                out[row["prompt"].strip()] = row[field]
    else:
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    rec = orjson.loads(line)
                    resp = (rec.get("responses") or {}).get(column)
                    if resp is not None:
                        out[str(rec["prompt"]).strip()] = resp
    return out


def _tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


class ReplayProvider(Provider):
    kind = "replay"
    capabilities = Capabilities(streaming=True, tools=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        try:
            opts = ReplayOptions.model_validate(self.deployment.options)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, f"model {self.id} options")) from None
        column = opts.column or self.deployment.upstream_model
        path = self.config.resolve_path(opts.recording)
        if not path.exists():
            raise ConfigError(f"model {self.id} options.recording: no such file {path}")
        self._answers = load_recording(path, column)
        self._latency = opts.latency_ms / 1000

    def _lookup(self, body: dict[str, Any]) -> tuple[str, str]:
        prompt = ChatRequest(body).last_user_text.strip()
        answer = self._answers.get(prompt)
        if answer is None:
            raise NotFoundError(
                f"replay deployment {self.id}: this prompt is not in the recording",
                code="prompt_not_recorded",
                deployment=self.id,
            )
        return prompt, answer

    async def complete(self, body: dict[str, Any]) -> ChatResult:
        prompt, answer = self._lookup(body)
        if self._latency:
            await asyncio.sleep(self._latency)
        usage = Usage(_tokens(prompt), _tokens(answer))
        data = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop",
            }],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            },
        }
        return ChatResult(data=data, usage=usage)

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        result = await self.complete(body)
        answer = result.data["choices"][0]["message"]["content"]
        base = {"id": result.data["id"], "object": "chat.completion.chunk",
                "created": result.data["created"], "model": result.data["model"]}
        words = answer.split(" ")
        yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                    "finish_reason": None}]}
        for i, w in enumerate(words):
            piece = w if i == 0 else " " + w
            yield {**base, "choices": [{"index": 0, "delta": {"content": piece},
                                        "finish_reason": None}]}
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield {**base, "choices": [], "usage": result.data["usage"]}
