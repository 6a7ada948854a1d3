"""Interfaces of the request log and of shared routing state."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass
class RequestRecord:
    """One row of the request log (one per client request, whatever the attempts)."""

    id: str
    created: float
    endpoint: str
    requested_model: str
    key_id: str | None = None
    group_name: str | None = None
    deployment: str | None = None
    strategy: str | None = None
    decision: dict[str, Any] | None = None
    status: int = 200
    error_class: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    stream: bool = False
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    overhead_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    prompt: str | None = None  # only when log.store_bodies
    response: str | None = None  # only when log.store_bodies

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LogStore(Protocol):
    """Where request rows and feedback go.  Called from a writer thread, never inline."""

    def write(self, records: list[RequestRecord]) -> None: ...

    def add_feedback(self, request_id: str, score: float, comment: str | None) -> bool: ...

    def latest(self, limit: int) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...
