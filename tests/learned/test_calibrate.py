from __future__ import annotations

import numpy as np
import pytest

from flagman.learned.calibrate import (
    parse_router_model_name,
    strong_share,
    threshold_for_share,
)
from flagman.learned.policy import Policy, choose


@pytest.mark.parametrize("share", [0.0, 0.1, 0.3, 0.5, 0.77, 1.0])
def test_threshold_hits_requested_share(share: float) -> None:
    scores = np.random.default_rng(0).random(1000)
    t = threshold_for_share(scores, share)
    assert strong_share(scores, t) == pytest.approx(share, abs=1e-3)


def test_threshold_with_ties_goes_to_nearest_reachable_share() -> None:
    scores = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    t = threshold_for_share(scores, 0.4)
    assert t == 0.5 and strong_share(scores, t) == 0.8
    with pytest.raises(ValueError):
        threshold_for_share(scores, 1.5)


def test_parse_router_model_name() -> None:
    assert parse_router_model_name("router-mf-0.116") == ("mf", 0.116)
    assert parse_router_model_name("router-sw_ranking-0.5") == ("sw_ranking", 0.5)
    assert parse_router_model_name("router-knn-1") == ("knn", 1.0)
    assert parse_router_model_name("router-mf-.3") == ("mf", 0.3)
    for bad in ("gpt-4o", "router-mf", "router-mf-1.5", "router-mf-abc", "router--0.1"):
        assert parse_router_model_name(bad) is None


def test_policies() -> None:
    pred = np.array([[0.9, 0.85, 0.2], [0.9, 0.3, 0.2]])
    costs = np.array([10.0, 1.0, 0.1])
    assert choose(pred, costs, Policy(lam=0.0)).tolist() == [0, 0]
    assert choose(pred, costs, Policy(lam=0.2)).tolist() == [1, 0]
    assert choose(pred, costs, Policy(lam=100)).tolist() == [2, 2]
    assert choose(pred, costs, Policy(target=0.8)).tolist() == [1, 0]
    assert choose(pred, costs, Policy(target=0.95)).tolist() == [0, 0]  # none reach: best
    assert Policy.parse({"lambda": 0.5}).lam == 0.5
    with pytest.raises(ValueError):
        Policy.parse({"lambda": 1, "target": 0.5})
    with pytest.raises(ValueError):
        Policy(target=2.0)
