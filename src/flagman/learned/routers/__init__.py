"""Learned routers by kind: "mf", "sw_ranking", "classifier", "knn"."""

from __future__ import annotations

from flagman.learned.routers.base import Router


def router_classes() -> dict[str, type[Router]]:
    """Kind → class; a function so there is no module-level registry to mutate."""
    from flagman.learned.routers.classifier import ClassifierRouter
    from flagman.learned.routers.knn import KnnRouter
    from flagman.learned.routers.mf import MfRouter
    from flagman.learned.routers.sw_ranking import SwRankingRouter

    return {c.kind: c for c in (MfRouter, SwRankingRouter, ClassifierRouter, KnnRouter)}


def router_class(kind: str) -> type[Router]:
    classes = router_classes()
    if kind not in classes:
        raise ValueError(f"unknown router kind {kind!r} (known: {', '.join(classes)})")
    return classes[kind]


__all__ = ["Router", "router_class", "router_classes"]
