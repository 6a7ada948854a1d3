"""Similarity-weighted ranking: a Bradley–Terry fit per query (RouteLLM's SW ranking).

Each training prompt is a set of pairwise "battles" between models (a model
with a higher score wins; equal scores are half a win each).  For a new
prompt every battle is weighted by exp(β·(similarity - best similarity)), the
weighted win counts are summed into one m×m table and Bradley–Terry strengths
are fitted on it with Hunter's MM iterations.  Because the fit is per query,
the ranking of models can change with the topic and the difficulty.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flagman.learned.features import Features
from flagman.learned.routers.base import Progress, Router
from flagman.learned.routers.knn import pack_matrix, similarities, unpack_matrix


def win_tables(y: np.ndarray) -> np.ndarray:
    """(n, m, m) share of a win of model a over b on each prompt (0 where unknown)."""
    ya, yb = y[:, :, None], y[:, None, :]
    wins = 0.5 + 0.5 * (ya - yb)
    known = ~(np.isnan(ya) | np.isnan(yb))
    m = y.shape[1]
    wins = np.where(known, wins, 0.0) * (1.0 - np.eye(m))[None]
    return np.nan_to_num(wins).astype(np.float32)


def bradley_terry(wins: np.ndarray, iters: int = 60) -> np.ndarray:
    """Strengths π (q, m) summing to 1 for win tables (q, m, m), by MM iterations."""
    q, m, _ = wins.shape
    games = wins + wins.transpose(0, 2, 1)
    won = wins.sum(axis=2)
    pi = np.full((q, m), 1.0 / m)
    for _ in range(iters):
        denom = (games / (pi[:, :, None] + pi[:, None, :])).sum(axis=2)
        pi = won / np.maximum(denom, 1e-12)
        pi = pi / pi.sum(axis=1, keepdims=True)
    return pi


class SwRankingRouter(Router):
    kind = "sw_ranking"
    fast = False  # a similarity scan over every training prompt per query

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        # beta: sharpness of the similarity weighting; prior: global battles mixed in
        return {"beta": 20.0, "prior": 0.05, "top": 512}

    def fit(self, feats: Features, y: np.ndarray, progress: Progress | None = None) -> None:
        self.base = feats.emb
        self.wins = win_tables(np.asarray(y, dtype=np.float32)).reshape(len(y), -1)
        self._set_global()
        if progress:
            progress(1.0)

    def strengths(self, feats: Features) -> np.ndarray:
        m = len(self.models)
        sims = similarities(feats.emb, self.base)
        top = min(int(self.params["top"]), sims.shape[1])
        idx = np.argpartition(-sims, top - 1, axis=1)[:, :top]
        s = np.take_along_axis(sims, idx, axis=1)
        w = np.exp(float(self.params["beta"]) * (s - s.max(axis=1, keepdims=True)))
        tables = np.einsum("qk,qkd->qd", w, self.wins[idx]).reshape(-1, m, m)
        # a share of the global tables keeps the fit defined and pulls it to the average
        tables += float(self.params["prior"]) * w.sum(axis=1)[:, None, None] * self.global_wins
        tables += 1e-3 * (1.0 - np.eye(m))
        return bradley_terry(tables)

    def predict(self, feats: Features) -> np.ndarray:
        """Win rate against the other models (BT strengths on a [0, 1] scale)."""
        pi = self.strengths(feats)
        p = pi[:, :, None] / (pi[:, :, None] + pi[:, None, :])
        m = pi.shape[1]
        return ((p.sum(axis=2) - 0.5) / (m - 1)).astype(np.float32)

    def pair_scores(self, feats: Features, strong: int, weak: int) -> np.ndarray:
        pi = self.strengths(feats)
        return (pi[:, strong] / (pi[:, strong] + pi[:, weak])).astype(np.float32)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = pack_matrix("sw.base", self.base)
        arrays["sw.wins"] = self.wins.astype(np.float16)
        return arrays, {}

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.base = unpack_matrix("sw.base", arrays)
        self.wins = np.asarray(arrays["sw.wins"], dtype=np.float32)
        m = len(self.models)
        if self.wins.shape != (self.base.shape[0], m * m):
            raise ValueError("SW-ranking battle table does not match its prompts or models")
        self._set_global()

    def _set_global(self) -> None:
        # the mean over every battle does not depend on the query: once per fit or load
        m = len(self.models)
        self.global_wins = self.wins.mean(axis=0).reshape(m, m)
