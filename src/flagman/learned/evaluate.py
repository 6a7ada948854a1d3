"""Evaluation reports of a router on outcome data (shared by `flagman eval` and the bench).

Pairs: PGR curve, APGR, CPT(50%), CPT(80%) beside random and oracle routing,
and per category.  Many models with costs: the router's operating points over a
λ sweep, every single model, the oracle, the frontier and AIQ, plus two
headline numbers against the best single model: the accuracy reached at its
cost, and the cost needed to reach its accuracy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from flagman.learned import metrics as mx
from flagman.learned.datasets import Outcome, cost_matrix, score_matrix
from flagman.learned.policy import Policy, choose, lambda_grid
from flagman.learned.routers import Router


def pair_report(scores: np.ndarray, outcomes: Sequence[Outcome], strong: str,
                weak: str) -> dict[str, Any]:
    """APGR & co. of `scores` (P(strong needed)) on outcomes that have both models."""
    keep = [i for i, o in enumerate(outcomes) if strong in o.scores and weak in o.scores]
    if not keep:
        raise ValueError(f"no outcomes have scores for both {strong!r} and {weak!r}")
    sc = np.asarray(scores)[keep]
    rows = [outcomes[i] for i in keep]
    ys = np.array([o.scores[strong] for o in rows])
    yw = np.array([o.scores[weak] for o in rows])
    curve = mx.pair_curve(sc, ys, yw)
    oracle = mx.pair_curve(mx.oracle_pair_scores(ys, yw), ys, yw)
    rnd = mx.pair_curve(np.zeros(len(ys)), ys, yw)
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, o in enumerate(rows):
        by_cat[o.category or "-"].append(i)
    cats = {}
    for c, idx in sorted(by_cat.items()):
        sub = mx.pair_curve(sc[idx], ys[idx], yw[idx])
        cats[c] = {"n": len(idx), "apgr": sub.apgr, "q_strong": sub.q_strong,
                   "q_weak": sub.q_weak}
    grid = np.linspace(0, 1, 21)
    return {
        "mode": "pair", "strong": strong, "weak": weak, "n": len(rows),
        **mx.pair_summary(curve),
        "random": mx.pair_summary(rnd), "oracle": mx.pair_summary(oracle),
        "curve": {"share": grid.tolist(), "pgr": [curve.at(x) for x in grid],
                  "oracle": [oracle.at(x) for x in grid]},
        "categories": cats,
    }


def many_report(pred: np.ndarray, outcomes: Sequence[Outcome],
                models: Sequence[str]) -> dict[str, Any]:
    """Cost–quality frontier of a many-model router (needs costs in the outcomes)."""
    y = score_matrix(outcomes, models)
    c = cost_matrix(outcomes, models)
    if c is None:
        raise ValueError("many-model evaluation needs 'costs' for every model in every row")
    y0 = np.nan_to_num(y)
    singles = mx.single_model_points(models, y0, c)
    router_pts = [mx.choice_point(f"lambda={lam:.4g}", choose(pred, c, Policy(lam=lam)), y0, c)
                  for lam in lambda_grid()]
    oracle = mx.oracle_point(y0, c)
    best = max(singles, key=lambda p: (p.quality, -p.cost))
    c_lo, c_hi = min(p.cost for p in singles), max(p.cost for p in singles)
    acc_at = mx.best_quality_at(router_pts, best.cost)
    cost_for = mx.cheapest_cost_for(router_pts, best.quality)
    return {
        "mode": "many", "n": len(outcomes), "models": list(models),
        "aiq": mx.aiq(router_pts, c_lo, c_hi),
        "accuracy": acc_at, "cost": cost_for,
        "cost_share": cost_for / best.cost if best.cost > 0 else float("nan"),
        "best_single": {"name": best.name, "accuracy": best.quality, "cost": best.cost},
        "singles": [{"name": p.name, "accuracy": p.quality, "cost": p.cost,
                     "aiq": mx.aiq([p], c_lo, c_hi)} for p in singles],
        "oracle": {"accuracy": oracle.quality, "cost": oracle.cost,
                   "aiq": mx.aiq([oracle], c_lo, c_hi)},
        "points": [{"name": p.name, "accuracy": p.quality, "cost": p.cost}
                   for p in router_pts],
        "frontier": mx.frontier(router_pts),
    }


def evaluate(router: Router, outcomes: Sequence[Outcome], *, strong: str | None = None,
             weak: str | None = None, many: bool | None = None) -> dict[str, Any]:
    """Pair report if a pair is asked for or the data has no costs, else the many-model one.

    Many-model evaluation uses the router's models that every row scores (a
    router trained on several data sets knows more models than one test set).
    """
    feats = router.featurize([o.prompt for o in outcomes])
    in_data = [m for m in router.models if all(m in o.scores for o in outcomes)]
    if many is None:
        many = (strong is None and len(in_data) > 2
                and cost_matrix(outcomes, in_data) is not None)
    if many:
        cols = [router.index(m) for m in in_data]
        return many_report(router.predict(feats)[:, cols], outcomes, in_data)
    ds, dw = router.default_pair()
    s, w = strong or ds, weak or dw
    scores = router.pair_scores(feats, router.index(s), router.index(w))
    return pair_report(scores, outcomes, s, w)


def plot_report(report: dict[str, Any], path: str) -> None:
    """A PNG of the PGR curve (pairs) or the cost–quality plane (many models)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    if report["mode"] == "pair":
        cv = report["curve"]
        ax.plot(cv["share"], cv["pgr"], label=f"router (APGR {report['apgr']:.3f})")
        ax.plot(cv["share"], cv["oracle"], ":", label="oracle")
        ax.plot([0, 1], [0, 1], "--", label="random (0.5)")
        ax.set_xlabel("share of prompts sent to the strong model")
        ax.set_ylabel("PGR")
        ax.set_title(f"{report['strong']} vs {report['weak']}")
    else:
        pts = report["points"]
        ax.scatter([p["cost"] for p in pts], [p["accuracy"] for p in pts], s=8,
                   label=f"router (AIQ {report['aiq']:.3f})")
        fx = report["frontier"]
        ax.plot([f[0] for f in fx], [f[1] for f in fx], "-")
        for s in report["singles"]:
            ax.scatter([s["cost"]], [s["accuracy"]], marker="x")
            ax.annotate(s["name"], (s["cost"], s["accuracy"]), fontsize=6)
        o = report["oracle"]
        ax.scatter([o["cost"]], [o["accuracy"]], marker="*", s=80, label="oracle")
        ax.set_xlabel("mean cost per query (USD)")
        ax.set_ylabel("accuracy")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
