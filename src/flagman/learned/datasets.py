"""Outcome data: the one format learned routers train and evaluate on.

One JSON object a line (JSONL)::

    {"id": "q1", "prompt": "...", "messages": [...], "scores": {"model-a": 1.0, "model-b": 0.0},
     "costs": {"model-a": 0.0021}, "category": "algebra"}

`scores` are in [0, 1] (1 = the answer was right/acceptable); `messages`, `costs`
(USD for that query) and `category` are optional.  Pairwise preferences
`{"prompt", "model_a", "model_b", "winner": "model_a"|"model_b"|"tie"}` are read
from the same files and kept apart, because only some routers learn from them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from flagman.errors import ConfigError


class DataError(ConfigError):
    """An outcome/preference file that cannot be read; the message names file and line."""


@dataclass
class Outcome:
    """How each model did on one prompt."""

    prompt: str
    scores: dict[str, float]
    id: str = ""
    costs: dict[str, float] | None = None
    category: str | None = None
    messages: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "prompt": self.prompt, "scores": self.scores}
        if self.messages is not None:
            d["messages"] = self.messages
        if self.costs is not None:
            d["costs"] = self.costs
        if self.category is not None:
            d["category"] = self.category
        return d


@dataclass
class Preference:
    """A pairwise judgement: which of two models answered `prompt` better."""

    prompt: str
    model_a: str
    model_b: str
    winner: str  # "model_a" | "model_b" | "tie"
    category: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"prompt": self.prompt, "model_a": self.model_a, "model_b": self.model_b,
             "winner": self.winner}
        if self.category is not None:
            d["category"] = self.category
        return d


@dataclass
class Dataset:
    """Outcomes plus preferences read from one or more files."""

    outcomes: list[Outcome] = field(default_factory=list)
    preferences: list[Preference] = field(default_factory=list)

    def models(self) -> list[str]:
        """Every model named, in first-seen order (stable artifact ordering)."""
        seen: dict[str, None] = {}
        for o in self.outcomes:
            for m in o.scores:
                seen.setdefault(m)
        for p in self.preferences:
            seen.setdefault(p.model_a)
            seen.setdefault(p.model_b)
        return list(seen)

    def extend(self, other: Dataset) -> None:
        self.outcomes.extend(other.outcomes)
        self.preferences.extend(other.preferences)


def split_of(prompt: str) -> str:
    """The fixed 80/20 split: "train" or "test" by a stable hash of the prompt text.

    A hash (not a random seed) so the demo, the bench and the shipped router
    agree on held-out questions without sharing a file.
    """
    h = int(hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:8], 16)
    return "train" if h % 100 < 80 else "test"


def prompt_of_messages(messages: Sequence[Any]) -> str:
    """The text a router reads from a chat: the last user message."""
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            if isinstance(c, list):
                return "\n".join(p["text"] for p in c
                                 if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _score(v: Any, where: str) -> float:
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if not isinstance(v, int | float) or math.isnan(float(v)) or not 0.0 <= float(v) <= 1.0:
        raise DataError(f"{where}: score must be a number in [0, 1], got {v!r}")
    return float(v)


def parse_record(obj: Any, where: str) -> Outcome | Preference:
    """Validate one JSON record; errors name the file and line."""
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object")
    prompt = obj.get("prompt")
    messages = obj.get("messages")
    if not isinstance(prompt, str):
        if not isinstance(messages, list):
            raise DataError(f"{where}: needs a 'prompt' string or a 'messages' list")
        prompt = prompt_of_messages(messages)
    category = obj.get("category")
    category = str(category) if category is not None else None
    if "winner" in obj:
        a, b, w = obj.get("model_a"), obj.get("model_b"), obj.get("winner")
        if not isinstance(a, str) or not isinstance(b, str) or a == b:
            raise DataError(f"{where}: model_a and model_b must be two different model names")
        if w not in ("model_a", "model_b", "tie"):
            raise DataError(f"{where}: winner must be 'model_a', 'model_b' or 'tie', got {w!r}")
        return Preference(prompt, a, b, w, category)
    scores = obj.get("scores")
    if not isinstance(scores, dict) or not scores:
        raise DataError(f"{where}: 'scores' must be a non-empty object {{model: score}}")
    costs = obj.get("costs")
    if costs is not None and not isinstance(costs, dict):
        raise DataError(f"{where}: 'costs' must be an object {{model: USD}}")
    return Outcome(
        prompt=prompt,
        scores={str(k): _score(v, f"{where}: scores.{k}") for k, v in scores.items()},
        id=str(obj.get("id", "")),
        costs={str(k): float(v) for k, v in costs.items()} if costs else None,
        category=category,
        messages=messages if isinstance(messages, list) else None,
    )


def read_jsonl(path: str | Path) -> Dataset:
    p = Path(path)
    ds = Dataset()
    try:
        lines = p.read_bytes().splitlines()
    except OSError as exc:
        raise DataError(f"{p}: cannot read: {exc.strerror}") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DataError(f"{p}:{i}: not valid JSON: {exc}") from None
        rec = parse_record(obj, f"{p}:{i}")
        if isinstance(rec, Outcome):
            if not rec.id:
                rec.id = f"{p.stem}-{i}"
            ds.outcomes.append(rec)
        else:
            ds.preferences.append(rec)
    return ds


def read_many(paths: Iterable[str | Path]) -> Dataset:
    ds = Dataset()
    for p in paths:
        ds.extend(read_jsonl(p))
    return ds


def write_jsonl(path: str | Path, records: Iterable[Outcome | Preference]) -> int:
    n = 0
    with open(path, "wb") as fh:
        for r in records:
            fh.write(orjson.dumps(r.to_dict()) + b"\n")
            n += 1
    return n


def data_hash(ds: Dataset) -> str:
    """A content hash recorded in artifacts, so a router says what it was trained on."""
    h = hashlib.sha256()
    for o in ds.outcomes:
        h.update(orjson.dumps([o.prompt, o.scores, o.category], option=orjson.OPT_SORT_KEYS))
    for p in ds.preferences:
        h.update(orjson.dumps(p.to_dict(), option=orjson.OPT_SORT_KEYS))
    return h.hexdigest()[:16]


def score_matrix(outcomes: Sequence[Outcome], models: Sequence[str]) -> np.ndarray:
    """(n, m) float32 scores, NaN where a model has no outcome for that prompt."""
    y = np.full((len(outcomes), len(models)), np.nan, dtype=np.float32)
    col = {m: j for j, m in enumerate(models)}
    for i, o in enumerate(outcomes):
        for m, s in o.scores.items():
            j = col.get(m)
            if j is not None:
                y[i, j] = s
    return y


def cost_matrix(outcomes: Sequence[Outcome], models: Sequence[str]) -> np.ndarray | None:
    """(n, m) USD costs, or None if any is unknown (then cost metrics are skipped)."""
    c = np.zeros((len(outcomes), len(models)), dtype=np.float64)
    for i, o in enumerate(outcomes):
        if not o.costs:
            return None
        for j, m in enumerate(models):
            if m not in o.costs:
                return None
            c[i, j] = o.costs[m]
    return c


def preferences_as_outcomes(prefs: Sequence[Preference]) -> list[Outcome]:
    """A preference as a two-model outcome: winner 1, loser 0, a tie 0.5 each.

    This lets every router (not only the pairwise ones) learn from preference data.
    """
    out = []
    for i, p in enumerate(prefs):
        sa = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5}[p.winner]
        out.append(Outcome(prompt=p.prompt, scores={p.model_a: sa, p.model_b: 1.0 - sa},
                           id=f"pref-{i}", category=p.category))
    return out
