"""One logistic regression per model on [text embedding, prompt statistics].

Why per model and not one "strong wins" label: with outcome data every model's
correctness is known, and P(strong right) - P(weak right) uses both columns,
which ranks prompts better than the win label alone (both-right and
both-wrong prompts stop looking alike).  Fractional scores are fitted as
weighted positive/negative copies of a row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from flagman.learned.features import Features, Matrix
from flagman.learned.routers.base import Progress, Router, column_means, observed


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def _soft_fit(x: Matrix, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """Logistic regression on labels in [0, 1] via weighted duplicate rows."""
    hard = np.isin(y, (0.0, 1.0))
    if hard.all():
        xs: Matrix = x
        ys, ws = y.astype(int), np.ones(len(y))
    else:
        xs = sparse.vstack([x, x]) if sparse.issparse(x) else np.vstack([x, x])
        ys = np.concatenate([np.ones(len(y), int), np.zeros(len(y), int)])
        ws = np.concatenate([y, 1.0 - y])
    if len(np.unique(ys[ws > 0])) < 2:  # always right or always wrong: a constant
        p = float(np.clip(np.average(ys, weights=ws), 1e-3, 1 - 1e-3))
        return np.zeros(x.shape[1], dtype=np.float32), float(np.log(p / (1 - p)))
    lr = LogisticRegression(C=c, max_iter=3000)
    lr.fit(xs, ys, sample_weight=ws)
    return lr.coef_[0].astype(np.float32), float(lr.intercept_[0])


class ClassifierRouter(Router):
    """Per model: a global logistic regression plus one expert per coarse category.

    Why experts: on mixed data (multiple-choice MMLU + GSM8K word problems) one
    linear model per LLM averages what difficulty looks like in each domain.
    The featurizer's category classifier routes each prompt softly to the
    experts (pred = Σ_g P(g|x)·σ(expert_g(x))); a model without an expert for
    a category falls back to its global model there.
    """

    kind = "classifier"

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {"C": 1.0, "experts": True, "min_expert_rows": 100}

    def _plan(self, y: np.ndarray, assign: np.ndarray | None) -> list[tuple[int, int, np.ndarray]]:
        """(model, group or -1 for global, training rows) of every model to fit."""
        mask = observed(y)
        n_groups = len(self.featurizer.groups) if assign is not None else 0
        plan: list[tuple[int, int, np.ndarray]] = []
        for j in range(len(self.models)):
            rows = np.nonzero(mask[:, j])[0]
            experts = []
            for g in range(n_groups if self.params["experts"] else 0):
                sub = rows[assign[rows] == g] if assign is not None else rows[:0]
                if len(sub) >= int(self.params["min_expert_rows"]) and len(
                        np.unique(y[sub, j])) > 1:
                    experts.append((j, g, sub))
            if len(experts) < n_groups or n_groups == 0:
                plan.append((j, -1, rows))
            plan += experts
        return plan

    def fit(self, feats: Features, y: np.ndarray, progress: Progress | None = None) -> None:
        x = feats.joined()
        probs = self.featurizer.group_probs(feats.emb)
        assign = probs.argmax(axis=1) if probs.shape[1] else None
        plan = self._plan(y, assign)
        prior = column_means(y)
        coef = np.zeros((len(plan), x.shape[1]), dtype=np.float32)
        bias = np.zeros(len(plan), dtype=np.float32)
        for k, (j, _, rows) in enumerate(plan):
            if len(rows) == 0:
                p = float(np.clip(prior[j], 1e-3, 1 - 1e-3))
                bias[k] = np.log(p / (1 - p))
            else:
                coef[k], bias[k] = _soft_fit(x[rows], y[rows, j], float(self.params["C"]))
            if progress:
                progress((k + 1) / len(plan))
        self.coef, self.bias = coef, bias
        self.expert_model = np.array([j for j, _, _ in plan], dtype=np.int32)
        self.expert_group = np.array([g for _, g, _ in plan], dtype=np.int32)

    def predict(self, feats: Features) -> np.ndarray:
        x = feats.joined()
        z = np.asarray(x @ self.coef.T) + self.bias  # (n, experts)
        p = _sigmoid(z)
        probs = self.featurizer.group_probs(feats.emb)
        out = np.zeros((z.shape[0], len(self.models)), dtype=np.float64)
        for j in range(len(self.models)):
            mine = np.nonzero(self.expert_model == j)[0]
            by_group = {int(self.expert_group[k]): k for k in mine}
            glob = by_group.get(-1)
            if probs.shape[1] == 0:
                out[:, j] = p[:, glob if glob is not None else mine[0]]
                continue
            for g in range(probs.shape[1]):
                k = by_group.get(g, glob)
                out[:, j] += probs[:, g] * p[:, k if k is not None else mine[0]]
        return out.astype(np.float32)

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"clf.coef": self.coef.astype(np.float16), "clf.bias": self.bias,
                "clf.expert_model": self.expert_model,
                "clf.expert_group": self.expert_group}, {}

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.coef = np.asarray(arrays["clf.coef"], dtype=np.float32)
        self.bias = np.asarray(arrays["clf.bias"], dtype=np.float32)
        self.expert_model = np.asarray(arrays["clf.expert_model"], dtype=np.int32)
        self.expert_group = np.asarray(arrays["clf.expert_group"], dtype=np.int32)
        k = len(self.bias)
        if self.coef.shape[0] != k or self.expert_model.shape != (k,) or \
                self.expert_group.shape != (k,):
            raise ValueError("classifier weights do not match their expert table")
        if set(self.expert_model.tolist()) != set(range(len(self.models))):
            raise ValueError("classifier weights do not match the number of models")
        if self.expert_group.max(initial=-1) >= max(len(self.featurizer.groups), 0):
            raise ValueError("classifier experts refer to unknown categories")
