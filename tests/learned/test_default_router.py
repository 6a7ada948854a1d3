"""The packaged default router loads offline and routes GPT-4 vs Mixtral."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flagman.learned.artifacts import load_router, resolve_router_path
from flagman.learned.policy import Policy, choose

STRONG, WEAK = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"
HARD = ("Let p = (1, 2, 5, 4)(2, 3) in S_5 . Find the index of <p> in S_5.\nA. 8\nB. 2\n"
        "C. 24\nD. 120\nAnswer:")


def test_default_router_is_packaged_with_its_licences() -> None:
    folder = resolve_router_path("default")
    assert (folder / "meta.json").exists()
    for name in ("NOTICE", "LICENSE.routellm", "LICENSE.llmrouter", "README.md"):
        assert (folder / name).exists(), name
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size < 5_000_000


def test_default_router_scores_the_pair() -> None:
    r = load_router("default")
    assert r.default_pair() == (STRONG, WEAK)
    s = r.strong_scores(["What is the capital of France?", HARD])
    assert s.shape == (2,) and ((s >= 0) & (s <= 1)).all()
    assert s[1] > s[0]  # the proof needs the strong model more than the capital of France
    assert r.route_pair(["hi"], 0.0) == [STRONG]
    assert r.route_pair(["hi"], 1.01) == [WEAK]


def test_default_router_many_model_mode() -> None:
    r = load_router("default")
    names = ["qwen2.5-7b-instruct", "llama-3.1-nemotron-51b-instruct", "gemma-2-9b-it"]
    cols = [r.index(m) for m in names]
    pred = r.score_texts(["Write a function to reverse a string in Python."])[:, cols]
    costs = np.array([0.2, 0.9, 0.1])
    assert choose(pred, costs, Policy(lam=100.0)).tolist() == [2]
    # without a cost weight the policy takes the router's best predicted quality
    assert int(choose(pred, costs, Policy(lam=0.0))[0]) == int(np.argmax(pred[0]))


def test_loading_by_path_equals_by_name() -> None:
    a = load_router("default")
    b = load_router(Path(resolve_router_path("default")))
    t = ["How many legs do 3 spiders have?"]
    assert np.allclose(a.strong_scores(t), b.strong_scores(t))


@pytest.mark.parametrize("bad", ["no-such-router", "./nowhere"])
def test_unknown_router_name(bad: str) -> None:
    from flagman.learned.artifacts import ArtifactError

    with pytest.raises(ArtifactError, match="not a router folder"):
        load_router(bad)
