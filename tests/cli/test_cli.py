"""The CLI: --help everywhere, logs export, and the demo end to end."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from tests.conftest import openai_model

from flagman.cli.main import COMMANDS, cli


def _leaf_commands():  # type: ignore[no-untyped-def]
    import click

    out = []
    for name in COMMANDS:
        cmd = cli.get_command(click.Context(cli), name)
        if isinstance(cmd, click.Group):
            out += [[name, sub] for sub in cmd.commands]
        out.append([name])
    return out


@pytest.mark.parametrize("args", _leaf_commands())
def test_every_command_has_help(args) -> None:  # type: ignore[no-untyped-def]
    r = CliRunner().invoke(cli, [*args, "--help"])
    assert r.exit_code == 0, r.output
    assert "Usage:" in r.output and "--help" in r.output


def test_logs_table_jsonl_csv(make_gateway, upstream, tmp_path) -> None:  # type: ignore[no-untyped-def]
    gw = make_gateway({"models": [openai_model("m", upstream, input_price=1, output_price=2)]})
    for _ in range(3):
        gw.post("/v1/chat/completions", json={"model": "m", "messages": [
            {"role": "user", "content": "x"}]})
    gw.flush_log()
    db = str(tmp_path / "log.db")
    r = CliRunner().invoke(cli, ["logs", "--db", db, "-n", "2"])
    assert r.exit_code == 0 and r.output.count(" m ") >= 2
    r = CliRunner().invoke(cli, ["logs", "--db", db, "--format", "jsonl"])
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert len(rows) == 3 and rows[0]["deployment"] == "m"
    assert rows[0]["cost_usd"] == pytest.approx((9 * 1 + 5 * 2) / 1e6)
    assert isinstance(rows[0]["attempts"], list)
    out = tmp_path / "out.csv"
    r = CliRunner().invoke(cli, ["logs", "--config", str(gw.config_path), "--format", "csv",
                                 "-o", str(out)])
    assert r.exit_code == 0
    assert len(list(csv.DictReader(io.StringIO(out.read_text())))) == 3
    r = CliRunner().invoke(cli, ["logs", "--db", str(tmp_path / "none.db")])
    assert r.exit_code != 0 and "no request log" in r.output


def test_serve_refuses_broken_config(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: m\n    base_ur1: http://x\n")
    r = CliRunner().invoke(cli, ["serve", "--config", str(bad)])
    assert r.exit_code == 2
    assert "models[0].base_ur1: Extra inputs are not permitted" in r.output


def test_demo_runs_end_to_end(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = CliRunner().invoke(cli, ["demo", "--limit", "40", "--workdir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "gpt-4-1106-preview" in r.output and "Mixtral-8x7B-Instruct" in r.output
    assert "gateway overhead per request: p50" in r.output
    assert "all to GPT-4 (what-if)" in r.output
    assert (tmp_path / "demo.db").exists()
