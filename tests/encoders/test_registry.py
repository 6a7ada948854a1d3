"""Encoder specs: built-ins, sharing through resources, users' own, remote endpoints."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

from flagman.config import parse_config
from flagman.encoders.base import Encoder
from flagman.encoders.cache import CachedEncoder
from flagman.encoders.registry import DEFAULT_MINILM, is_fast, load_encoder, needs_fit
from flagman.encoders.remote import OpenAIEmbeddingEncoder, parse_openai_spec
from flagman.encoders.tfidf import TfidfEncoder
from flagman.errors import ConfigError
from tests.fakes.openai_upstream import FakeOpenAIUpstream


class MyEncoder:
    name = "mine"
    dim = 2

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.tile(np.array([[0.6, 0.8]], np.float32), (len(texts), 1))


def make_mine() -> MyEncoder:
    return MyEncoder()


def test_tfidf_spec_gives_a_fresh_unfitted_encoder_each_time() -> None:
    res: dict[str, object] = {}
    a = load_encoder("tfidf", resources=res)
    b = load_encoder("tfidf", resources=res)
    assert isinstance(a, TfidfEncoder) and a is not b
    assert needs_fit(a) and is_fast(a)
    assert not res


@pytest.mark.parametrize("spec", [f"{__name__}:MyEncoder", f"{__name__}:make_mine"])
def test_user_encoder_from_import_string_is_shared(spec: str) -> None:
    res: dict[str, object] = {}
    enc = load_encoder(spec, resources=res)
    assert isinstance(enc, Encoder) and enc.name == "mine"
    assert load_encoder(spec, resources=res) is enc
    assert not needs_fit(enc) and not is_fast(enc)  # unknown cost: run in a thread


def test_cache_option_wraps_and_shares_the_inner_encoder() -> None:
    res: dict[str, object] = {}
    spec = f"{__name__}:MyEncoder"
    cached = load_encoder(spec, resources=res, cache=16)
    assert isinstance(cached, CachedEncoder)
    assert cached.inner is load_encoder(spec, resources=res)


@pytest.mark.parametrize("spec", ["nope", "no.such.module:Thing", f"{__name__}:CONSTANT"])
def test_bad_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_encoder(spec)
    assert repr(spec) in str(err.value)


CONSTANT = 3


@pytest.mark.parametrize("spec", ["openai:text-embedding-3-small", "openai:@http://x", "openai:m@"])
def test_openai_spec_needs_model_and_endpoint(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_openai_spec(spec)


def test_openai_encoder_via_model_group_over_real_http(upstream: FakeOpenAIUpstream) -> None:
    os.environ["FLAGMAN_TEST_EMB_KEY"] = "sk-test"
    cfg = parse_config({"models": [{"name": "embedder", "base_url": upstream.url,
                                    "api_key": "env:FLAGMAN_TEST_EMB_KEY"}]})
    enc = load_encoder("openai:emb-model@embedder", config=cfg)
    assert isinstance(enc, OpenAIEmbeddingEncoder)
    x = enc.encode(["banana", "kiwi", "a"])
    assert x.shape == (3, 3) and enc.dim == 3
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    assert x[0, 1] > x[1, 1]  # the fake's second component counts the letter a
    assert enc.base_url == upstream.url and enc.model == "emb-model"
    enc.close()


def test_openai_unknown_group_is_a_config_error() -> None:
    cfg = parse_config({"models": [{"name": "chat"}]})
    with pytest.raises(ConfigError, match="unknown model group"):
        load_encoder("openai:m@embedder", config=cfg)
    with pytest.raises(ConfigError, match="no base_url"):
        load_encoder("openai:m@chat", config=cfg)


def test_minilm_alias_shares_the_default_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []

    def fake_builtins() -> dict[str, Any]:
        return {DEFAULT_MINILM: lambda: built.append(DEFAULT_MINILM) or MyEncoder()}

    monkeypatch.setattr("flagman.encoders.registry.builtin_encoders", fake_builtins)
    res: dict[str, object] = {}
    assert load_encoder("minilm", resources=res) is load_encoder(DEFAULT_MINILM, resources=res)
    assert built == [DEFAULT_MINILM]
