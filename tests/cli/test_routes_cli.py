"""`flagman routes eval | fit | convert` on small labelled files, with real TF-IDF runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from flagman.cli.routes import routes_group

REFS = {
    "cards": ["my card was stolen", "I lost my card", "card not arrived yet",
              "block my stolen card", "new card please", "card delivery status"],
    "fx": ["what is the exchange rate", "exchange rate for dollars", "convert euros to pounds",
           "currency conversion fee", "rate for yen exchange", "exchange rate euros"],
}
TEST = [("someone stole my card", "cards"), ("exchange rate of the yen", "fx"),
        ("where is my new card", "cards"), ("convert pounds", "fx"),
        ("bake a chocolate cake", None), ("play some jazz music", None)]
VAL = [("stolen card again", "cards"), ("card never arrived", "cards"),
       ("euros exchange", "fx"), ("dollars rate", "fx"), ("my lost card", "cards"),
       ("sing me a song", None), ("weather tomorrow", None), ("football results", None),
       ("exchange of currency", "fx"), ("pizza recipe", None)]


def jsonl(path: Path, rows: list[tuple[str, str | None]]) -> Path:
    path.write_text("".join(json.dumps({"text": t, "route": r}) + "\n" for t, r in rows))
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    refs = [(u, name) for name, us in REFS.items() for u in us]
    return {"refs": jsonl(tmp_path / "refs.jsonl", refs),
            "test": jsonl(tmp_path / "test.jsonl", TEST),
            "val": jsonl(tmp_path / "val.jsonl", VAL)}


def run(*args: str) -> dict:  # type: ignore[type-arg]
    r = CliRunner().invoke(routes_group, list(args), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.output) if "--json" in args else {"output": r.output}


def test_eval_json_has_the_promised_keys(files: dict[str, Path]) -> None:
    out = run("eval", "--references", str(files["refs"]), "--test", str(files["test"]),
              "--encoder", "tfidf", "--no-cache", "--json")
    for key in ("accuracy", "in_scope_accuracy", "oos_recall", "per_route", "confusions"):
        assert key in out
    assert out["n"] == len(TEST) and out["routes"] == 2 and out["references"] == 12
    assert set(out["per_route"]) == {"cards", "fx"}
    assert {"precision", "recall", "support"} <= set(out["per_route"]["fx"])
    assert out["in_scope_accuracy"] >= 0.75  # TF-IDF gets the word-overlap queries
    right = out["accuracy"] * out["n"]
    assert right == pytest.approx(round(right))


def test_fitting_thresholds_on_val_changes_what_is_rejected(files: dict[str, Path]) -> None:
    base = ["eval", "--references", str(files["refs"]), "--test", str(files["test"]),
            "--encoder", "tfidf", "--no-cache", "--json"]
    strict = run(*base, "--threshold", "0.99")
    assert strict["oos_recall"] == 1.0 and strict["in_scope_accuracy"] == 0.0
    fitted = run(*base, "--threshold", "0.99", "--fit", str(files["val"]))
    assert fitted["thresholds_fitted"]["file"] == str(files["val"])
    assert fitted["accuracy"] > strict["accuracy"]


def test_fit_writes_thresholds_into_routes_file(files: dict[str, Path], tmp_path: Path) -> None:
    routes = [{"name": n, "to": f"model-{n}", "description": f"{n} questions", "utterances": us}
              for n, us in REFS.items()]
    src = tmp_path / "routes.yaml"
    src.write_text(yaml.safe_dump(routes))
    out_path = tmp_path / "fitted.yaml"
    r = run("fit", "--routes", str(src), "--val", str(files["val"]), "--out", str(out_path),
            "--encoder", "tfidf", "--no-cache", "--min-support", "2")
    assert "validation accuracy" in r["output"]
    fitted = yaml.safe_load(out_path.read_text())
    assert [f["name"] for f in fitted] == ["cards", "fx"]
    for f, orig in zip(fitted, routes, strict=True):
        assert isinstance(f["threshold"], float)
        assert f["to"] == orig["to"] and f["utterances"] == orig["utterances"]
        assert f["description"] == orig["description"]
    assert yaml.safe_load(src.read_text()) == routes  # --out leaves the source alone


def test_fit_rejects_unknown_routes_in_val(files: dict[str, Path], tmp_path: Path) -> None:
    src = tmp_path / "routes.yaml"
    src.write_text(yaml.safe_dump([{"name": "cards", "to": "m", "utterances": ["card"]}]))
    r = CliRunner().invoke(routes_group, ["fit", "--routes", str(src), "--val",
                                          str(files["val"]), "--encoder", "tfidf"])
    assert r.exit_code != 0 and "fx" in r.output


def test_bad_jsonl_names_file_and_line(tmp_path: Path, files: dict[str, Path]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "route": "a"}\n{"text": 3}\n')
    r = CliRunner().invoke(routes_group, ["eval", "--references", str(bad), "--test",
                                          str(files["test"]), "--encoder", "tfidf"])
    assert r.exit_code != 0 and "bad.jsonl:2" in r.output


def test_convert_csv_to_jsonl(tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_text('text,category\n"hello, there",greet\nunknown thing,\n')
    out = tmp_path / "x.jsonl"
    r = CliRunner().invoke(routes_group, ["convert", str(src), str(out)])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [{"text": "hello, there", "route": "greet"},
                    {"text": "unknown thing", "route": None}]


@pytest.mark.parametrize("args", [[], ["eval"], ["fit"], ["convert"]])
def test_help(args: list[str]) -> None:
    r = CliRunner().invoke(routes_group, [*args, "--help"])
    assert r.exit_code == 0 and "Usage" in r.output
