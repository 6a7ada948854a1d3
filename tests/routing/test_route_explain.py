"""/v1/route, `flagman route` and real serving agree on where a request goes and why."""

from __future__ import annotations

import json

import openai
from click.testing import CliRunner
from tests.conftest import openai_model

from flagman.cli.main import cli

PROMPTS = ["please debug this Python traceback", "what's the capital of France?",
           "my email is x@y.io, help"]


def _config(up_a, up_b):  # type: ignore[no-untyped-def]
    return {
        "models": [openai_model("code-model", up_a), openai_model("general", up_b),
                   openai_model("local", up_b, tags=["on_prem"])],
        "routers": [{"name": "auto", "steps": [
            {"policy": {"to": "local"}},
            {"rules": [{"name": "code", "when": {"messages": {"$regex": "(?i)python|traceback"}},
                        "to": "code-model"}]},
        ], "default": "general"}],
    }


def test_route_endpoint_cli_and_serving_agree(make_gateway, upstream, upstream_b) -> None:
    gw = make_gateway(_config(upstream, upstream_b))
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    runner = CliRunner()
    for prompt in PROMPTS:
        body = {"model": "auto", "messages": [{"role": "user", "content": prompt}]}
        preview = gw.post("/v1/route", json=body).json()
        cli_out = runner.invoke(cli, ["route", "--config", str(gw.config_path), "--json", prompt])
        assert cli_out.exit_code == 0, cli_out.output
        from_cli = json.loads(cli_out.output)
        served = client.chat.completions.with_raw_response.create(**body)
        group = preview["decision"]["group"]
        assert from_cli["decision"]["group"] == group
        assert served.headers["x-flagman-model"] == group
        assert [s["step"] for s in from_cli["decision"]["steps"]] == \
            [s["step"] for s in preview["decision"]["steps"]]
        assert served.headers["x-flagman-route"] == gw.post("/v1/route", json=body).headers[
            "x-flagman-route"]
    rows = gw.rows()
    assert [json.loads(r["decision"])["group"] for r in rows] == ["code-model", "general", "local"]
    assert json.loads(rows[0]["decision"])["steps"][1] == {
        "step": "rules", "outcome": "matched", "matched": "code", "to": "code-model"}


def test_cli_route_human_output_and_errors(tmp_path, upstream, upstream_b) -> None:
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_config(upstream, upstream_b)))
    r = CliRunner().invoke(cli, ["route", "--config", str(path), "fix my python"])
    assert r.exit_code == 0
    assert "code-model" in r.output and "rules" in r.output
    r = CliRunner().invoke(cli, ["route", "--config", str(path), "--model", "nope", "--json", "x"])
    assert r.exit_code == 1
    err = json.loads(r.output)
    assert err["status"] == 404 and err["error"]["code"] == "model_not_found"
