"""Routing-quality metrics (RouteLLM for pairs, RouterBench for many models).

Pairs.  Sending the share k of prompts with the highest router scores to the
strong model gives quality q(k).  PGR(k) = (q(k) - q_weak) / (q_strong - q_weak),
APGR = the integral of PGR over k in [0, 1] (trapezoids over every prompt count),
CPT(x) = the smallest k with PGR(k) >= x.  Prompts with equal scores are one
block whose gain is spread evenly (the expectation under a random tie break),
so a constant router gets exactly 0.5.

Many models.  Each operating point is (mean USD per query, mean quality).  The
frontier is the upper convex hull made non-decreasing (a mixture of two
operating points is reachable by routing at random between them; spending more
never has to lower quality).  AIQ is the mean of that hull over a cost range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class PairCurve:
    """PGR as a function of the share of prompts sent to the strong model."""

    share: np.ndarray  # (n+1,) 0 .. 1
    pgr: np.ndarray  # (n+1,)
    q_strong: float
    q_weak: float

    @property
    def apgr(self) -> float:
        return float(np.trapezoid(self.pgr, self.share))

    def cpt(self, x: float) -> float:
        """Smallest share of strong calls whose PGR reaches x (1.0 if never)."""
        hit = np.nonzero(self.pgr >= x - 1e-12)[0]
        return float(self.share[hit[0]]) if len(hit) else 1.0

    def at(self, share: float) -> float:
        return float(np.interp(share, self.share, self.pgr))


def pair_curve(scores: np.ndarray, strong: np.ndarray, weak: np.ndarray) -> PairCurve:
    """PGR curve of router `scores` given per-prompt strong/weak quality."""
    s = np.asarray(scores, dtype=np.float64)
    ys = np.asarray(strong, dtype=np.float64)
    yw = np.asarray(weak, dtype=np.float64)
    n = len(s)
    if n == 0:
        raise ValueError("no prompts to evaluate")
    order = np.argsort(-s, kind="stable")
    gain = (ys - yw)[order]
    cum = np.concatenate([[0.0], np.cumsum(gain)])
    # tie blocks: replace the cumulative gain inside a block by a straight line
    ss = s[order]
    starts = np.concatenate([[0], np.nonzero(np.diff(ss) != 0)[0] + 1, [n]])
    k = np.arange(n + 1)
    exp_cum = np.interp(k, starts, cum[starts])
    total = cum[-1]
    q_s, q_w = float(ys.mean()), float(yw.mean())
    # equal strong and weak quality: no gap to recover, PGR is undefined (NaN)
    pgr = exp_cum / total if abs(total) > 1e-12 else np.full(n + 1, np.nan)
    return PairCurve(share=k / n, pgr=pgr, q_strong=q_s, q_weak=q_w)


def pair_summary(curve: PairCurve) -> dict[str, float]:
    return {"apgr": curve.apgr, "cpt50": curve.cpt(0.5), "cpt80": curve.cpt(0.8),
            "q_strong": curve.q_strong, "q_weak": curve.q_weak}


def oracle_pair_scores(strong: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """Scores that sort prompts by their true gain: the best any router can do."""
    return np.asarray(strong, dtype=np.float64) - np.asarray(weak, dtype=np.float64)


@dataclass
class Point:
    name: str
    cost: float  # mean USD per query
    quality: float  # mean score


def single_model_points(models: Sequence[str], y: np.ndarray, c: np.ndarray) -> list[Point]:
    return [Point(m, float(c[:, j].mean()), float(np.nanmean(y[:, j])))
            for j, m in enumerate(models)]


def oracle_point(y: np.ndarray, c: np.ndarray) -> Point:
    """Per query the cheapest model among those with the best score."""
    best = np.nanmax(y, axis=1, keepdims=True)
    cand = np.where(y >= best - 1e-12, c, np.inf)
    j = np.argmin(cand, axis=1)
    rows = np.arange(len(y))
    return Point("oracle", float(c[rows, j].mean()), float(y[rows, j].mean()))


def choice_point(name: str, choice: np.ndarray, y: np.ndarray, c: np.ndarray) -> Point:
    rows = np.arange(len(y))
    return Point(name, float(c[rows, choice].mean()), float(np.nan_to_num(y[rows, choice]).mean()))


def frontier(points: Sequence[Point]) -> list[tuple[float, float]]:
    """Upper convex hull of (cost, quality), non-decreasing, sorted by cost."""
    pts = sorted({(p.cost, p.quality) for p in points})
    hull: list[tuple[float, float]] = []
    for p in pts:
        # keep only the running best quality: a costlier, worse point is never chosen
        if hull and p[1] <= hull[-1][1]:
            continue
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:
                hull.pop()  # the middle point lies under the chord
            else:
                break
        hull.append(p)
    return hull


def hull_value(hull: Sequence[tuple[float, float]], cost: float) -> float:
    """Best quality reachable at mean cost `cost` (0 below the cheapest point)."""
    if not hull or cost < hull[0][0]:
        return 0.0
    xs = [h[0] for h in hull]
    ys = [h[1] for h in hull]
    return float(np.interp(cost, xs, ys))


def aiq(points: Sequence[Point], c_lo: float, c_hi: float, steps: int = 2001) -> float:
    """Mean of the frontier over [c_lo, c_hi] (RouterBench's AIQ, normalised by range)."""
    hull = frontier(points)
    grid = np.linspace(c_lo, c_hi, steps)
    vals = np.array([hull_value(hull, float(x)) for x in grid])
    return float(np.trapezoid(vals, grid) / (c_hi - c_lo)) if c_hi > c_lo else float(vals[-1])


def best_quality_at(points: Sequence[Point], budget: float) -> float:
    """Best quality of an actual operating point costing at most `budget`."""
    ok = [p.quality for p in points if p.cost <= budget * (1 + 1e-9)]
    return max(ok) if ok else float("nan")


def cheapest_cost_for(points: Sequence[Point], quality: float) -> float:
    """Lowest cost of an actual operating point reaching `quality` (inf if none)."""
    ok = [p.cost for p in points if p.quality >= quality - 1e-12]
    return min(ok) if ok else float("inf")
