"""Metrics against curves computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from flagman.learned import metrics as mx


def test_pgr_curve_by_hand() -> None:
    strong = np.array([1, 1, 0, 1])
    weak = np.array([0, 1, 0, 0])
    scores = np.array([0.9, 0.1, 0.5, 0.3])
    c = mx.pair_curve(scores, strong, weak)
    # order 0, 2, 3, 1 → gains 1, 0, 1, 0 → PGR 0, .5, .5, 1, 1
    assert c.pgr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert c.apgr == pytest.approx(0.625)
    assert c.cpt(0.5) == 0.25
    assert c.cpt(0.8) == 0.75
    assert c.q_strong == 0.75 and c.q_weak == 0.25


def test_ties_are_a_random_order_and_constant_router_is_half() -> None:
    strong = np.array([1, 1, 0, 1, 0, 1])
    weak = np.array([0, 1, 0, 0, 0, 0])
    c = mx.pair_curve(np.zeros(6), strong, weak)
    assert c.apgr == pytest.approx(0.5)
    assert np.allclose(c.pgr, np.linspace(0, 1, 7))
    # a partial tie: the two tied prompts share their gain
    c2 = mx.pair_curve(np.array([1.0, 0.5, 0.5]), np.array([1, 1, 0]), np.array([0, 0, 0]))
    assert np.allclose(c2.pgr, [0, 0.5, 0.75, 1.0])


def test_oracle_beats_reverse_order() -> None:
    strong = np.array([1, 0, 1, 1, 0])
    weak = np.array([0, 1, 1, 0, 0])
    o = mx.pair_curve(mx.oracle_pair_scores(strong, weak), strong, weak)
    r = mx.pair_curve(-mx.oracle_pair_scores(strong, weak), strong, weak)
    assert o.apgr > 0.5 > r.apgr
    # oracle: gains sorted 1, 1, 0, 0, -1 → total 1
    assert o.pgr.tolist() == [0, 1, 2, 2, 2, 1]


def test_frontier_and_aiq_by_hand() -> None:
    pts = [mx.Point("a", 1, 0.5), mx.Point("b", 2, 0.6), mx.Point("c", 3, 0.9),
           mx.Point("d", 4, 0.8)]
    assert mx.frontier(pts) == [(1, 0.5), (3, 0.9)]
    # ∫1..3 of the line 0.5→0.9 is 1.4, ∫3..4 of 0.9 is 0.9; mean over [1, 4]
    assert mx.aiq(pts, 1, 4) == pytest.approx(2.3 / 3, abs=1e-4)
    # a single point at cost 2 quality 0.6: zero below its cost
    assert mx.aiq([mx.Point("s", 2, 0.6)], 1, 4) == pytest.approx(0.6 * 2 / 3, abs=1e-3)
    assert mx.best_quality_at(pts, 2.5) == 0.6
    assert mx.cheapest_cost_for(pts, 0.85) == 3


def test_oracle_point_prefers_cheapest_right_model() -> None:
    y = np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    c = np.array([[2.0, 1.0], [2.0, 1.0], [2.0, 1.0]])
    p = mx.oracle_point(y, c)
    assert p.quality == pytest.approx(2 / 3)
    assert p.cost == pytest.approx(1.0)


def test_equal_quality_pair_has_undefined_pgr() -> None:
    c = mx.pair_curve(np.array([0.2, 0.1]), np.array([1, 0]), np.array([0, 1]))
    assert np.isnan(c.apgr)
