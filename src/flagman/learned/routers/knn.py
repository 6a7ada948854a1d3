"""k nearest training prompts vote on each model's quality.

Why: questions close to each other (same passage, same kind of puzzle) tend to
be hard for the same models, which a linear model over the whole space blurs.
The vote is similarity-weighted and shrunk towards the model's mean score, so
a prompt far from everything falls back to the prior instead of to noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from flagman.learned.features import Features, Matrix
from flagman.learned.routers.base import Progress, Router, column_means, observed


def similarities(query: Matrix, base: Matrix) -> np.ndarray:
    """Cosine similarities (rows are L2-normalised), dense (q, n)."""
    s = query @ base.T
    return np.asarray(s.toarray() if sparse.issparse(s) else s, dtype=np.float32)


def pack_matrix(prefix: str, m: Matrix) -> dict[str, np.ndarray]:
    """Store a dense (float16) or CSR matrix as plain arrays."""
    if sparse.issparse(m):
        c = sparse.csr_matrix(m)
        return {f"{prefix}.data": c.data.astype(np.float16), f"{prefix}.indices": c.indices,
                f"{prefix}.indptr": c.indptr, f"{prefix}.shape": np.asarray(c.shape)}
    return {f"{prefix}.dense": np.asarray(m, dtype=np.float16)}


def unpack_matrix(prefix: str, arrays: dict[str, np.ndarray]) -> Matrix:
    if f"{prefix}.dense" in arrays:
        return np.asarray(arrays[f"{prefix}.dense"], dtype=np.float32)
    shape = tuple(int(v) for v in arrays[f"{prefix}.shape"])
    return sparse.csr_matrix((arrays[f"{prefix}.data"].astype(np.float32),
                              arrays[f"{prefix}.indices"], arrays[f"{prefix}.indptr"]),
                             shape=shape)


class KnnRouter(Router):
    kind = "knn"
    fast = False  # a similarity scan over every training prompt per query

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"k": 25, "prior_weight": 1.0, "power": 2.0}

    def fit(self, feats: Features, y: np.ndarray, progress: Progress | None = None) -> None:
        self.base = feats.emb
        self.y = np.asarray(y, dtype=np.float32)
        self.prior = column_means(y)
        if progress:
            progress(1.0)

    def predict(self, feats: Features) -> np.ndarray:
        sims = similarities(feats.emb, self.base)
        k = min(int(self.params["k"]), sims.shape[1])
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        w = np.take_along_axis(sims, top, axis=1).clip(min=0.0) ** float(self.params["power"])
        yk = self.y[top]  # (q, k, m)
        mk = observed(yk)
        wk = w[:, :, None] * mk
        num = (wk * np.where(mk, yk, 0.0)).sum(axis=1)
        den = wk.sum(axis=1)
        a = float(self.params["prior_weight"]) * w.max(axis=1, keepdims=True).clip(min=1e-6)
        return ((num + a * self.prior) / (den + a)).astype(np.float32)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = pack_matrix("knn.base", self.base)
        arrays["knn.y"] = self.y
        arrays["knn.prior"] = self.prior
        return arrays, {}

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.base = unpack_matrix("knn.base", arrays)
        self.y = np.asarray(arrays["knn.y"], dtype=np.float32)
        self.prior = np.asarray(arrays["knn.prior"], dtype=np.float32)
        if self.y.shape != (self.base.shape[0], len(self.models)):
            raise ValueError("kNN outcome table does not match its prompts or models")
