"""`flagman train | calibrate | eval | data import | data export` end to end on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from tests.learned.synth import outcomes

from flagman.cli.learned import calibrate, data_group, eval_cmd, train
from flagman.learned.datasets import write_jsonl

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture
def cli() -> click.Group:
    @click.group()
    def root() -> None:
        pass

    for c in (train, calibrate, eval_cmd, data_group):
        root.add_command(c)
    return root


def run(cli: click.Group, *args: str) -> str:
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def test_train_eval_calibrate(cli: click.Group, tmp_path: Path) -> None:
    train_f, test_f = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    rows = {"train": outcomes(80, seed=1, three=True), "test": outcomes(40, seed=2, three=True)}
    for part in rows.values():
        for o in part:
            o.scores["solver"] = 1.0 if o.category == "math" else 0.8  # strong: better overall
    write_jsonl(train_f, rows["train"])
    write_jsonl(test_f, rows["test"])
    out = run(cli, "train", "--data", str(train_f), "--router", "knn", "--strong", "solver",
              "--weak", "poet", "--out", str(tmp_path / "r"))
    assert "wrote" in out and (tmp_path / "r" / "meta.json").exists()
    rep = json.loads(run(cli, "eval", "--router", str(tmp_path / "r"), "--data", str(test_f),
                         "--strong", "solver", "--weak", "poet", "--json"))
    assert rep["apgr"] == pytest.approx(rep["oracle"]["apgr"], abs=0.01)  # perfect order
    assert rep["random"]["apgr"] == pytest.approx(0.5) and {"cpt50", "cpt80"} <= set(rep)
    many = json.loads(run(cli, "eval", "--router", str(tmp_path / "r"), "--data", str(test_f),
                          "--json", "--plot", str(tmp_path / "m.png")))
    assert {"aiq", "accuracy", "cost"} <= set(many)
    assert (tmp_path / "m.png").stat().st_size > 1000
    text = run(cli, "eval", "--router", str(tmp_path / "r"), "--data", str(test_f),
               "--strong", "solver", "--weak", "poet", "--plot", str(tmp_path / "p.png"))
    assert "oracle" in text and "random" in text and "math" in text
    t = float(run(cli, "calibrate", "--router", str(tmp_path / "r"), "--prompts", str(test_f),
                  "--strong-fraction", "0.5").split()[0])
    assert 0.0 < t < 1.0


def test_train_reports_bad_data(cli: click.Group, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "scores": {"a": 3}}\n')
    res = CliRunner().invoke(cli, ["train", "--data", str(bad), "--router", "knn",
                                   "--out", str(tmp_path / "r")])
    assert res.exit_code != 0 and "bad.jsonl:1" in res.output


@pytest.mark.skipif(not SHARED.exists(), reason="shared data not present")
def test_data_import_and_export(cli: click.Group, tmp_path: Path) -> None:
    out = tmp_path / "l.jsonl"
    run(cli, "data", "import", "llmrouter", str(SHARED / "llmrouter" / "test.json"),
        "--limit", "10", "--out", str(out))
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 10 and len(rows[0]["scores"]) == 9 and "costs" in rows[0]
    run(cli, "data", "import", "routellm", str(SHARED / "routellm"), "--benchmark", "gsm8k",
        "--limit", "50", "--split", "test", "--out", str(out))
    n = len(out.read_text().splitlines())
    assert 2 <= n <= 20  # about a fifth of 50
    from tests.learned.test_export import make_log

    make_log(tmp_path / "log.db")
    msg = run(cli, "data", "export", "--db", str(tmp_path / "log.db"), "--out", str(out))
    assert "1 outcomes" in msg and "1 without a stored prompt" in msg


def test_calibrate_write_sets_default_threshold(cli: click.Group, tmp_path: Path) -> None:
    from flagman.learned.artifacts import load_router

    rows = outcomes(60, seed=3)
    rows[0].prompt += " line\u2028separator"  # JSONL must not be split on U+2028
    data = tmp_path / "d.jsonl"
    write_jsonl(data, rows)
    run(cli, "train", "--data", str(data), "--router", "classifier", "--strong", "solver",
        "--weak", "poet", "--out", str(tmp_path / "r"))
    t = float(run(cli, "calibrate", "--router", str(tmp_path / "r"), "--prompts", str(data),
                  "--strong-fraction", "0.5", "--write").split()[0])
    r = load_router(tmp_path / "r")  # weights untouched: still loads
    assert r.params["threshold"] == pytest.approx(t, rel=1e-5)
    share = (r.strong_scores([o.prompt for o in rows]) >= r.params["threshold"]).mean()
    assert share == pytest.approx(0.5, abs=0.02)
