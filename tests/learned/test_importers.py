"""Importers on small real slices of the shared data, and the JSONL format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flagman.learned.datasets import (
    DataError,
    data_hash,
    read_jsonl,
    split_of,
    write_jsonl,
)
from flagman.learned.importers import (
    contaminated_prompts,
    estimate_cost,
    import_generic_csv,
    import_llmrouter,
    import_routellm,
)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="shared data not present")


@needs_shared
def test_routellm_mmlu_slice() -> None:
    rows = import_routellm(SHARED / "routellm", ("mmlu",), limit=3)
    assert 100 < len(rows) <= 57 * 3
    r = rows[0]
    assert r.category == "mmlu/abstract_algebra"
    assert set(r.scores) == {"gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"}
    assert all(v in (0.0, 1.0) for o in rows for v in o.scores.values())


@needs_shared
def test_routellm_gsm8k_drops_contaminated_prompts() -> None:
    bad = contaminated_prompts(SHARED / "routellm" / "gsm8k" / "contaminated_prompts.jsonl")
    assert bad
    rows = import_routellm(SHARED / "routellm", ("gsm8k",))
    prompts = {o.prompt for o in rows}
    assert not prompts & bad
    assert len(rows) < 1319 and len(rows) >= 1319 - len(bad)
    assert not any(k.endswith("_response") for k in rows[0].scores)


@needs_shared
def test_llmrouter_slice_with_costs() -> None:
    d = SHARED / "llmrouter"
    rows = import_llmrouter(d / "train.json", d / "models.json", limit=20)
    assert len(rows) == 20 and len(rows[0].scores) == 9
    assert rows[0].costs is not None
    assert rows[0].category == "cluster0"
    # nemotron is 0.9 USD/1M in and out, gemma-2-9b 0.1: costs scale with the prices
    c = rows[0].costs
    assert c["llama-3.1-nemotron-51b-instruct"] == pytest.approx(9 * c["gemma-2-9b-it"])
    test = import_llmrouter(d / "test.json", None, limit=5)
    assert test[0].costs is None and test[0].category is None


def test_estimate_cost() -> None:
    # 400 chars → 100 tokens in, 256 out, at 1 and 2 USD per million
    assert estimate_cost("x" * 400, 1.0, 2.0) == pytest.approx((100 + 512) / 1e6)


def test_generic_csv(tmp_path: Path) -> None:
    p = tmp_path / "o.csv"
    p.write_text("prompt,topic,a,b\nhi,chat,1,0\nsum 2+2,math,True,0.5\nq,x,,1\n")
    rows = import_generic_csv(p, category_column="topic")
    assert [o.scores for o in rows] == [{"a": 1.0, "b": 0.0}, {"a": 1.0, "b": 0.5}, {"b": 1.0}]
    assert rows[1].category == "math"
    p.write_text("prompt,a\nhi,7\n")
    with pytest.raises(DataError, match="outside"):
        import_generic_csv(p)


def test_jsonl_round_trip_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_text(
        json.dumps({"id": "1", "prompt": "p", "scores": {"a": 1, "b": 0}, "category": "c"}) + "\n"
        + json.dumps({"messages": [{"role": "user", "content": "m"}], "scores": {"a": 0.5}})
        + "\n\n"
        + json.dumps({"prompt": "x", "model_a": "a", "model_b": "b", "winner": "tie"}) + "\n")
    ds = read_jsonl(p)
    assert len(ds.outcomes) == 2 and len(ds.preferences) == 1
    assert ds.outcomes[1].prompt == "m" and ds.models() == ["a", "b"]
    out = tmp_path / "o.jsonl"
    write_jsonl(out, ds.outcomes + ds.preferences)
    assert data_hash(read_jsonl(out)) == data_hash(ds)
    for bad, msg in [('{"prompt": "p", "scores": {"a": 2}}', "in \\[0, 1\\]"),
                     ('{"prompt": "p"}', "scores"),
                     ('{"prompt": "p", "model_a": "a", "model_b": "b", "winner": "c"}', "winner"),
                     ("not json", "not valid JSON")]:
        p.write_text('{"prompt": "ok", "scores": {"a": 1}}\n' + bad + "\n")
        with pytest.raises(DataError, match=f"d.jsonl:2: .*{msg}"):
            read_jsonl(p)


def test_split_is_stable_and_about_80_20() -> None:
    assert split_of("What is 2+2?") == split_of("What is 2+2?")
    shares = [split_of(f"question {i}") == "train" for i in range(2000)]
    assert 0.77 < sum(shares) / 2000 < 0.83
    # sha256("hello") starts with 2cf24dba = 754077114; mod 100 = 14 → train
    assert split_of("hello") == "train"
