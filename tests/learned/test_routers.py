"""Every router learns the synthetic task (solver on maths, poet on poems)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flagman.learned.artifacts import load_router, save_router
from flagman.learned.datasets import Dataset, Outcome
from flagman.learned.routers import router_classes
from flagman.learned.train import train_router
from tests.learned.synth import MATH, POEM, dataset, outcomes

KINDS = sorted(router_classes())
FAST = {"mf": {"epochs": 60, "dim": 8, "lr": 0.02}}


@pytest.mark.parametrize("kind", KINDS)
def test_router_learns_who_is_right(kind: str) -> None:
    # the task is about words only: statistics would be 12 noise features on 80 rows
    r = train_router(dataset(80, seed=1, three=True), kind, params=FAST.get(kind), stats=False)
    test = outcomes(40, seed=99)
    pred = r.score_texts([o.prompt for o in test])
    solver, poet = r.index("solver"), r.index("poet")
    is_math = np.array([o.category == "math" for o in test])
    # per-prompt choice between the two specialists is right on every prompt
    picks_solver = pred[:, solver] > pred[:, poet]
    assert (picks_solver == is_math).mean() == 1.0
    assert pred.shape == (40, 3)
    assert ((pred >= 0) & (pred <= 1)).all()


@pytest.mark.parametrize("kind", KINDS)
def test_pair_mode_scores_and_threshold(kind: str) -> None:
    r = train_router(dataset(80, seed=2), kind, params=FAST.get(kind), pair=("solver", "poet"),
                     stats=False)
    test = outcomes(20, seed=7)
    texts = [o.prompt for o in test]
    s = r.strong_scores(texts)  # P(solver needed)
    is_math = np.array([o.category == "math" for o in test])
    assert s[is_math].min() > s[~is_math].max()
    # the base class applies the threshold: everything strong at 0, nothing above 1
    assert set(r.route_pair(texts, 0.0)) == {"solver"}
    assert set(r.route_pair(texts, 1.01)) == {"poet"}
    mid = float((s[is_math].min() + s[~is_math].max()) / 2)
    routed = r.route_pair(texts, mid)
    assert routed == ["solver" if m else "poet" for m in is_math]


def test_default_pair_is_best_and_worst_model() -> None:
    ds = dataset(40)
    for o in ds.outcomes:
        o.scores["poet"] = 0.0  # poet is now never right
    r = train_router(ds, "knn")
    assert r.default_pair() == ("solver", "poet")


def test_router_needs_two_models() -> None:
    ds = dataset(10)
    with pytest.raises(ValueError, match="at least two"):
        train_router(ds, "knn", models=["solver"])


def test_length_statistics_carry_difficulty() -> None:
    """Long prompts need the strong model: only the statistics block can tell."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(120):
        n_words = int(rng.integers(3, 60))
        text = " ".join(["word"] * n_words) + f" {i}"
        hard = n_words > 30
        rows.append(Outcome(prompt=text, scores={"big": 1.0, "small": 0.0 if hard else 1.0}))
    r = train_router(Dataset(rows[:100]), "classifier", pair=("big", "small"))
    s = r.strong_scores([o.prompt for o in rows[100:]])
    hard = np.array([o.scores["small"] == 0.0 for o in rows[100:]])
    assert s[hard].min() > s[~hard].max()


def test_classifier_experts_learn_opposite_difficulty_per_category(tmp_path: Path) -> None:
    """Long maths prompts and short poem prompts are hard: needs category-aware features."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(400):
        cat = "math" if i % 2 == 0 else "poem"
        n = int(rng.integers(2, 40))
        vocab = MATH if cat == "math" else POEM
        text = " ".join(rng.choice(vocab, n)) + f" q{i}"
        hard = n > 20 if cat == "math" else n <= 20
        rows.append(Outcome(prompt=text, category=f"{cat}/x",
                            scores={"big": 1.0, "small": 0.0 if hard else 1.0}))
    train, test = Dataset(rows[:300]), rows[300:]
    hard = np.array([o.scores["small"] == 0.0 for o in test])
    texts = [o.prompt for o in test]
    r = train_router(train, "classifier", pair=("big", "small"), params={"min_expert_rows": 50})
    assert r.featurizer.groups == ["math", "poem"]
    s = r.strong_scores(texts)
    assert ((s > 0.75) == hard).mean() > 0.95, (s[hard].round(2), s[~hard].round(2))
    back = load_router(save_router(r, tmp_path / "r"))
    assert np.allclose(back.strong_scores(texts), s, atol=2e-3)
    # without categories there are no category-aware features and no experts
    for o in train.outcomes:
        o.category = None
    flat = train_router(train, "classifier", pair=("big", "small")).strong_scores(texts)
    assert ((flat > 0.75) == hard).mean() < 0.8
