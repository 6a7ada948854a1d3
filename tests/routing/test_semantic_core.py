"""SemanticIndex scoring, exact threshold fitting and evaluation metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flagman.encoders.tfidf import TfidfEncoder
from flagman.routing.semantic_core import FLOOR, LIVE_MAX, IndexParams, Prediction, SemanticIndex
from flagman.routing.semantic_fit import evaluate, fit_thresholds, sweep_threshold

ROUTES = {
    "cards": ["my card was stolen", "I lost my card", "card not arrived yet",
              "block my stolen card", "new card please"],
    "fx": ["what is the exchange rate", "exchange rate for dollars", "convert euros to pounds",
           "currency conversion fee", "rate for yen exchange"],
    "topup": ["top up with bank transfer", "how to add money", "top up failed",
              "add funds by card top up", "top up limit"],
}


def build(params: IndexParams | None = None) -> tuple[SemanticIndex, TfidfEncoder]:
    texts = [u for r in ROUTES.values() for u in r]
    labels = [name for name, us in ROUTES.items() for _ in us]
    enc = TfidfEncoder().fit(texts)
    return SemanticIndex.build(texts, labels, enc, params=params), enc


def test_similarity_is_mean_of_top_k_cosines() -> None:
    idx, enc = build(IndexParams(top_k=2, head_weight=0.0))
    q = enc.encode(["stolen card"])
    sims = (q @ enc.encode(ROUTES["cards"]).T)[0]
    expected = np.sort(sims)[::-1][:2].mean()
    assert idx.similarity(q)[0, idx.routes.index("cards")] == pytest.approx(expected, abs=1e-6)


def test_classify_routes_and_rejects_out_of_scope() -> None:
    idx, enc = build()
    assert idx.head is not None  # 3 routes × 5 utterances: enough to train one
    route, score, scores = idx.classify("my card got stolen", enc)
    assert route == "cards" and score == max(scores.values())
    assert idx.classify("exchange rate of dollars", enc)[0] == "fx"
    oos, oos_score, _ = idx.classify("tell me a joke about penguins", enc)
    assert oos is None and oos_score < idx.params.default_threshold


def test_head_blend_stays_within_bounds_and_changes_scores() -> None:
    plain, enc = build(IndexParams(head_weight=0.0))
    blended, _ = build(IndexParams(head_weight=0.5))
    q = enc.encode(["card top up failed"])
    a, b = plain.score(q), blended.score(q)
    assert not np.allclose(a, b)
    assert (b <= 1.0 + 1e-6).all() and (b >= -1.0 - 1e-6).all()


def random_index(n_routes: int, per_route: int, params: IndexParams,
                 seed: int = 0) -> tuple[SemanticIndex, np.ndarray]:
    """Clustered unit vectors, routes of unequal size, utterances in shuffled order."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_routes, 32))
    sizes = rng.integers(1, per_route + 1, n_routes)
    labels = np.repeat(np.arange(n_routes), sizes)
    emb = centres[labels] + 0.9 * rng.standard_normal((len(labels), 32))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    order = rng.permutation(len(labels))

    class Enc:
        name, dim = "random", 32

    idx = SemanticIndex.build([f"u{i}" for i in order], [f"r{labels[i]}" for i in order],
                              Enc(), params=params, emb=emb[order].astype(np.float32))
    q = centres[rng.integers(0, n_routes, 40)] + 1.2 * rng.standard_normal((40, 32))
    return idx, (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("candidates", [0, 1, 4, 30])
def test_live_scores_equal_batch_scores(candidates: int) -> None:
    idx, q = random_index(30, 12, IndexParams(top_k=3, candidates=candidates))
    assert len(q) > LIVE_MAX and idx.head is not None
    batch = idx.score(q)  # BLAS path
    live = np.vstack([idx.score(row[None]) for row in q])  # per-query path
    np.testing.assert_allclose(live, batch, atol=1e-5)


def test_head_shortlist_floors_every_other_route() -> None:
    idx, q = random_index(30, 12, IndexParams(candidates=4))
    proba = idx.head_proba(q)
    assert proba is not None
    scores = idx.score(q)
    for row, p in zip(scores, proba, strict=True):
        picked = set(np.argsort(-p)[:4].tolist())
        assert set(np.flatnonzero(row > FLOOR).tolist()) == picked
    # the shortlisted routes keep the blended score of the unrestricted index
    full, _ = random_index(30, 12, IndexParams(candidates=0))
    unrestricted = full.score(q)
    mask = scores > FLOOR
    np.testing.assert_allclose(scores[mask], unrestricted[mask], atol=1e-5)


def test_no_head_means_no_shortlist() -> None:
    idx, q = random_index(30, 12, IndexParams(head_weight=0.0, candidates=2))
    assert idx.head is None
    assert (idx.score(q) > FLOOR).all()
    np.testing.assert_allclose(idx.score(q), idx.similarity(q), atol=1e-6)


def test_save_load_roundtrip(tmp_path: Path) -> None:
    idx, enc = build()
    idx.thresholds = np.array([0.1, 0.2, 0.3], np.float32)
    idx.save(tmp_path / "i.npz")
    back = SemanticIndex.load(tmp_path / "i.npz")
    q = enc.encode(["lost card", "euros", "add money"])
    np.testing.assert_allclose(back.score(q), idx.score(q), rtol=1e-6)
    assert back.routes == idx.routes and back.params == idx.params
    np.testing.assert_array_equal(back.thresholds, idx.thresholds)


def test_sweep_finds_the_separating_threshold() -> None:
    scores = np.array([0.1, 0.2, 0.35, 0.6, 0.7, 0.9])
    accept_ok = np.array([0, 0, 0, 1, 1, 1], bool)
    t = sweep_threshold(scores, accept_ok, ~accept_ok)
    assert 0.35 < t < 0.6 and t == pytest.approx(0.475)
    # nothing to reject: accept all; nothing to accept: reject all
    assert sweep_threshold(scores, np.ones(6, bool), np.zeros(6, bool)) < 0.1
    assert sweep_threshold(scores, np.zeros(6, bool), np.ones(6, bool)) > 0.9


def test_sweep_never_splits_tied_scores() -> None:
    scores = np.array([0.5, 0.5, 0.5, 0.8])
    accept_ok = np.array([1, 0, 0, 1], bool)
    t = sweep_threshold(scores, accept_ok, ~accept_ok)
    assert t > 0.5 or t < 0.5  # a clean cut: all three 0.5s fall on the same side
    assert 0.5 < t < 0.8  # rejecting the tie (2 right) beats accepting it (1 right)


def pred(best: str, score: float) -> Prediction:
    return Prediction(best, best, score, 0.0, np.zeros(2, np.float32))


def test_fit_thresholds_per_route_and_global() -> None:
    routes = ["a", "b"]
    preds = ([pred("a", s) for s in (0.9, 0.8, 0.7, 0.3, 0.2)]
             + [pred("b", s) for s in (0.95, 0.6, 0.55, 0.5, 0.1)])
    gold: list[str | None] = ["a", "a", "a", None, None, "b", "b", "b", "b", None]
    th, global_t = fit_thresholds(routes, preds, gold, min_support=3)
    assert 0.3 < th[0] < 0.7
    assert 0.1 < th[1] < 0.5
    for p, t in zip(preds, [th[0]] * 5 + [th[1]] * 5, strict=True):
        p.route = p.best if p.score >= t else None
    assert evaluate([p.route for p in preds], gold)["accuracy"] == 1.0
    # too little support: every route takes the global threshold
    th2, g2 = fit_thresholds(routes, preds, gold, min_support=50)
    assert (th2 == np.float32(g2)).all()


def test_evaluate_metrics_by_hand() -> None:
    gold = ["a", "a", "b", None, None]
    got = ["a", "b", "b", None, "a"]
    m = evaluate(got, gold)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["in_scope_accuracy"] == pytest.approx(2 / 3)
    assert m["oos_recall"] == pytest.approx(1 / 2)
    assert m["per_route"]["a"] == {"precision": 0.5, "recall": 0.5, "support": 2}
    assert m["per_route"]["b"]["precision"] == pytest.approx(0.5)
    pairs = {(c["true"], c["predicted"]) for c in m["confusions"]}
    assert pairs == {("a", "b"), ("<out_of_scope>", "a")}
