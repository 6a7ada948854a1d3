"""A model-free TF-IDF encoder, fitted on the texts a router is built from.

It needs no weights at all, so it is the encoder of last resort on a machine
without torch and the cheap baseline the learned routers compare against.
Its fitted state is plain arrays and strings (`to_state`/`from_state`), so a
router artifact can store it in an ``.npz`` or JSON file: never pickle, which
would run code on load.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

STATE_KIND = "flagman.tfidf/1"


class NotFittedError(RuntimeError):
    """`encode` was called before `fit` (or `from_state`)."""


class TfidfEncoder:
    """Word (1–2)-gram TF-IDF with sublinear tf, rows L2-normalised.

    `max_features` bounds `dim`: the dense `encode` output is
    ``len(texts) × dim`` floats, so a large vocabulary is only worth it through
    `encode_sparse`.
    """

    def __init__(
        self,
        *,
        max_features: int = 4096,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 1,
        sublinear_tf: bool = True,
    ) -> None:
        self.params: dict[str, Any] = {
            "max_features": int(max_features),
            "ngram_range": [int(ngram_range[0]), int(ngram_range[1])],
            "min_df": int(min_df),
            "sublinear_tf": bool(sublinear_tf),
        }
        self._vec: TfidfVectorizer | None = None
        self.dim = 0
        self.fast = True  # sparse dot products: fine to run on the event loop
        lo, hi = ngram_range
        self.name = f"tfidf:{max_features}:{lo}-{hi}"

    @property
    def fitted(self) -> bool:
        return self._vec is not None

    def _new_vectorizer(self, vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
        p = self.params
        return TfidfVectorizer(
            max_features=p["max_features"] if vocabulary is None else None,
            ngram_range=(p["ngram_range"][0], p["ngram_range"][1]),
            min_df=p["min_df"] if vocabulary is None else 1,
            sublinear_tf=p["sublinear_tf"],
            vocabulary=vocabulary,
            dtype=np.float32,
        )

    def fit(self, texts: list[str]) -> TfidfEncoder:
        """Learn the vocabulary and idf weights; returns self for chaining."""
        if not texts:
            raise ValueError("cannot fit TF-IDF on no texts")
        vec = self._new_vectorizer()
        vec.fit(texts)
        self._vec = vec
        self.dim = len(vec.vocabulary_)
        return self

    def encode_sparse(self, texts: list[str]) -> sparse.csr_matrix:
        """CSR rows, L2-normalised: what linear models on big vocabularies want."""
        if self._vec is None:
            raise NotFittedError("the TF-IDF encoder must be fitted (fit or from_state) first")
        out = self._vec.transform(texts)
        return sparse.csr_matrix(out, dtype=np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.encode_sparse(texts).toarray(), dtype=np.float32)

    # -- persistence -----------------------------------------------------------------

    def to_state(self) -> dict[str, np.ndarray | str]:
        """Arrays and strings only: store with ``np.savez`` or as JSON lists."""
        if self._vec is None:
            raise NotFittedError("nothing to save: the TF-IDF encoder is not fitted")
        vocab = self._vec.vocabulary_
        terms = [""] * len(vocab)
        for term, idx in vocab.items():
            terms[idx] = term
        return {
            "kind": STATE_KIND,
            "params": json.dumps(self.params),
            "terms": np.asarray(terms, dtype=np.str_),
            "idf": np.asarray(self._vec.idf_, dtype=np.float32),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TfidfEncoder:
        """Rebuild from `to_state` output (values may be numpy arrays or lists)."""
        kind = str(np.asarray(state.get("kind", "")))
        if kind != STATE_KIND:
            raise ValueError(f"not a TF-IDF encoder state (kind={kind!r})")
        params = json.loads(str(np.asarray(state["params"])))
        enc = cls(
            max_features=params["max_features"],
            ngram_range=(params["ngram_range"][0], params["ngram_range"][1]),
            min_df=params["min_df"],
            sublinear_tf=params["sublinear_tf"],
        )
        terms = [str(t) for t in np.asarray(state["terms"]).tolist()]
        idf = np.asarray(state["idf"], dtype=np.float32)
        if len(terms) != len(idf):
            raise ValueError("TF-IDF state is inconsistent: terms and idf differ in length")
        vec = enc._new_vectorizer({t: i for i, t in enumerate(terms)})
        vec.idf_ = idf
        enc._vec = vec
        enc.dim = len(terms)
        return enc
