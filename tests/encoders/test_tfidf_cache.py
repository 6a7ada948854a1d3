"""TF-IDF fitting and pickle-free persistence; the LRU embedding cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flagman.encoders.base import Encoder
from flagman.encoders.cache import CachedEncoder
from flagman.encoders.tfidf import NotFittedError, TfidfEncoder

TEXTS = ["my card was stolen", "I lost my card", "what is the exchange rate",
         "exchange rate for dollars", "top up with bank transfer"]


def test_tfidf_rows_normalised_and_similar_texts_closer() -> None:
    enc = TfidfEncoder().fit(TEXTS)
    assert isinstance(enc, Encoder)
    x = enc.encode(["stolen card", "exchange rate today", "zzz unknown words"])
    assert x.dtype == np.float32 and x.shape == (3, enc.dim)
    np.testing.assert_allclose(np.linalg.norm(x[:2], axis=1), 1.0, rtol=1e-5)
    assert not x[2].any()  # no known term: an all-zero row, not NaN
    ref = enc.encode(TEXTS)
    assert int(np.argmax(ref @ x[0])) in (0, 1)
    assert int(np.argmax(ref @ x[1])) in (2, 3)


def test_tfidf_must_be_fitted() -> None:
    with pytest.raises(NotFittedError):
        TfidfEncoder().encode(["x"])
    with pytest.raises(NotFittedError):
        TfidfEncoder().to_state()


def test_tfidf_state_roundtrip_through_npz_without_pickle(tmp_path: Path) -> None:
    enc = TfidfEncoder(max_features=50).fit(TEXTS)
    path = tmp_path / "tfidf.npz"
    np.savez(path, **enc.to_state())  # type: ignore[arg-type]
    with np.load(path, allow_pickle=False) as z:
        back = TfidfEncoder.from_state(dict(z))
    q = ["lost card exchange", "bank transfer"]
    np.testing.assert_allclose(back.encode(q), enc.encode(q), rtol=1e-6)
    assert back.name == enc.name and back.dim == enc.dim
    sp = back.encode_sparse(q)
    np.testing.assert_allclose(sp.toarray(), enc.encode(q), rtol=1e-6)


def test_tfidf_state_rejects_other_kinds() -> None:
    state = TfidfEncoder().fit(TEXTS).to_state()
    with pytest.raises(ValueError):
        TfidfEncoder.from_state({**state, "kind": "something/else"})
    with pytest.raises(ValueError):
        TfidfEncoder.from_state({**state, "idf": np.ones(1, np.float32)})


class Counting:
    """A deterministic encoder that records what it was asked to encode."""

    name = "counting"
    dim = 4

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.array([[len(t), t.count("a"), t.count("e"), 1.0] for t in texts], np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_cache_hits_skip_the_model_and_keep_order() -> None:
    inner = Counting()
    enc = CachedEncoder(inner, maxsize=10)
    first = enc.encode(["alpha", "beta", "alpha"])
    assert inner.calls == [["alpha", "beta"]]  # duplicates encoded once
    second = enc.encode(["beta", "gamma", "alpha"])
    assert inner.calls[-1] == ["gamma"]
    np.testing.assert_array_equal(second[0], first[1])
    np.testing.assert_array_equal(second[2], first[0])
    np.testing.assert_allclose(second, inner.encode(["beta", "gamma", "alpha"]))
    assert enc.hits == 2 and enc.misses == 4


def test_cache_evicts_least_recently_used() -> None:
    inner = Counting()
    enc = CachedEncoder(inner, maxsize=2)
    enc.encode(["a"])
    enc.encode(["b"])
    enc.encode(["a"])  # a is now the most recent
    enc.encode(["c"])  # evicts b
    assert len(enc) == 2
    inner.calls.clear()
    enc.encode(["a", "b"])
    assert inner.calls == [["b"]]


def test_cache_forwards_fit_and_drops_stale_rows() -> None:
    enc = CachedEncoder(TfidfEncoder(), maxsize=8)
    enc.fit(["red apple", "green pear"])  # type: ignore[attr-defined]
    a = enc.encode(["red pear"])
    assert enc.dim == enc.inner.dim > 0
    enc.fit(["pear pear", "blue sky", "red"])  # type: ignore[attr-defined]
    assert len(enc) == 0
    b = enc.encode(["red pear"])
    assert a.shape[1] != b.shape[1] or not np.allclose(a, b)
