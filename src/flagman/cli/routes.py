"""`flagman routes …`: evaluate semantic routes and fit their thresholds offline.

Labelled files are JSONL, one ``{"text": "...", "route": "name"}`` a line,
``"route": null`` for a query that no route should take (out of scope).
The same `SemanticIndex` the gateway's semantic step uses does the work, so
the figures printed here are the step's real behaviour.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import click
import numpy as np

from flagman.encoders.base import Encoder
from flagman.encoders.registry import SEMANTIC_DEFAULT
from flagman.errors import ConfigError
from flagman.routing.semantic import build_index
from flagman.routing.semantic_core import IndexParams, SemanticIndex
from flagman.routing.semantic_fit import evaluate, fit_thresholds
from flagman.routing.semantic_routes import Route, dump_routes, load_routes_file

Labelled = list[tuple[str, str | None]]


def read_jsonl(path: Path) -> Labelled:
    """Labelled queries; errors name the file and line."""
    rows: Labelled = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise click.BadParameter(f"{path}:{n}: not JSON: {exc.msg}") from None
            if not isinstance(obj, dict):
                obj = {}
            text, route = obj.get("text"), obj.get("route")
            if not isinstance(text, str) or not (route is None or isinstance(route, str)):
                raise click.BadParameter(
                    f'{path}:{n}: expected {{"text": str, "route": str or null}}'
                )
            rows.append((text, route))
    if not rows:
        raise click.BadParameter(f"{path}: no labelled lines")
    return rows


class ProgressEncoder:
    """Encodes in chunks under a rich progress bar; forwards fit/fitted/fast."""

    def __init__(self, inner: Encoder, *, enabled: bool, chunk: int = 256) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.enabled = enabled
        self.chunk = chunk
        self.label = "encoding"

    def encode(self, texts: list[str]) -> np.ndarray:
        if not self.enabled or len(texts) <= self.chunk:
            return self.inner.encode(texts)
        from rich.progress import Progress

        parts = []
        with Progress(transient=True, console=_console(stderr=True)) as bar:
            task = bar.add_task(self.label, total=len(texts))
            for s in range(0, len(texts), self.chunk):
                parts.append(self.inner.encode(texts[s : s + self.chunk]))
                bar.advance(task, len(parts[-1]))
        return np.vstack(parts)

    def __getattr__(self, attr: str) -> Any:
        if attr == "inner":
            raise AttributeError(attr)
        value = getattr(self.inner, attr)
        if attr == "fit":
            def fit(texts: list[str]) -> ProgressEncoder:
                value(texts)
                self.dim = self.inner.dim
                return self
            return fit
        return value


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr)


def _encoder(spec: str, progress: bool) -> ProgressEncoder:
    from flagman.encoders.registry import load_encoder

    try:
        return ProgressEncoder(load_encoder(spec), enabled=progress)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _classify(index: SemanticIndex, enc: ProgressEncoder, rows: Labelled, label: str) -> Any:
    enc.label = f"encoding {label}"
    return index.classify_embeddings(enc.encode([t for t, _ in rows]))


def _params(top_k: int, threshold: float, head: bool, candidates: int) -> IndexParams:
    return IndexParams(top_k=top_k, default_threshold=threshold, candidates=candidates,
                       head_weight=IndexParams().head_weight if head else 0.0)


def _common(f: Any) -> Any:
    opts = [
        click.option("--encoder", default=SEMANTIC_DEFAULT, show_default=True,
                     help="Encoder spec: minilm-l4, minilm, minilm-torch, minilm-onnx, "
                          "minilm-static, tfidf, openai:<model>@<url>, package.module:Class."),
        click.option("--top-k", default=IndexParams().top_k, show_default=True, type=int,
                     help="A route's similarity is the mean of its top-k utterance cosines."),
        click.option("--threshold", default=IndexParams().default_threshold, show_default=True,
                     type=float, help="Default threshold of routes that have none fitted."),
        click.option("--head/--no-head", default=True, show_default=True,
                     help="Blend in a softmax head trained on the reference utterances."),
        click.option("--candidates", default=IndexParams().candidates, show_default=True,
                     type=click.IntRange(min=0),
                     help="Routes the head shortlists for the similarity pass (0 = all)."),
        click.option("--cache/--no-cache", default=True, show_default=True,
                     help="Reuse the built index from $FLAGMAN_CACHE_DIR/semantic."),
        click.option("--progress/--no-progress", default=True, show_default=True,
                     help="Show a progress bar while encoding."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


@click.group("routes")
def routes_group() -> None:
    """Evaluate semantic routes and fit their thresholds on labelled queries.

    Labelled files are JSONL: {"text": "...", "route": "name"}, with
    "route": null for out-of-scope queries.
    """


@routes_group.command("eval", short_help="Score labelled test queries against references.")
@click.option("--references", required=True, type=click.Path(exists=True, path_type=Path),
              help="Labelled JSONL: one route per label, its lines as utterances.")
@click.option("--test", "test_path", required=True,
              type=click.Path(exists=True, path_type=Path), help="Labelled JSONL to score.")
@click.option("--fit", "fit_path", type=click.Path(exists=True, path_type=Path),
              help="Labelled JSONL (with out-of-scope lines) to fit thresholds on first.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@_common
def eval_cmd(references: Path, test_path: Path, fit_path: Path | None, as_json: bool,
             encoder: str, top_k: int, threshold: float, head: bool, candidates: int,
             cache: bool, progress: bool) -> None:
    """Build one route per label of REFERENCES and score the TEST queries.

    Prints accuracy over all lines (out-of-scope lines are right when
    rejected), in-scope accuracy, out-of-scope recall, per-route precision
    and recall, and the most frequent confusions.
    """
    refs = [(t, r) for t, r in read_jsonl(references) if r is not None]
    if not refs:
        raise click.BadParameter(f"{references}: no line has a route")
    enc = _encoder(encoder, progress and not as_json)
    routes: dict[str, list[str]] = {}
    for t, r in refs:
        routes.setdefault(str(r), []).append(t)
    route_list = [Route(name, utts) for name, utts in routes.items()]
    enc.label = "encoding references"
    params = _params(top_k, threshold, head, candidates)
    index = build_index(route_list, enc, params, disk_cache=cache)
    fitted = None
    if fit_path is not None:
        val = read_jsonl(fit_path)
        preds = _classify(index, enc, val, "fit set")
        index.thresholds, global_t = fit_thresholds(index.routes, preds, [g for _, g in val])
        fitted = {"global": round(global_t, 4), "file": str(fit_path)}
    test = read_jsonl(test_path)
    preds = _classify(index, enc, test, "test set")
    report = evaluate([p.route for p in preds], [g for _, g in test])
    report.update(encoder=enc.name, routes=len(index.routes), references=len(refs),
                  thresholds_fitted=fitted)
    if as_json:
        click.echo(json.dumps(report, sort_keys=False))
    else:
        _print_report(report)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f}%"


def _print_report(rep: dict[str, Any]) -> None:
    from rich.table import Table

    con = _console()
    head = Table(title=f"semantic routes: {rep['routes']} routes, {rep['n']} test lines, "
                       f"encoder {rep['encoder']}")
    for col in ("accuracy", "in-scope accuracy", "OOS recall", "OOS precision"):
        head.add_column(col, justify="right")
    head.add_row(_pct(rep["accuracy"]), _pct(rep["in_scope_accuracy"]),
                 _pct(rep["oos_recall"]), _pct(rep["oos_precision"]))
    con.print(head)
    worst = sorted(rep["per_route"].items(), key=lambda kv: kv[1]["recall"])[:15]
    per = Table(title="weakest routes (by recall)")
    for col in ("route", "precision", "recall", "support"):
        per.add_column(col, justify="left" if col == "route" else "right")
    for name, m in worst:
        per.add_row(name, _pct(m["precision"]), _pct(m["recall"]), str(m["support"]))
    con.print(per)
    conf = Table(title="most frequent confusions")
    for col in ("true", "predicted", "count"):
        conf.add_column(col)
    for c in rep["confusions"]:
        conf.add_row(c["true"], c["predicted"], str(c["count"]))
    con.print(conf)


@routes_group.command("fit", short_help="Fit per-route thresholds into a routes file.")
@click.option("--routes", "routes_path", required=True,
              type=click.Path(exists=True, path_type=Path), help="Routes YAML file.")
@click.option("--val", "val_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="Labelled JSONL; include out-of-scope lines (route: null).")
@click.option("--out", type=click.Path(path_type=Path),
              help="Where to write the routes with thresholds (default: in place).")
@click.option("--min-support", default=5, show_default=True, type=int,
              help="Validation queries a route needs for a threshold of its own.")
@_common
def fit_cmd(routes_path: Path, val_path: Path, out: Path | None, min_support: int,
            encoder: str, top_k: int, threshold: float, head: bool, candidates: int,
            cache: bool, progress: bool) -> None:
    """Fit per-route thresholds on VAL and write them into the routes file.

    Each route's threshold maximises validation accuracy (an exact sweep over
    the sorted scores); routes with fewer than --min-support validation
    queries take one global threshold.  Use the same encoder and options as
    the semantic step that will read the file.
    """
    try:
        routes = load_routes_file(routes_path)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    val = read_jsonl(val_path)
    unknown = sorted({g for _, g in val if g is not None} - {r.name for r in routes})
    if unknown:
        raise click.BadParameter(f"{val_path}: routes not in {routes_path}: {unknown[:5]}")
    enc = _encoder(encoder, progress)
    index = build_index(routes, enc, _params(top_k, threshold, head, candidates), disk_cache=cache)
    preds = _classify(index, enc, val, "validation set")
    gold = [g for _, g in val]
    before = evaluate([p.route for p in preds], gold)["accuracy"]
    th, global_t = fit_thresholds(index.routes, preds, gold, min_support=min_support)
    index.thresholds = th
    after = evaluate([p.route for p in index.predict_scores(np.vstack([p.scores for p in preds]))],
                     gold)["accuracy"]
    by_name = dict(zip(index.routes, th.tolist(), strict=True))
    for r in routes:
        r.threshold = float(by_name[r.name])
    target = out or routes_path
    target.write_text(dump_routes(routes), encoding="utf-8")
    click.echo(f"validation accuracy {_pct(before)} → {_pct(after)} "
               f"(global threshold {global_t:.4f}); wrote {target}", err=False)


@routes_group.command("convert", short_help="Turn a labelled CSV into routes JSONL.")
@click.argument("csv_path", type=click.Path(exists=True, path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--text-column", default="text", show_default=True)
@click.option("--route-column", default="category", show_default=True,
              help="Column holding the route; an empty cell means out of scope.")
def convert_cmd(csv_path: Path, out: Path, text_column: str, route_column: str) -> None:
    """Turn a labelled CSV (e.g. Banking77's train.csv) into routes JSONL."""
    n = 0
    with csv_path.open(encoding="utf-8", newline="") as src, out.open("w", encoding="utf-8") as dst:
        for row in csv.DictReader(src):
            if text_column not in row or route_column not in row:
                raise click.BadParameter(f"{csv_path}: needs columns {text_column!r} and "
                                         f"{route_column!r}")
            route = row[route_column] or None
            dst.write(json.dumps({"text": row[text_column], "route": route}) + "\n")
            n += 1
    click.echo(f"wrote {n} lines to {out}", err=True)
