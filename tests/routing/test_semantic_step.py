"""The semantic step built from config: routes files, traces, fallbacks, config errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flagman.config import parse_config
from flagman.errors import ConfigError
from flagman.routing.base import BuildContext, resolve_step
from flagman.routing.semantic import SemanticStep
from flagman.types import ChatRequest, Decision

ROUTES = [
    {"name": "cards", "to": "small", "utterances": [
        "my card was stolen", "I lost my card", "card not arrived yet", "block my stolen card"]},
    {"name": "fx", "to": "big", "threshold": 0.2, "utterances": [
        "what is the exchange rate", "exchange rate for dollars", "convert euros to pounds",
        "currency conversion fee"]},
]


def ctx(tmp_path: Path) -> BuildContext:
    cfg = parse_config({"models": [{"name": "small"}, {"name": "big"}, {"name": "catchall"}]},
                       base_dir=str(tmp_path))
    return BuildContext(cfg, "routers[0].steps[1].semantic",
                        known_models={"small", "big", "catchall"})


def step(tmp_path: Path, **spec: Any) -> SemanticStep:
    spec = {"encoder": "tfidf", "routes": ROUTES, "index_cache": False, **spec}
    return SemanticStep(spec, ctx(tmp_path))


def req(text: str) -> ChatRequest:
    return ChatRequest({"model": "auto", "messages": [
        {"role": "system", "content": "You are a bank assistant."},
        {"role": "user", "content": text}]})


async def test_registered_under_semantic(tmp_path: Path) -> None:
    assert resolve_step("semantic", ctx(tmp_path)) is SemanticStep


async def test_matched_trace_carries_route_target_score_and_top(tmp_path: Path) -> None:
    s = step(tmp_path)
    d = Decision("auto")
    assert await s.decide(req("someone stole my card"), d) == "small"
    tr = d.steps[-1]
    assert tr.step == "semantic" and tr.outcome == "matched"
    assert tr.detail["route"] == "cards" and tr.detail["to"] == "small"
    assert tr.detail["score"] >= tr.detail["threshold"]
    assert [t["route"] for t in tr.detail["top"]][0] == "cards"
    assert "semantic:matched=cards" in d.header()


async def test_out_of_scope_passes_to_next_step(tmp_path: Path) -> None:
    s = step(tmp_path)
    d = Decision("auto")
    assert await s.decide(req("write a haiku about mountains"), d) is None
    tr = d.steps[-1]
    assert tr.outcome == "out_of_scope" and "to" not in tr.detail
    assert tr.detail["score"] < tr.detail["threshold"]


async def test_out_of_scope_goes_to_fallback_model(tmp_path: Path) -> None:
    s = step(tmp_path, fallback="catchall")
    d = Decision("auto")
    assert await s.decide(req("write a haiku about mountains"), d) == "catchall"
    assert d.steps[-1].outcome == "out_of_scope" and d.steps[-1].detail["to"] == "catchall"


async def test_per_route_threshold_from_routes_file(tmp_path: Path) -> None:
    (tmp_path / "routes").mkdir()
    strict = [dict(ROUTES[0], threshold=0.99), ROUTES[1]]
    (tmp_path / "routes" / "support.yaml").write_text(yaml.safe_dump(strict))
    s = step(tmp_path, routes="routes/support.yaml")  # resolved against the config folder
    d = Decision("auto")
    assert await s.decide(req("someone stole my card"), d) is None
    assert d.steps[-1].detail["best"] == "cards" and d.steps[-1].detail["threshold"] == 0.99
    assert await s.decide(req("exchange rate for euros"), Decision("auto")) == "big"


async def test_empty_user_text_passes(tmp_path: Path) -> None:
    d = Decision("auto")
    r = ChatRequest({"model": "auto", "messages": [{"role": "user", "content": "  "}]})
    assert await step(tmp_path).decide(r, d) is None
    assert d.steps[-1].outcome == "passed"


async def test_index_is_cached_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAGMAN_CACHE_DIR", str(tmp_path / "cache"))
    step(tmp_path, index_cache=True)
    files = list((tmp_path / "cache" / "semantic").glob("*.npz"))
    assert len(files) == 1
    # the second build loads the file: building would call SemanticIndex.build again
    from flagman.routing.semantic_core import SemanticIndex

    def no_build(*a: Any, **k: Any) -> None:
        raise AssertionError("the cached index was not used")

    monkeypatch.setattr(SemanticIndex, "build", no_build)
    again = step(tmp_path, index_cache=True, top_k=2)  # scoring-only change: same file
    assert again.index.params.top_k == 2
    assert await again.decide(req("I lost my card"), Decision("auto")) == "small"


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("- name: a\n  to: small\n", "support.yaml[0].utterances"),
        ("- name: a\n  to: nowhere\n  utterances: [x]\n", ".routes[0].to"),
        ("- name: a\n  utterances: [x]\n", "support.yaml[0].to"),
        ("- name: a\n  to: small\n  threshold: high\n  utterances: [x]\n",
         "support.yaml[0].threshold"),
        ("- name: a\n  to: small\n  utterances: [x]\n  colour: red\n", "support.yaml[0]"),
        ("- name: a\n  to: small\n  utterances: [x]\n- name: a\n  to: big\n  utterances: [y]\n",
         "support.yaml[1].name"),
        ("[unclosed", "support.yaml: not valid YAML"),
        ("{}", "support.yaml: expected a non-empty list"),
    ],
)
async def test_bad_routes_file_names_the_path(tmp_path: Path, content: str, where: str) -> None:
    (tmp_path / "support.yaml").write_text(content)
    with pytest.raises(ConfigError) as err:
        step(tmp_path, routes="support.yaml")
    msg = str(err.value)
    assert where in msg
    assert "support.yaml" in msg or "routers[0].steps[1].semantic" in msg


async def test_missing_routes_file_and_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read routes file"):
        step(tmp_path, routes="missing.yaml")
    with pytest.raises(ConfigError, match=r"semantic\.top_k"):
        step(tmp_path, top_k=0)
    for bad in (-1, 2.5, True):
        with pytest.raises(ConfigError, match=r"semantic\.candidates: must be a non-negative"):
            step(tmp_path, candidates=bad)
    with pytest.raises(ConfigError, match=r"semantic\.fallback: unknown model"):
        step(tmp_path, fallback="nowhere")
    with pytest.raises(ConfigError, match="unknown key"):
        step(tmp_path, treshold=0.4)
    with pytest.raises(ConfigError, match="unknown encoder"):
        step(tmp_path, encoder="word2vec")


def test_index_cache_key_follows_model_file_and_utterances() -> None:
    from flagman.routing.semantic import _index_key
    from flagman.routing.semantic_core import IndexParams
    from flagman.routing.semantic_routes import Route

    class Enc:
        name = "same-name"
        dim = 2
        fingerprint = "graph-v1"

        def encode(self, texts: list[str]) -> Any:
            raise AssertionError("not called")

    a, b = Enc(), Enc()
    b.fingerprint = "graph-v2"
    routes = [Route("r", ["x", "y"], "m")]
    assert _index_key(a, IndexParams(), routes) != _index_key(b, IndexParams(), routes)
    assert _index_key(a, IndexParams(), routes) == _index_key(a, IndexParams(), routes)
    assert _index_key(a, IndexParams(), routes) != _index_key(
        a, IndexParams(), [Route("r", ["x", "z"], "m")])
    # the head's training changes the arrays; scoring-time parameters do not
    assert _index_key(a, IndexParams(), routes) != _index_key(a, IndexParams(head_c=1.0), routes)
    assert _index_key(a, IndexParams(), routes) != _index_key(
        a, IndexParams(head_weight=0.0), routes)
    assert _index_key(a, IndexParams(), routes) == _index_key(
        a, IndexParams(top_k=5, default_threshold=0.7, candidates=2), routes)


async def test_real_minilm_routes_paraphrases(tmp_path: Path) -> None:
    s = step(tmp_path, encoder="minilm")
    assert not s.threaded  # the ONNX path is fast enough for the event loop
    d = Decision("auto")
    # no word in common with the fx utterances: only the meaning matches
    assert await s.decide(req("how many yen would I get for 100 bucks"), d) == "big"
    assert await s.decide(req("somebody took my wallet with my debit card"), Decision("auto")) \
        == "small"
    d = Decision("auto")
    assert await s.decide(req("write a poem about autumn leaves"), d) is None
    assert d.steps[-1].outcome == "out_of_scope"
