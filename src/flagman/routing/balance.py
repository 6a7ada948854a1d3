"""Load balancing inside a model group.

A balancer orders the healthy deployments of a group: the first is tried
first, the rest are the failover order.  Strategies:

- `weighted`   random by `weight` (percentage splits and canaries; change by reloading)
- `least_busy` fewest requests in flight, ties broken at random
- `latency`    power of two choices on the latency EWMA (unknown latency is tried first)
- `cheapest`   lowest price first
- `ordered`    config order (a primary and its backups)

Stickiness (`sticky: user | conversation`) replaces the random draw by a
rendezvous hash of the user or of the conversation's first message, so a
multi-turn conversation keeps its deployment while it stays healthy.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from flagman.reliability.state import HealthBoard
from flagman.types import ChatRequest


class Candidate(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def weight(self) -> float: ...

    @property
    def price(self) -> float: ...


C = TypeVar("C", bound=Candidate)
Strategy = Callable[[list[Candidate], HealthBoard, random.Random], list[Candidate]]


def _weighted(c: list[Candidate], health: HealthBoard, rng: random.Random) -> list[Candidate]:
    # Efraimidis–Spirakis: sort by u^(1/w); the first element is a weighted draw.
    keyed = []
    for d in c:
        w = d.weight
        keyed.append(((rng.random() ** (1.0 / w)) if w > 0 else -1.0, d))
    keyed.sort(key=lambda kv: kv[0], reverse=True)
    return [d for _, d in keyed]


def _least_busy(c: list[Candidate], health: HealthBoard, rng: random.Random) -> list[Candidate]:
    return sorted(c, key=lambda d: (health.get(d.id).inflight, rng.random()))


def _latency(c: list[Candidate], health: HealthBoard, rng: random.Random) -> list[Candidate]:
    def ewma(d: Candidate) -> float:
        e = health.get(d.id).ewma_ms
        return -1.0 if e is None else e  # explore deployments never measured

    if len(c) <= 2:
        return sorted(c, key=ewma)
    a, b = rng.sample(range(len(c)), 2)
    first = c[a] if ewma(c[a]) <= ewma(c[b]) else c[b]
    rest = sorted((d for d in c if d is not first), key=ewma)
    return [first, *rest]


def _cheapest(c: list[Candidate], health: HealthBoard, rng: random.Random) -> list[Candidate]:
    return sorted(c, key=lambda d: (d.price, rng.random()))


def _ordered(c: list[Candidate], health: HealthBoard, rng: random.Random) -> list[Candidate]:
    return list(c)


STRATEGIES: dict[str, Strategy] = {
    "weighted": _weighted,
    "least_busy": _least_busy,
    "latency": _latency,
    "cheapest": _cheapest,
    "ordered": _ordered,
}


def sticky_key(req: ChatRequest, mode: str | None) -> str | None:
    if mode == "user":
        user = req.body.get("user")
        return str(user) if user else None
    if mode == "conversation":
        msgs = [m for m in req.messages if isinstance(m, dict) and m.get("role") != "system"]
        if len(msgs) < 1:
            return None
        first = msgs[0].get("content")
        return hashlib.blake2b(repr(first).encode(), digest_size=8).hexdigest()
    return None


def _rendezvous(c: Sequence[C], key: str) -> list[C]:
    def score(d: C) -> int:
        h = hashlib.blake2b(f"{key}|{d.id}".encode(), digest_size=8).digest()
        return int.from_bytes(h, "big")

    return sorted(c, key=score, reverse=True)


def order(
    strategy: str,
    candidates: list[C],
    health: HealthBoard,
    rng: random.Random,
    sticky: str | None = None,
) -> list[C]:
    if len(candidates) <= 1:
        return list(candidates)
    if sticky is not None:
        return _rendezvous(candidates, sticky)
    ordered = STRATEGIES[strategy](list(candidates), health, rng)
    return ordered  # type: ignore[return-value]  # strategies only reorder their input
