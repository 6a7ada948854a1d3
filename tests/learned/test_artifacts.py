"""Artifacts round-trip and refuse corrupted or mismatched files with a clear error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from flagman.errors import ConfigError
from flagman.learned.artifacts import (
    ArtifactError,
    RouterCache,
    load_router,
    load_router_dir,
    save_router,
)
from flagman.learned.routers import router_classes
from flagman.learned.train import train_router
from tests.learned.synth import dataset, outcomes

FAST = {"mf": {"epochs": 5, "dim": 4}}


@pytest.mark.parametrize("kind", sorted(router_classes()))
def test_round_trip_gives_same_scores(kind: str, tmp_path: Path) -> None:
    r = train_router(dataset(40), kind, params=FAST.get(kind))
    save_router(r, tmp_path / "r", data_hash="abc", metrics={"apgr": 0.7})
    back = load_router(tmp_path / "r")
    texts = [o.prompt for o in outcomes(10, seed=5)]
    assert back.models == r.models and back.kind == kind
    assert np.allclose(back.score_texts(texts), r.score_texts(texts), atol=2e-3)
    assert np.allclose(back.strong_scores(texts), r.strong_scores(texts), atol=2e-3)
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    assert meta["data_hash"] == "abc" and meta["format_version"] == 1
    assert meta["features"]["text"] == "tfidf"


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return save_router(train_router(dataset(30), "classifier"), tmp_path / "r")


def test_corrupted_weights_are_refused(saved: Path) -> None:
    w = saved / "weights.npz"
    raw = bytearray(w.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    w.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_router(saved)


def test_weights_of_another_router_are_refused(saved: Path, tmp_path: Path) -> None:
    other = save_router(train_router(dataset(30, seed=3), "knn"), tmp_path / "o")
    shutil.copy(other / "weights.npz", saved / "weights.npz")
    with pytest.raises(ArtifactError, match="checksum"):
        load_router(saved)


def test_tampered_metadata_is_refused(saved: Path) -> None:
    meta = json.loads((saved / "meta.json").read_text())
    meta["models"] = ["a", "b", "c"]  # weights are for two models
    (saved / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="inconsistent"):
        load_router(saved)
    meta["format_version"] = 99
    (saved / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="version 99"):
        load_router(saved)
    (saved / "meta.json").write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable"):
        load_router(saved)


def test_missing_folder_and_wrong_models(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not a router folder"):
        load_router(tmp_path / "nothing")
    with pytest.raises(ArtifactError, match="not for"):
        load_router_dir(saved, models=["solver", "gpt-9"])


def test_encoder_mismatch_is_refused(tmp_path: Path) -> None:
    class Fake:
        def __init__(self, name: str) -> None:
            self.name, self.dim = name, 3

        def encode(self, texts: list[str]) -> np.ndarray:
            v = np.array([[len(t) % 7 + 1, 1.0, 2.0] for t in texts], dtype=np.float32)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

    r = train_router(dataset(20), "knn", text="fake", encoder_loader=lambda s: Fake("fake-v1"))
    save_router(r, tmp_path / "r")
    ok = load_router_dir(tmp_path / "r", encoder_loader=lambda s: Fake("fake-v1"))
    assert ok.featurizer.parts == ["fake"]
    with pytest.raises(ArtifactError, match="trained with 'fake-v1'"):
        load_router_dir(tmp_path / "r", encoder_loader=lambda s: Fake("fake-v2"))


def test_cache_reuses_and_hot_swaps(tmp_path: Path) -> None:
    folder = save_router(train_router(dataset(30), "classifier"), tmp_path / "r")
    cache = RouterCache()
    a = cache.get(str(folder))
    assert cache.get(str(folder)) is a  # unchanged files: no reload
    save_router(train_router(dataset(30, seed=4), "knn"), folder)
    b = cache.get(str(folder))
    assert b is not a and b.kind == "knn"
