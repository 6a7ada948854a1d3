"""The learned-router interface: a router only *scores*; thresholds and policies decide.

As in RouteLLM's `routers.py`, a router turns prompts into numbers and the
base class turns numbers into a model choice, so one trained artifact serves
every cost/quality trade-off:

* many models: `predict` gives a predicted quality per model (n, m) in [0, 1];
  `flagman.learned.policy` picks by best quality - λ·cost or cheapest-above-target;
* two models: `pair_scores` gives P(the strong model is needed) in [0, 1] and
  `route_pair` sends a prompt to the strong model when it is >= the threshold.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from flagman.learned.features import Features, Featurizer

Progress = Callable[[float], None]  # fraction of training done, 0..1


def observed(y: np.ndarray) -> np.ndarray:
    """Mask of known outcomes (NaN = that model was not run on that prompt)."""
    return ~np.isnan(y)


def column_means(y: np.ndarray) -> np.ndarray:
    """Mean score per model, 0.5 for a model with no data: the prior."""
    m = observed(y)
    s = np.where(m, y, 0.0).sum(axis=0)
    n = m.sum(axis=0)
    return np.where(n > 0, s / np.maximum(n, 1), 0.5).astype(np.float32)


class Router(ABC):
    """A fitted scorer over a fixed list of models."""

    kind: ClassVar[str] = ""
    #: scoring one prompt takes well under a millisecond beyond featurising it; False
    #: for routers that scan their training prompts (they run in a worker thread)
    fast: ClassVar[bool] = True

    def __init__(self, models: Sequence[str], featurizer: Featurizer,
                 params: dict[str, Any] | None = None) -> None:
        if len(models) < 2:
            raise ValueError("a router needs at least two models")
        if len(set(models)) != len(models):
            raise ValueError("model names must be unique")
        self.models = list(models)
        self.featurizer = featurizer
        self.params: dict[str, Any] = {**self.default_params(), **(params or {})}

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return {}

    # -- learning and scoring (subclasses) ---------------------------------------

    @abstractmethod
    def fit(self, feats: Features, y: np.ndarray, progress: Progress | None = None) -> None:
        """Learn from features and the (n, m) score matrix (NaN = unknown)."""

    @abstractmethod
    def predict(self, feats: Features) -> np.ndarray:
        """(n, m) predicted quality of each model on each prompt, in [0, 1]."""

    def pair_scores(self, feats: Features, strong: int, weak: int) -> np.ndarray:
        """P(strong model needed): by default half the predicted quality gap, shifted."""
        p = self.predict(feats)
        return np.clip((p[:, strong] - p[:, weak] + 1.0) / 2.0, 0.0, 1.0)

    @abstractmethod
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays for the weights file and JSON-able metadata; never pickles."""

    @abstractmethod
    def load_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Restore from `state()` output; raise ValueError on anything inconsistent."""

    # -- the base-class decisions --------------------------------------------------

    def index(self, model: str) -> int:
        try:
            return self.models.index(model)
        except ValueError:
            raise KeyError(f"model {model!r} is not one of this router's models: "
                           f"{', '.join(self.models)}") from None

    def default_pair(self) -> tuple[str, str]:
        """(strong, weak) recorded at training time, else the first two models."""
        pair = self.params.get("pair")
        if isinstance(pair, list | tuple) and len(pair) == 2:
            return str(pair[0]), str(pair[1])
        return self.models[0], self.models[1]

    def featurize(self, texts: Sequence[str]) -> Features:
        return self.featurizer.transform(texts)

    def score_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.predict(self.featurize(texts))

    def strong_scores(self, texts: Sequence[str], strong: str | None = None,
                      weak: str | None = None) -> np.ndarray:
        ds, dw = self.default_pair()
        return self.pair_scores(self.featurize(texts), self.index(strong or ds),
                                self.index(weak or dw))

    def route_pair(self, texts: Sequence[str], threshold: float, strong: str | None = None,
                   weak: str | None = None) -> list[str]:
        """Strong model where P(strong needed) >= threshold, else the weak one."""
        ds, dw = self.default_pair()
        s, w = strong or ds, weak or dw
        scores = self.strong_scores(texts, s, w)
        return [s if x >= threshold else w for x in scores]
