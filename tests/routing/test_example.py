"""The README's worked example (examples/auto.yaml) served for real: where each prompt goes and why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import openai
import pytest
import yaml
from tests.fakes.gateway import GatewayServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

CASES = [
    ("my SSN is 123-45-6789, can you fill the form?", {}, "local-llama", "policy:restricted"),
    ("hello", {"tier": "free"}, "small-model", "rules:matched=free-tier"),
    ("why does this python script crash with a traceback?", {}, "code-model",
     "rules:matched=code"),
    ("I was charged twice for the same purchase, I want a refund", {}, "gpt-4o-mini",
     "semantic:matched=billing"),
    ("the app is down and nobody can log in", {}, "gpt-4o", "semantic:matched=outage"),
]


@pytest.fixture
def example_gateway(tmp_path, upstream, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    cfg = yaml.safe_load((EXAMPLES / "auto.yaml").read_text())
    for m in cfg["models"]:
        m["base_url"] = upstream.url  # every deployment is the loopback fake
    cfg["log"] = {"path": str(tmp_path / "log.db"), "flush_interval": 0.02}
    cfg["server"] = {"port": 0}
    shutil.copytree(EXAMPLES / "routes", tmp_path / "routes")
    path = tmp_path / "auto.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    gw = GatewayServer(path).start()
    yield gw
    gw.stop()


def test_worked_example_routes_and_explains(example_gateway) -> None:  # type: ignore[no-untyped-def]
    gw = example_gateway
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="client-key", max_retries=0)
    for prompt, metadata, expected, why in CASES:
        extra = {"metadata": metadata} if metadata else {}
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": prompt}], **extra)
        assert raw.headers["x-flagman-model"] == expected, (prompt, raw.headers["x-flagman-route"])
        assert why in raw.headers["x-flagman-route"]
    # a general question passes every step and the learned router decides
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Prove that there are infinitely "
                                 "many primes of the form 4k+3."}])
    assert "learned:matched" in raw.headers["x-flagman-route"]
    # the shipped router scores this 0.456 < the example's threshold 0.5
    assert raw.headers["x-flagman-model"] == "gpt-4o-mini"
    rows = gw.rows()
    assert [r["group_name"] for r in rows[:5]] == [c[2] for c in CASES]
    learned = json.loads(rows[-1]["decision"])["steps"][-1]
    assert learned["step"] == "learned" and learned["threshold"] == 0.5
    assert learned["scores"]["strong"] < 0.5
