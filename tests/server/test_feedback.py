"""POST /v1/feedback stores a score against a logged request; export turns it into outcomes."""

from __future__ import annotations

import json

from click.testing import CliRunner
from tests.conftest import openai_model

from flagman.cli.main import cli


def test_feedback_round_trip_and_export(make_gateway, upstream, tmp_path) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway({"log": {"path": str(tmp_path / "log.db"), "store_bodies": True,
                               "flush_interval": 0.02},
                       "models": [openai_model("m", upstream)]})
    r = gw.post("/v1/chat/completions", json={"model": "m", "messages": [
        {"role": "user", "content": "what is 2+2?"}]})
    rid = r.headers["x-flagman-request-id"]
    ok = gw.post("/v1/feedback", json={"request_id": rid, "score": 1, "comment": "right"})
    assert ok.status_code == 200 and ok.json()["status"] == "stored"
    bad = gw.post("/v1/feedback", json={"request_id": rid, "score": 3})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "score"
    missing = gw.post("/v1/feedback", json={"request_id": "nope", "score": 0.5})
    assert missing.status_code == 404
    out = tmp_path / "outcomes.jsonl"
    res = CliRunner().invoke(cli, ["data", "export", "--db", str(tmp_path / "log.db"),
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 1
    assert "2+2" in lines[0]["prompt"] and lines[0]["scores"] == {"m": 1.0}
