"""Threshold fitting and evaluation for semantic routing, on labelled queries.

A labelled query is ``(text, route)`` with ``route=None`` for out of scope.

Why thresholds can be fitted exactly: a query's outcome only depends on the
threshold of the route that scored best for it (accepted → right iff that is
its route; rejected → right iff it is out of scope).  So the validation
accuracy splits into one independent term per route, and each route's best
threshold is found by one sweep over its sorted candidate scores — no random
search, the same answer every run.  Routes with too few validation queries
take a single global threshold fitted the same way over all queries, so a
route seen twice does not get a threshold tailored to two points.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from flagman.routing.semantic_core import Prediction

OOS = "<out_of_scope>"


def sweep_threshold(scores: np.ndarray, accept_ok: np.ndarray, reject_ok: np.ndarray) -> float:
    """Threshold maximising #(score ≥ t and accept_ok) + #(score < t and reject_ok).

    Candidates are midpoints between consecutive distinct scores plus both
    ends; among equal optima the one in the widest gap wins (largest margin).
    """
    if len(scores) == 0:
        raise ValueError("no scores to sweep")
    order = np.argsort(scores, kind="stable")
    s = scores[order].astype(np.float64)
    acc, rej = accept_ok[order].astype(np.int64), reject_ok[order].astype(np.int64)
    # cut i: the first i queries (lowest scores) rejected, the rest accepted
    gain = np.concatenate([[0], np.cumsum(rej)]) + np.concatenate(
        [np.cumsum(acc[::-1])[::-1], [0]]
    )
    lo = np.concatenate([[s[0] - 1.0], s])  # score just below the cut
    hi = np.concatenate([s, [s[-1] + 1.0]])  # score just above the cut
    valid = np.concatenate([[True], s[1:] > s[:-1], [True]])  # never split ties
    gain = np.where(valid, gain, -1)
    gap = hi - lo
    gap[0] = gap[-1] = 0.0  # the ends have no real gap: only chosen when strictly best
    best = np.flatnonzero(gain == gain.max())
    pick = best[np.argmax(gap[best])]
    if pick == 0:
        return float(s[0] - 1e-6)  # accept everything seen
    if pick == len(s):
        return float(s[-1] + 1e-6)  # reject everything seen
    return float((lo[pick] + hi[pick]) / 2)


def fit_thresholds(
    routes: list[str],
    preds: list[Prediction],
    gold: list[str | None],
    *,
    min_support: int = 5,
) -> tuple[np.ndarray, float]:
    """Per-route thresholds (and the global one) maximising validation accuracy."""
    if len(preds) != len(gold):
        raise ValueError("predictions and labels differ in length")
    best = np.array([routes.index(p.best) for p in preds], dtype=np.int64)
    score = np.array([p.score for p in preds], dtype=np.float64)
    y = np.array([-1 if g is None else routes.index(g) if g in routes else -2 for g in gold])
    accept_ok = best == y
    reject_ok = y == -1
    global_t = sweep_threshold(score, accept_ok, reject_ok)
    out = np.full(len(routes), global_t, dtype=np.float32)
    for r in range(len(routes)):
        mine = best == r
        if mine.sum() >= min_support and reject_ok[mine].any():
            out[r] = sweep_threshold(score[mine], accept_ok[mine], reject_ok[mine])
        elif mine.sum() >= min_support:
            # no out-of-scope query landed here: accept all seen, never above global
            out[r] = min(global_t, float(score[mine].min()) - 1e-6)
    return out, global_t


def evaluate(preds: list[str | None], gold: list[str | None], *, top: int = 10) -> dict[str, Any]:
    """Accuracy over all queries, in-scope accuracy, OOS recall, per-route P/R, confusions."""
    if len(preds) != len(gold):
        raise ValueError("predictions and labels differ in length")
    n = len(gold)
    right = [p == g for p, g in zip(preds, gold, strict=True)]
    in_scope = [i for i, g in enumerate(gold) if g is not None]
    oos = [i for i, g in enumerate(gold) if g is None]
    pred_oos = [i for i, p in enumerate(preds) if p is None]
    routes = sorted({g for g in gold if g is not None} | {p for p in preds if p is not None})
    per_route = {}
    for r in routes:
        tp = sum(1 for p, g in zip(preds, gold, strict=True) if p == r and g == r)
        n_pred = sum(1 for p in preds if p == r)
        n_gold = sum(1 for g in gold if g == r)
        per_route[r] = {
            "precision": tp / n_pred if n_pred else 0.0,
            "recall": tp / n_gold if n_gold else 0.0,
            "support": n_gold,
        }
    confusions = Counter(
        (g or OOS, p or OOS) for p, g in zip(preds, gold, strict=True) if p != g
    )

    def ratio(idx: list[int]) -> float | None:
        return sum(right[i] for i in idx) / len(idx) if idx else None

    return {
        "n": n,
        "accuracy": sum(right) / n if n else 0.0,
        "in_scope_accuracy": ratio(in_scope),
        "oos_recall": ratio(oos),
        "oos_precision": (sum(gold[i] is None for i in pred_oos) / len(pred_oos)
                          if pred_oos else None),
        "n_in_scope": len(in_scope),
        "n_out_of_scope": len(oos),
        "per_route": per_route,
        "confusions": [
            {"true": t, "predicted": p, "count": c} for (t, p), c in confusions.most_common(top)
        ],
    }
