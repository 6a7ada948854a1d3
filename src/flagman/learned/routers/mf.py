"""Matrix factorisation (RouteLLM's MF router): models and prompts in one latent space.

Each model has a learned vector v_m; a prompt's features x are projected by a
learned matrix P into the same k-dimensional space, and the model's logit is
v_m · (P x) + b_m.  Models that do well on similar prompts end up with
similar vectors, so the factorisation shares strength across models (useful
with many models and little data each).  Trained with Adam on the logistic loss
of every known outcome; the pair score is σ(logit_strong - logit_weak), the
probability that the strong model does better.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from flagman.learned.features import Features, Matrix
from flagman.learned.routers.base import Progress, Router, column_means, observed


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


class _Adam:
    """Adam over a dict of arrays (numpy: no torch start-up cost for a small model)."""

    def __init__(self, params: dict[str, np.ndarray], lr: float) -> None:
        self.lr, self.t = lr, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.t += 1
        b1, b2 = 0.9, 0.999
        for k, g in grads.items():
            self.m[k] = b1 * self.m[k] + (1 - b1) * g
            self.v[k] = b2 * self.v[k] + (1 - b2) * g * g
            mh = self.m[k] / (1 - b1**self.t)
            vh = self.v[k] / (1 - b2**self.t)
            params[k] -= self.lr * mh / (np.sqrt(vh) + 1e-8)


class MfRouter(Router):
    kind = "mf"

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"dim": 32, "epochs": 20, "batch": 256, "lr": 3e-3, "l2": 1e-4, "seed": 0}

    def _logits(self, x: Matrix) -> tuple[np.ndarray, np.ndarray]:
        z = np.asarray(x @ self.w["proj"])  # (n, k)
        return z @ self.w["models"].T + self.w["bias"], z

    def fit(self, feats: Features, y: np.ndarray, progress: Progress | None = None) -> None:
        p = self.params
        x = feats.joined()
        x = sparse.csr_matrix(x) if sparse.issparse(x) else np.asarray(x, dtype=np.float32)
        rng = np.random.default_rng(int(p["seed"]))
        k, m, d = int(p["dim"]), len(self.models), x.shape[1]
        prior = np.clip(column_means(y), 1e-3, 1 - 1e-3)
        self.w = {"proj": (rng.standard_normal((d, k)) * 0.01).astype(np.float32),
                  "models": (rng.standard_normal((m, k)) * 0.1).astype(np.float32),
                  "bias": np.log(prior / (1 - prior)).astype(np.float32)}
        mask = observed(y)
        target = np.where(mask, y, 0.0).astype(np.float32)
        opt = _Adam(self.w, float(p["lr"]))
        epochs, batch, l2 = int(p["epochs"]), int(p["batch"]), float(p["l2"])
        for e in range(epochs):
            order = rng.permutation(x.shape[0])
            for s in range(0, len(order), batch):
                rows = order[s:s + batch]
                opt.step(self.w, self._grads(x[rows], target[rows], mask[rows], l2))
            if progress:
                progress((e + 1) / epochs)

    def _grads(self, xb: Matrix, yb: np.ndarray, mb: np.ndarray,
               l2: float) -> dict[str, np.ndarray]:
        logits, z = self._logits(xb)
        g = (_sigmoid(logits) - yb) * mb / max(int(mb.sum()), 1)  # dL/dlogit, (b, m)
        gz = g @ self.w["models"]  # (b, k)
        gproj = xb.T @ gz
        return {"proj": np.asarray(gproj, dtype=np.float32) + l2 * self.w["proj"],
                "models": (g.T @ z).astype(np.float32) + l2 * self.w["models"],
                "bias": g.sum(axis=0).astype(np.float32)}

    def predict(self, feats: Features) -> np.ndarray:
        return _sigmoid(self._logits(feats.joined())[0]).astype(np.float32)

    def pair_scores(self, feats: Features, strong: int, weak: int) -> np.ndarray:
        logits = self._logits(feats.joined())[0]
        return _sigmoid(logits[:, strong] - logits[:, weak]).astype(np.float32)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {f"mf.{k}": v for k, v in self.w.items()}, {}

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.w = {k: np.asarray(arrays[f"mf.{k}"], dtype=np.float32)
                  for k in ("proj", "models", "bias")}
        m = len(self.models)
        if self.w["models"].shape[0] != m or self.w["bias"].shape != (m,):
            raise ValueError("MF weights do not match the number of models")
        if self.w["proj"].shape[1] != self.w["models"].shape[1]:
            raise ValueError("MF projection and model vectors differ in dimension")
