"""The packaged MiniLM on its fast path (ONNX int8) and the static table: real runs.

The first run exports the ONNX graph into the user cache (~15 s); later runs
load it in well under a second.
"""

from __future__ import annotations

import numpy as np
import pytest

from flagman.encoders.base import Encoder
from flagman.encoders.registry import (
    DEFAULT_MINILM,
    LITE_LAYERS,
    SEMANTIC_DEFAULT,
    is_fast,
    load_encoder,
)
from flagman.encoders.static import PACKAGED

PAIRS = [
    ("I lost my bank card", "my card is missing, I can't find it"),
    ("what is the euro to dollar exchange rate", "how many dollars do I get for euros"),
]
UNRELATED = "the recipe needs two cups of flour and an egg"


@pytest.fixture(scope="module")
def minilm() -> Encoder:
    return load_encoder("minilm")


def check_semantics(enc: Encoder, pairs: tuple[int, ...] = (0, 2)) -> None:
    texts = [t for p in PAIRS for t in p] + [UNRELATED]
    x = enc.encode(texts)
    assert x.shape == (5, enc.dim) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-4)
    sim = x @ x.T
    for i in pairs:
        assert sim[i, i + 1] > sim[i, 4] + 0.2  # paraphrase ≫ unrelated
        assert sim[i, i + 1] > sim[i, 2 - i]  # and closer than the other topic


def test_minilm_default_is_the_fast_onnx_path(minilm: Encoder) -> None:
    assert DEFAULT_MINILM == "minilm-onnx-int8"
    assert minilm.dim == 384 and is_fast(minilm)
    check_semantics(minilm)


def test_four_layer_minilm_is_its_own_vector_space(minilm: Encoder) -> None:
    lite = load_encoder(SEMANTIC_DEFAULT)
    assert SEMANTIC_DEFAULT == "minilm-l4" and LITE_LAYERS == (0, 1, 2, 5)
    # a different name: an index or router built on one refuses the other
    assert lite.name == "minilm-l0125-int8" != minilm.name
    assert lite.dim == 384 and is_fast(lite)
    check_semantics(lite)
    texts = [t for p in PAIRS for t in p]
    a, b = lite.encode(texts), minilm.encode(texts)
    cos = (a * b).sum(axis=1)
    # the same model minus two middle layers: close to the whole one, but not equal
    assert (cos > 0.4).all() and (cos < 0.99).all()


def test_layer_numbers_are_checked() -> None:
    from flagman.encoders.minilm_onnx import MiniLMOnnxEncoder

    with pytest.raises(ValueError, match="layers 0–5"):
        MiniLMOnnxEncoder(layers=(0, 6))


def test_batches_match_single_queries(minilm: Encoder) -> None:
    texts = ["short", "a much longer sentence that needs padding in a batch " * 3, "mid length"]
    batch = minilm.encode(texts)
    one = np.vstack([minilm.encode([t]) for t in texts])
    np.testing.assert_allclose(batch, one, atol=2e-3)  # padding must not leak into the mean
    assert minilm.encode([]).shape == (0, 384)


def test_minilm_batches_larger_than_one_chunk_keep_order(minilm: Encoder) -> None:
    texts = [f"question number {i} about {'cards' if i % 2 else 'exchange rates'}"
             for i in range(70)]
    x = minilm.encode(texts)
    np.testing.assert_allclose(x[65], minilm.encode([texts[65]])[0], atol=2e-3)


@pytest.mark.skipif(not PACKAGED.exists(), reason="static table not built")
def test_static_table_encoder() -> None:
    enc = load_encoder("minilm-static")
    assert enc.name == "minilm-static" and is_fast(enc)
    # static vectors see shared words ("card"), not reworded ones (euro→dollars)
    check_semantics(enc, pairs=(0,))
