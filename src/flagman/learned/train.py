"""Training: data → features → fitted router, the one path the CLI and bench share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from flagman.learned.datasets import Dataset, Outcome, preferences_as_outcomes, score_matrix
from flagman.learned.features import EncoderLoader, Featurizer, default_encoder_loader
from flagman.learned.routers import Router, router_class
from flagman.learned.routers.base import Progress


def training_rows(ds: Dataset, models: Sequence[str] | None = None) -> tuple[
        list[Outcome], list[str]]:
    """Outcomes (preferences included) that name at least one of `models`."""
    models = list(models) if models else ds.models()
    if len(models) < 2:
        raise ValueError(f"need outcomes for at least two models, got {models}")
    rows = ds.outcomes + preferences_as_outcomes(ds.preferences)
    rows = [o for o in rows if any(m in o.scores for m in models)]
    if not rows:
        raise ValueError(f"no training rows mention any of {models}")
    return rows, models


def default_pair(y: np.ndarray, models: Sequence[str]) -> list[str]:
    """(strong, weak) for two-model mode: the best and worst mean scores."""
    means = np.nanmean(np.where(np.isnan(y), np.nan, y), axis=0)
    means = np.nan_to_num(means, nan=0.0)
    return [models[int(np.argmax(means))], models[int(np.argmin(means))]]


def train_router(ds: Dataset, kind: str, *, models: Sequence[str] | None = None,
                 text: str = "tfidf", stats: bool = True,
                 params: dict[str, Any] | None = None,
                 pair: tuple[str, str] | None = None,
                 progress: Progress | None = None,
                 precomputed: dict[str, np.ndarray] | None = None,
                 encoder_loader: EncoderLoader = default_encoder_loader) -> Router:
    """Fit a router of `kind` on `ds` (everything learned from `ds` only)."""
    rows, models = training_rows(ds, models)
    prompts = [o.prompt for o in rows]
    y = score_matrix(rows, models)
    feat = Featurizer(text=text, stats=stats, encoder_loader=encoder_loader).fit(
        prompts, [o.category for o in rows], precomputed)
    p = dict(params or {})
    p["pair"] = list(pair) if pair else default_pair(y, models)
    router = router_class(kind)(models, feat, p)
    router.fit(feat.transform(prompts, precomputed), y, progress)
    return router
