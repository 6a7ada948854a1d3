"""Many-model choice from predicted quality: the trade-off lives here, not in the router.

* `lambda`: maximise predicted quality - λ · cost / (cost of the dearest model),
  so λ is unitless: λ = 1 gives up at most one unit of quality to go from the
  dearest model to a free one.
* `target`: the cheapest model whose predicted quality reaches the target; if
  none does, the model with the best predicted quality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Policy:
    lam: float | None = None
    target: float | None = None

    def __post_init__(self) -> None:
        if (self.lam is None) == (self.target is None):
            raise ValueError("a policy is either {lambda: x} or {target: q}")
        if self.lam is not None and self.lam < 0:
            raise ValueError("lambda must be >= 0")
        if self.target is not None and not 0.0 <= self.target <= 1.0:
            raise ValueError("target must be in [0, 1]")

    @classmethod
    def parse(cls, spec: object) -> Policy:
        if not isinstance(spec, dict) or len(spec) != 1:
            raise ValueError("policy must be {lambda: x} or {target: q}")
        (key, val), = spec.items()
        if key in ("lambda", "lam"):
            return cls(lam=float(val))
        if key == "target":
            return cls(target=float(val))
        raise ValueError(f"unknown policy {key!r} (lambda or target)")

    def describe(self) -> dict[str, float]:
        return {"lambda": float(self.lam)} if self.lam is not None else {
            "target": float(self.target or 0.0)}


def choose(pred: np.ndarray, costs: np.ndarray, policy: Policy) -> np.ndarray:
    """Index of the chosen model per row; `costs` is (m,) or (n, m) USD."""
    pred = np.asarray(pred, dtype=np.float64)
    c = np.broadcast_to(np.asarray(costs, dtype=np.float64), pred.shape)
    if policy.lam is not None:
        scale = np.maximum(c.max(axis=1, keepdims=True), 1e-12)
        return np.asarray(np.argmax(pred - policy.lam * c / scale, axis=1))
    ok = pred >= float(policy.target or 0.0)
    cheapest_ok = np.argmin(np.where(ok, c, np.inf), axis=1)
    best = np.argmax(pred, axis=1)
    return np.asarray(np.where(ok.any(axis=1), cheapest_ok, best))


def lambda_grid(n: int = 61) -> list[float]:
    """λ values that sweep from 'always the best' to 'always the cheapest'."""
    return [0.0, *np.geomspace(1e-3, 10.0, n - 1).tolist()]
