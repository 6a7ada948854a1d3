"""Importers from public outcome data sets into `Outcome` records.

* RouteLLM response CSVs (MMLU per-subject files, GSM8K): one boolean column per
  model; prompts listed in `contaminated_prompts.jsonl` (field `eval_prompt`) are
  dropped because they overlap RouteLLM's own training data.
* LLMRouter JSON (`question`, `scores`): costs come from `models.json` prices and
  an estimated token count, so cost metrics work on it.
* A generic CSV: a prompt column and one score column per model.
"""

from __future__ import annotations

import ast
import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from flagman.learned.datasets import DataError, Outcome

#: output length assumed for cost estimates when a data set has no responses (tokens)
DEFAULT_OUTPUT_TOKENS = 256
CHARS_PER_TOKEN = 4


def _csv_rows(path: Path) -> Iterator[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)  # GSM8K rows carry whole responses
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            yield from csv.DictReader(fh)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None


def _bool_or_float(v: str, where: str) -> float:
    s = v.strip().lower()
    if s in ("true", "yes"):
        return 1.0
    if s in ("false", "no"):
        return 0.0
    try:
        f = float(s)
    except ValueError:
        raise DataError(f"{where}: not a score: {v!r}") from None
    if not 0.0 <= f <= 1.0:
        raise DataError(f"{where}: score {f} is outside [0, 1]")
    return f


def contaminated_prompts(path: Path) -> set[str]:
    """The `eval_prompt` values of a RouteLLM contamination list (empty if absent)."""
    if not path.exists():
        return set()
    out: set[str] = set()
    for line in path.read_bytes().splitlines():
        if line.strip():
            obj = orjson.loads(line)
            if isinstance(obj.get("eval_prompt"), str):
                out.add(obj["eval_prompt"])
    return out


def _routellm_file(path: Path, category: str, drop: set[str], limit: int | None,
                   id_prefix: str) -> list[Outcome]:
    out: list[Outcome] = []
    for i, row in enumerate(_csv_rows(path)):
        if limit is not None and i >= limit:
            break
        prompt = row.get("prompt")
        if prompt is None:
            raise DataError(f"{path}: no 'prompt' column")
        if prompt in drop:
            continue
        scores = {k: _bool_or_float(v, f"{path}:{i + 2}: {k}") for k, v in row.items()
                  if k != "prompt" and k is not None and not k.endswith("_response")}
        out.append(Outcome(prompt=prompt, scores=scores, id=f"{id_prefix}-{i}",
                           category=category))
    return out


def import_routellm(root: str | Path, benchmarks: tuple[str, ...] = ("mmlu", "gsm8k"),
                    limit: int | None = None) -> list[Outcome]:
    """Read RouteLLM's MMLU and/or GSM8K response CSVs under `root`.

    Categories are `mmlu/<subject>` and `gsm8k`; `limit` caps rows per file (tests).
    """
    root = Path(root)
    out: list[Outcome] = []
    if "mmlu" in benchmarks:
        drop = contaminated_prompts(root / "mmlu" / "contaminated_prompts.jsonl")
        files = sorted((root / "mmlu" / "responses").glob("*.csv"))
        if not files:
            raise DataError(f"{root}/mmlu/responses: no CSV files")
        for f in files:
            subject = f.stem.removeprefix("mmlu_")
            out += _routellm_file(f, f"mmlu/{subject}", drop, limit, f"mmlu-{subject}")
    if "gsm8k" in benchmarks:
        drop = contaminated_prompts(root / "gsm8k" / "contaminated_prompts.jsonl")
        out += _routellm_file(root / "gsm8k" / "gsm8k_responses.csv", "gsm8k", drop, limit,
                              "gsm8k")
    return out


def estimate_cost(prompt: str, price_in: float, price_out: float,
                  output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> float:
    """USD for one call: prompt tokens ~ chars/4, a fixed output length; prices per 1M."""
    tokens_in = (len(prompt) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN
    return (tokens_in * price_in + output_tokens * price_out) / 1e6


def load_prices(path: str | Path) -> dict[str, tuple[float, float]]:
    """LLMRouter models.json → {model: (input USD/1M, output USD/1M)}."""
    data = orjson.loads(Path(path).read_bytes())
    return {k: (float(v["input_price"]), float(v["output_price"])) for k, v in data.items()}


def _llm_scores(raw: Any, where: str) -> dict[str, float]:
    if isinstance(raw, str):  # train.json stores a Python dict repr
        try:
            raw = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise DataError(f"{where}: unreadable scores") from None
    if not isinstance(raw, dict):
        raise DataError(f"{where}: scores must be an object")
    return {str(k): float(v) for k, v in raw.items()}


def import_llmrouter(path: str | Path, models_json: str | Path | None = None,
                     limit: int | None = None,
                     output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> list[Outcome]:
    """Read an LLMRouter `train.json`/`test.json`; costs from `models.json` when given."""
    p = Path(path)
    try:
        rows = orjson.loads(p.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise DataError(f"{p}: cannot read JSON: {exc}") from None
    prices = load_prices(models_json) if models_json else {}
    out: list[Outcome] = []
    for i, row in enumerate(rows[:limit] if limit else rows):
        q = row.get("question")
        if not isinstance(q, str):
            raise DataError(f"{p}[{i}]: no 'question' string")
        scores = _llm_scores(row.get("scores"), f"{p}[{i}]")
        costs = None
        if prices and all(m in prices for m in scores):
            costs = {m: estimate_cost(q, *prices[m], output_tokens=output_tokens)
                     for m in scores}
        cat = row.get("cluster_id")
        out.append(Outcome(prompt=q, scores=scores, id=f"{p.stem}-{i}", costs=costs,
                           category=f"cluster{cat}" if cat is not None else None))
    return out


def import_generic_csv(path: str | Path, prompt_column: str = "prompt",
                       category_column: str | None = None,
                       models: list[str] | None = None) -> list[Outcome]:
    """A CSV with a prompt column and one score column per model (all others by default)."""
    p = Path(path)
    out: list[Outcome] = []
    for i, row in enumerate(_csv_rows(p)):
        if prompt_column not in row:
            raise DataError(f"{p}: no {prompt_column!r} column (columns: {', '.join(row)})")
        skip = {prompt_column, category_column, "id"}
        cols = models or [k for k in row if k not in skip and k is not None]
        scores = {}
        for m in cols:
            v = row.get(m)
            if v is None:
                raise DataError(f"{p}: no column {m!r}")
            if v.strip():
                scores[m] = _bool_or_float(v, f"{p}:{i + 2}: {m}")
        cat = row.get(category_column) if category_column else None
        out.append(Outcome(prompt=row[prompt_column], scores=scores,
                           id=row.get("id") or f"{p.stem}-{i}", category=cat or None))
    return out
