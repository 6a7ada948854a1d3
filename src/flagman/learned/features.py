"""Prompt features for learned routers: text representation + difficulty statistics.

A learned router needs to know how hard a prompt is, not only its topic, so the
features are two blocks:

* `emb`: the text representation used for similarity (kNN, SW ranking) and as
  linear-model input.  One or more parts joined by "+": "tfidf" (fitted on the
  training prompts, stored in the artifact) and/or any encoder spec of
  `flagman.encoders.registry` ("minilm", "openai:…").  Parts are concatenated
  and scaled so the row stays L2-normalised (cosine = dot product).  With TF-IDF
  the block is a scipy CSR matrix, else a dense float32 array.
* `extra`: standardised length/number/structure statistics, which carry much
  of the difficulty signal on maths word problems.  When the training rows
  have categories, a small text classifier predicts the coarse category (the
  part before "/", e.g. "mmlu", "gsm8k") and `extra` also holds its
  probabilities and their products with the statistics: "long" means
  something different for a maths problem than for a multiple-choice question,
  and one linear model over mixed data otherwise averages the two away.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
from scipy import sparse

from flagman.encoders.base import Encoder
from flagman.encoders.tfidf import TfidfEncoder

_NUM = re.compile(r"\d+(?:[.,]\d+)?")
_WORD = re.compile(r"\w+")
_OPTION = re.compile(r"^\s*\(?[A-D][.)]\s", re.MULTILINE)
_MATH = re.compile(r"[=+\-*/^<>%$]")

STAT_NAMES = ("log_chars", "log_words", "log_numbers", "log_max_number", "lines",
              "sentences", "options", "math_symbols", "questions", "upper_ratio",
              "mean_word_len", "digit_ratio")

#: a dense array or a scipy CSR matrix (scipy ships no type stubs)
Matrix: TypeAlias = Any
EncoderLoader = Callable[[str], Encoder]


def prompt_stats(text: str) -> list[float]:
    """Cheap difficulty proxies: length, how many numbers, structure, notation."""
    n_chars = len(text)
    words = _WORD.findall(text)
    nums = _NUM.findall(text)
    biggest = max((float(n.replace(",", "")) for n in nums), default=0.0)
    letters = sum(c.isalpha() for c in text) or 1
    return [
        math.log1p(n_chars),
        math.log1p(len(words)),
        math.log1p(len(nums)),
        math.log1p(min(biggest, 1e12)),
        math.log1p(text.count("\n")),
        math.log1p(text.count(". ") + text.count("? ")),
        float(len(_OPTION.findall(text))),
        math.log1p(len(_MATH.findall(text))),
        float(text.count("?")),
        sum(c.isupper() for c in text) / letters,
        (sum(len(w) for w in words) / len(words)) if words else 0.0,
        sum(c.isdigit() for c in text) / max(n_chars, 1),
    ]


def default_encoder_loader(spec: str) -> Encoder:
    """Encoders come from the shared registry (so they are cached and offline)."""
    from flagman.encoders.registry import load_encoder

    return load_encoder(spec)


@dataclass
class Features:
    emb: Matrix  # (n, d) rows L2-normalised; CSR when TF-IDF is a part
    extra: np.ndarray  # (n, e) standardised statistics

    def __len__(self) -> int:
        return int(self.emb.shape[0])

    def joined(self) -> Matrix:
        """emb and extra side by side: the input of linear models."""
        if sparse.issparse(self.emb):
            return sparse.hstack([self.emb, sparse.csr_matrix(self.extra)], format="csr")
        return np.hstack([self.emb, self.extra]).astype(np.float32)


@dataclass
class Featurizer:
    """Turns prompts into `Features`; fitted on training prompts, saved in the artifact."""

    text: str = "tfidf"  # "+"-joined parts: tfidf, minilm, openai:…
    stats: bool = True
    tfidf_max_features: int = 30000
    tfidf_min_df: int = 2
    encoder_loader: EncoderLoader = default_encoder_loader
    _tfidf: TfidfEncoder | None = None
    _encoders: dict[str, Encoder] = field(default_factory=dict)
    _mean: np.ndarray | None = None
    _std: np.ndarray | None = None
    groups: list[str] = field(default_factory=list)
    _gcoef: np.ndarray | None = None  # (g, d) coarse-category classifier on emb
    _gbias: np.ndarray | None = None

    @property
    def parts(self) -> list[str]:
        return [p.strip() for p in self.text.split("+") if p.strip()]

    def encoder_names(self) -> dict[str, str]:
        """Encoder name per part: recorded so a mismatched encoder is refused at load."""
        out = {}
        for p in self.parts:
            if p != "tfidf":
                out[p] = self.encoder(p).name
        return out

    def encoder(self, spec: str) -> Encoder:
        if spec not in self._encoders:
            self._encoders[spec] = self.encoder_loader(spec)
        return self._encoders[spec]

    def fit(self, texts: Sequence[str], categories: Sequence[str | None] | None = None,
            precomputed: dict[str, np.ndarray] | None = None) -> Featurizer:
        if "tfidf" in self.parts:
            self._tfidf = TfidfEncoder(max_features=self.tfidf_max_features,
                                       min_df=self.tfidf_min_df).fit(list(texts))
        raw = self._raw_stats(texts)
        self._mean = raw.mean(axis=0)
        self._std = raw.std(axis=0) + 1e-6
        if categories is not None and self.stats:
            self._fit_groups(texts, categories, precomputed)
        return self

    def _fit_groups(self, texts: Sequence[str], categories: Sequence[str | None],
                    precomputed: dict[str, np.ndarray] | None) -> None:
        """Learn to predict the coarse category from text (if there are two or more)."""
        from sklearn.linear_model import LogisticRegression

        coarse = [c.split("/")[0] if c else None for c in categories]
        groups = sorted({c for c in coarse if c})
        rows = [i for i, c in enumerate(coarse) if c]
        if len(groups) < 2 or not self.parts:
            return
        emb = self._emb(texts, precomputed)
        y = np.array([groups.index(coarse[i]) for i in rows])  # type: ignore[arg-type]
        lr = LogisticRegression(C=10.0, max_iter=2000).fit(emb[rows], y)
        coef, bias = lr.coef_, lr.intercept_
        if len(groups) == 2:  # sklearn keeps one row for two classes
            coef, bias = np.vstack([-coef / 2, coef / 2]), np.array([-bias[0] / 2, bias[0] / 2])
        self.groups = groups
        self._gcoef = np.asarray(coef, dtype=np.float32)
        self._gbias = np.asarray(bias, dtype=np.float32)

    def group_probs(self, emb: Matrix) -> np.ndarray:
        if self._gcoef is None or self._gbias is None:
            return np.zeros((emb.shape[0], 0), dtype=np.float32)
        z = np.asarray(emb @ self._gcoef.T) + self._gbias
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)

    def _raw_stats(self, texts: Sequence[str]) -> np.ndarray:
        if not self.stats:
            return np.zeros((len(texts), 0), dtype=np.float32)
        return np.asarray([prompt_stats(t) for t in texts], dtype=np.float32).reshape(
            len(texts), len(STAT_NAMES))

    def _emb(self, texts: Sequence[str],
             precomputed: dict[str, np.ndarray] | None = None) -> Matrix:
        texts = list(texts)
        blocks: list[Matrix] = []
        for p in self.parts:
            if p == "tfidf":
                if self._tfidf is None:
                    raise RuntimeError("tfidf part is not fitted")
                blocks.append(self._tfidf.encode_sparse(texts))
            elif precomputed is not None and p in precomputed:
                blocks.append(np.asarray(precomputed[p], dtype=np.float32))
            else:
                blocks.append(self.encoder(p).encode(texts).astype(np.float32))
        scale = 1.0 / math.sqrt(len(blocks)) if blocks else 1.0
        if any(sparse.issparse(b) for b in blocks):
            return sparse.hstack([sparse.csr_matrix(b) for b in blocks], format="csr") * scale
        if blocks:
            return np.hstack(blocks) * scale
        return np.zeros((len(texts), 0), dtype=np.float32)

    def transform(self, texts: Sequence[str],
                  precomputed: dict[str, np.ndarray] | None = None) -> Features:
        """Features of `texts`; `precomputed` maps a part to embeddings already made."""
        if self._mean is None or self._std is None:
            raise RuntimeError("featurizer is not fitted")
        emb = self._emb(texts, precomputed)
        stats = (self._raw_stats(texts) - self._mean) / self._std
        probs = self.group_probs(emb)
        inter = (stats[:, :, None] * probs[:, None, :]).reshape(len(stats), -1)
        extra = np.hstack([stats, probs, inter]).astype(np.float32)
        return Features(emb=emb, extra=extra)

    # -- persistence: arrays for the weights file, a dict for the JSON metadata --

    def to_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if self._mean is None or self._std is None:
            raise RuntimeError("featurizer is not fitted")
        arrays = {"feat.mean": self._mean, "feat.std": self._std}
        meta: dict[str, Any] = {"text": self.text, "stats": self.stats,
                                "stat_names": list(STAT_NAMES) if self.stats else [],
                                "tfidf_max_features": self.tfidf_max_features,
                                "tfidf_min_df": self.tfidf_min_df,
                                "encoders": self.encoder_names(), "groups": self.groups}
        if self._gcoef is not None and self._gbias is not None:
            arrays["feat.group.coef"] = self._gcoef
            arrays["feat.group.bias"] = self._gbias
        if self._tfidf is not None:
            st = self._tfidf.to_state()
            arrays["feat.tfidf.terms"] = np.asarray(st["terms"])
            arrays["feat.tfidf.idf"] = np.asarray(st["idf"])
            meta["tfidf"] = {"kind": st["kind"], "params": json.loads(str(st["params"]))}
        return arrays, meta

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any],
                   encoder_loader: EncoderLoader = default_encoder_loader) -> Featurizer:
        f = cls(text=meta["text"], stats=bool(meta["stats"]),
                tfidf_max_features=int(meta["tfidf_max_features"]),
                tfidf_min_df=int(meta["tfidf_min_df"]), encoder_loader=encoder_loader)
        if f.stats and list(meta.get("stat_names", [])) != list(STAT_NAMES):
            raise ValueError("artifact was made with different prompt statistics")
        f._mean = np.asarray(arrays["feat.mean"], dtype=np.float32)
        f._std = np.asarray(arrays["feat.std"], dtype=np.float32)
        f.groups = [str(g) for g in meta.get("groups", [])]
        if f.groups:
            f._gcoef = np.asarray(arrays["feat.group.coef"], dtype=np.float32)
            f._gbias = np.asarray(arrays["feat.group.bias"], dtype=np.float32)
            if f._gcoef.shape[0] != len(f.groups) or f._gbias.shape != (len(f.groups),):
                raise ValueError("category classifier does not match its category list")
        if "tfidf" in f.parts:
            t = meta["tfidf"]
            f._tfidf = TfidfEncoder.from_state({
                "kind": t["kind"], "params": json.dumps(t["params"]),
                "terms": arrays["feat.tfidf.terms"], "idf": arrays["feat.tfidf.idf"]})
        return f

    def check_encoders(self, expected: dict[str, str]) -> None:
        """Refuse an encoder whose name differs from the one the router was trained with."""
        for part, name in expected.items():
            got = self.encoder(part).name
            if got != name:
                raise ValueError(f"encoder {part!r} is {got!r} but the router was trained "
                                 f"with {name!r}")
