"""Normalized request and the Decision record that flows through flagman.

The chat request stays the client's OpenAI-shaped dict (so unknown fields pass
through untouched); `ChatRequest` only wraps it with cached views the routing
steps read.  `Decision` is what the log, headers, `/v1/route`, the CLI and the
feedback loop all read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import orjson


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append(p["text"])
        return "\n".join(parts)
    return ""


@dataclass
class ChatRequest:
    """An OpenAI chat request body plus what the gateway knows about its caller."""

    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    key_id: str | None = None
    key_info: dict[str, Any] = field(default_factory=dict)  # tier, team … once keys exist

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def messages(self) -> list[dict[str, Any]]:
        m = self.body.get("messages")
        return m if isinstance(m, list) else []

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @cached_property
    def last_user_text(self) -> str:
        for m in reversed(self.messages):
            if isinstance(m, dict) and m.get("role") == "user":
                return _content_text(m.get("content"))
        return ""

    @cached_property
    def conversation_text(self) -> str:
        return "\n".join(
            _content_text(m.get("content")) for m in self.messages if isinstance(m, dict)
        )

    @cached_property
    def estimated_prompt_tokens(self) -> int:
        # ~4 characters a token: tiktoken needs downloads at first use, and routing
        # only needs an estimate that is monotone in prompt length.
        return (len(self.conversation_text) + 3) // 4 + 4 * len(self.messages)

    @cached_property
    def has_images(self) -> bool:
        for m in self.messages:
            c = m.get("content") if isinstance(m, dict) else None
            if isinstance(c, list) and any(
                isinstance(p, dict) and p.get("type") in ("image_url", "image", "input_image")
                for p in c
            ):
                return True
        return False

    @property
    def has_tools(self) -> bool:
        return bool(self.body.get("tools") or self.body.get("functions"))


@dataclass
class StepTrace:
    """What one routing step did and why."""

    step: str
    outcome: str  # matched | passed | restricted | rejected | error
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "outcome": self.outcome, **self.detail}


@dataclass
class Attempt:
    deployment: str
    error_class: str | None
    latency_ms: float
    status: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "error_class": self.error_class,
            "latency_ms": round(self.latency_ms, 3),
            "status": self.status,
        }


@dataclass
class Decision:
    """Which model answers a request and why."""

    requested_model: str
    group: str | None = None  # the model group chosen
    deployment: str | None = None  # the deployment chosen inside it
    strategy: str = "direct"  # direct | router name
    steps: list[StepTrace] = field(default_factory=list)
    #: tags a deployment must carry (set by policy); None means no restriction
    required_tags: list[str] | None = None
    fallbacks: list[str] = field(default_factory=list)  # router-level fallback groups
    rejected: list[dict[str, str]] = field(default_factory=list)
    redactions: list[str] = field(default_factory=list)  # kinds of values redacted in the log
    #: set by the policy step: replaces sensitive values before anything is logged
    redact: Callable[[str], str] | None = field(default=None, repr=False)
    scores: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def trace(self, step: str, outcome: str, **detail: Any) -> None:
        self.steps.append(StepTrace(step, outcome, detail))

    def reject(self, candidate: str, reason: str) -> None:
        self.rejected.append({"candidate": candidate, "reason": reason})

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested_model": self.requested_model,
            "group": self.group,
            "deployment": self.deployment,
            "strategy": self.strategy,
            "required_tags": self.required_tags,
            "redactions": self.redactions,
            "steps": [s.to_dict() for s in self.steps],
            "rejected": self.rejected,
            "scores": self.scores,
        }

    def header(self) -> str:
        """Compact form for the x-flagman-route header: `step:outcome[=what]` joined by `;`."""
        parts = []
        for s in self.steps:
            what = s.detail.get("matched") or s.detail.get("route") or s.detail.get("to")
            parts.append(f"{s.step}:{s.outcome}" + (f"={what}" if what else ""))
        parts.append(f"group={self.group}")
        return "; ".join(parts)[:1024]

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), default=str)


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @classmethod
    def from_openai(cls, u: Any) -> Usage:
        if not isinstance(u, dict):
            return cls()
        return cls(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))
