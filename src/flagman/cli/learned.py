"""`flagman train | calibrate | eval | data import | data export`: learned routers from the shell.

Heavy imports (numpy, scikit-learn, encoders) happen inside the commands so
`flagman --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click


def _fail(msg: str) -> None:
    raise click.ClickException(msg)


def _parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for it in items:
        key, sep, val = it.partition("=")
        if not sep:
            _fail(f"--param must look like key=value, got {it!r}")
        try:
            out[key] = json.loads(val)
        except ValueError:
            out[key] = val
    return out


def _split_filter(outcomes: list[Any], split: str) -> list[Any]:
    from flagman.learned.datasets import split_of

    return outcomes if split == "all" else [o for o in outcomes if split_of(o.prompt) == split]


@click.command("train")
@click.option("--data", "data", multiple=True, required=True, type=click.Path(exists=True),
              help="Outcome/preference JSONL file(s); repeat the flag for several.")
@click.option("--router", "kind", required=True,
              type=click.Choice(["mf", "sw_ranking", "classifier", "knn"]))
@click.option("--models", default=None, help="Comma-separated models (default: all in the data).")
@click.option("--encoder", default="tfidf", show_default=True,
              help="Text features: tfidf, minilm, openai:…, or parts joined by '+'.")
@click.option("--strong", default=None, help="Strong model of two-model mode (default: best).")
@click.option("--weak", default=None, help="Weak model of two-model mode (default: worst).")
@click.option("--split", type=click.Choice(["all", "train", "test"]), default="all",
              show_default=True, help="Keep only rows of this fixed hash split.")
@click.option("--param", "params", multiple=True, help="Router parameter key=value (JSON value).")
@click.option("--no-stats", is_flag=True, help="Leave out prompt length/number statistics.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Artifact folder.")
def train(data: tuple[str, ...], kind: str, models: str | None, encoder: str,
          strong: str | None, weak: str | None, split: str, params: tuple[str, ...],
          no_stats: bool, out: str) -> None:
    """Train a learned router on outcome data and write a versioned artifact folder."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from flagman.errors import FlagmanError
    from flagman.learned.artifacts import save_router
    from flagman.learned.datasets import data_hash, read_many
    from flagman.learned.train import train_router

    try:
        ds = read_many(data)
        ds.outcomes = _split_filter(ds.outcomes, split)
        model_list = [m.strip() for m in models.split(",")] if models else None
        pair = (strong, weak) if strong and weak else None
        with Progress(TextColumn("[bold]training {task.description}"), BarColumn(),
                      TimeElapsedColumn(), transient=not sys.stderr.isatty()) as bar:
            task = bar.add_task(kind, total=1.0)
            router = train_router(ds, kind, models=model_list, text=encoder,
                                  stats=not no_stats, params=_parse_params(params), pair=pair,
                                  progress=lambda f: bar.update(task, completed=f))
        folder = save_router(router, out, data_hash=data_hash(ds),
                             extra={"training": {"files": [Path(d).name for d in data],
                                                 "rows": len(ds.outcomes), "split": split}})
    except (FlagmanError, ValueError, KeyError) as exc:
        _fail(str(exc))
        return
    click.echo(f"wrote {folder} ({kind}, models: {', '.join(router.models)})")


def _read_prompts(path: str) -> list[str]:
    """JSONL (prompt or messages per line) or plain text (one prompt per line)."""
    from flagman.learned.datasets import prompt_of_messages

    lines = Path(path).read_text(encoding="utf-8").split("\n")  # not splitlines: U+2028
    out = []
    for line in lines:
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            obj = json.loads(line)
            p = obj.get("prompt")
            out.append(p if isinstance(p, str) else prompt_of_messages(obj.get("messages", [])))
        else:
            out.append(line)
    return out


@click.command("calibrate")
@click.option("--router", "router_path", required=True, help="Artifact folder or 'default'.")
@click.option("--prompts", required=True, type=click.Path(exists=True),
              help="Sample of real prompts: JSONL (prompt/messages) or one prompt a line.")
@click.option("--strong-fraction", type=click.FloatRange(0, 1), default=0.3, show_default=True)
@click.option("--strong", default=None)
@click.option("--weak", default=None)
@click.option("--write", is_flag=True,
              help="Store the threshold in the artifact as its default threshold.")
def calibrate(router_path: str, prompts: str, strong_fraction: float, strong: str | None,
              weak: str | None, write: bool) -> None:
    """Print the threshold that sends --strong-fraction of the prompts to the strong model."""
    from flagman.errors import FlagmanError
    from flagman.learned.artifacts import load_router, resolve_router_path, set_default_threshold
    from flagman.learned.calibrate import strong_share, threshold_for_share

    try:
        router = load_router(router_path)
        texts = _read_prompts(prompts)
        scores = router.strong_scores(texts, strong, weak)
        t = threshold_for_share(scores, strong_fraction)
        if write:
            set_default_threshold(resolve_router_path(router_path), t, strong_fraction)
    except (FlagmanError, ValueError, KeyError) as exc:
        _fail(str(exc))
        return
    click.echo(f"{t:.6g}")
    click.echo(f"# {strong_share(scores, t):.1%} of {len(texts)} prompts go to the strong model",
               err=True)


def _print_report(rep: dict[str, Any]) -> None:
    if rep["mode"] == "pair":
        click.echo(f"{rep['strong']} (strong, {rep['q_strong']:.3f}) vs {rep['weak']} "
                   f"(weak, {rep['q_weak']:.3f}), {rep['n']} prompts")
        click.echo(f"{'':10s} {'APGR':>6s} {'CPT50':>6s} {'CPT80':>6s}")
        for name, r in (("router", rep), ("random", rep["random"]), ("oracle", rep["oracle"])):
            click.echo(f"{name:10s} {r['apgr']:6.3f} {r['cpt50']:6.1%} {r['cpt80']:6.1%}")
        click.echo("PGR at share: " + "  ".join(
            f"{s:.0%}:{p:.2f}" for s, p in zip(rep["curve"]["share"][::4],
                                                rep["curve"]["pgr"][::4], strict=True)))
        click.echo("per category (n, APGR):")
        for c, r in rep["categories"].items():
            click.echo(f"  {c:40s} {r['n']:5d} {r['apgr']:6.3f}")
        return
    b = rep["best_single"]
    click.echo(f"{rep['n']} queries, {len(rep['models'])} models; AIQ {rep['aiq']:.4f}")
    share = rep["cost_share"]
    matched = f"{share:.1%} of its cost" if share != float("inf") else "not reached"
    click.echo(f"accuracy at the cost of {b['name']} ({b['accuracy']:.3f}): "
               f"{rep['accuracy']:.3f}; cost to match it: {matched}")
    click.echo(f"{'':34s} {'accuracy':>8s} {'USD/query':>10s} {'AIQ':>7s}")
    for s in rep["singles"]:
        click.echo(f"{s['name']:34s} {s['accuracy']:8.3f} {s['cost']:10.2e} {s['aiq']:7.4f}")
    o = rep["oracle"]
    click.echo(f"{'oracle':34s} {o['accuracy']:8.3f} {o['cost']:10.2e} {o['aiq']:7.4f}")


@click.command("eval")
@click.option("--router", "router_path", required=True, help="Artifact folder or 'default'.")
@click.option("--data", "data", multiple=True, required=True, type=click.Path(exists=True))
@click.option("--strong", default=None, help="Evaluate as a pair: strong model.")
@click.option("--weak", default=None, help="Evaluate as a pair: weak model.")
@click.option("--split", type=click.Choice(["all", "train", "test"]), default="all",
              show_default=True, help="Keep only rows of this fixed hash split.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", default=None, type=click.Path(dir_okay=False), help="Write a PNG.")
def eval_cmd(router_path: str, data: tuple[str, ...], strong: str | None, weak: str | None,
             split: str, as_json: bool, plot: str | None) -> None:
    """Routing quality on outcome data: APGR/CPT for a pair, frontier/AIQ for many models."""
    from flagman.errors import FlagmanError
    from flagman.learned.artifacts import load_router
    from flagman.learned.datasets import read_many
    from flagman.learned.evaluate import evaluate, plot_report

    try:
        router = load_router(router_path)
        ds = read_many(data)
        rows = _split_filter(ds.outcomes, split)
        if not rows:
            _fail("no outcomes to evaluate")
        rep = evaluate(router, rows, strong=strong, weak=weak)
        if plot:
            plot_report(rep, plot)
    except (FlagmanError, ValueError, KeyError) as exc:
        _fail(str(exc))
        return
    if as_json:
        click.echo(json.dumps(rep, default=float))
    else:
        _print_report(rep)


@click.group("data")
def data_group() -> None:
    """Outcome data: import public data sets, export the request log."""


@data_group.command("import")
@click.argument("source", type=click.Choice(["routellm", "llmrouter", "csv"]))
@click.argument("path", type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output JSONL.")
@click.option("--benchmark", default="mmlu,gsm8k", show_default=True,
              help="routellm: which benchmarks (comma-separated).")
@click.option("--models-json", type=click.Path(exists=True), default=None,
              help="llmrouter: prices file for costs (default: models.json beside PATH).")
@click.option("--output-tokens", type=int, default=256, show_default=True,
              help="llmrouter: assumed output length for cost estimates.")
@click.option("--prompt-column", default="prompt", show_default=True, help="csv: prompt column.")
@click.option("--category-column", default=None, help="csv: category column.")
@click.option("--split", type=click.Choice(["all", "train", "test"]), default="all",
              show_default=True, help="Keep only rows of this fixed hash split.")
@click.option("--limit", type=int, default=None, help="At most this many rows per file.")
def data_import(source: str, path: str, out: str, benchmark: str, models_json: str | None,
                output_tokens: int, prompt_column: str, category_column: str | None,
                split: str, limit: int | None) -> None:
    """Convert a public outcome data set (PATH: folder or file) to outcome JSONL."""
    from flagman.errors import FlagmanError
    from flagman.learned import importers
    from flagman.learned.datasets import write_jsonl

    try:
        if source == "routellm":
            rows = importers.import_routellm(path, tuple(b.strip() for b in benchmark.split(",")),
                                             limit=limit)
        elif source == "llmrouter":
            mj = models_json or str(Path(path).parent / "models.json")
            rows = importers.import_llmrouter(path, mj if Path(mj).exists() else None,
                                              limit=limit, output_tokens=output_tokens)
        else:
            rows = importers.import_generic_csv(path, prompt_column, category_column)[:limit]
        n = write_jsonl(out, _split_filter(rows, split))
    except (FlagmanError, ValueError, KeyError) as exc:
        _fail(str(exc))
        return
    click.echo(f"wrote {n} outcomes to {out}")


@data_group.command("export")
@click.option("--db", required=True, type=click.Path(exists=True), help="SQLite request log.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output JSONL.")
def data_export(db: str, out: str) -> None:
    """Turn the request log plus feedback scores into outcome JSONL."""
    from flagman.errors import FlagmanError
    from flagman.learned.datasets import write_jsonl
    from flagman.learned.export import export_outcomes

    try:
        rows, st = export_outcomes(db)
        write_jsonl(out, rows)
    except FlagmanError as exc:
        _fail(str(exc))
        return
    click.echo(f"wrote {st.outcomes} outcomes to {out} ({st.requests} requests, "
               f"{st.with_feedback} with feedback, {st.no_prompt} without a stored prompt)")


__all__ = ["calibrate", "data_group", "eval_cmd", "train"]
