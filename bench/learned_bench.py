"""Learned-router figures on the shared public data, printed as a table.

    python bench/learned_bench.py [--encoder tfidf] [--routers classifier,knn,sw_ranking,mf]

Rows: GPT-4 vs Mixtral in distribution (MMLU, GSM8K test splits; trained on the
train split of both), cross-benchmark (trained on one, tested on the other),
LLMRouter's 9 models (train.json → test.json, costs from models.json prices and
a fixed 256-token output), and scoring latency.  Splits are the fixed 80/20 by
prompt hash (`flagman.learned.datasets.split_of`); contaminated prompts are
dropped by the importer.  Dense-encoder embeddings of the shared prompts are
cached under /tmp/flagman-cache (bench only).  The equivalent `flagman`
commands are printed for every row.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from flagman.learned.datasets import Dataset, Outcome, split_of  # noqa: E402
from flagman.learned.evaluate import many_report, pair_report  # noqa: E402
from flagman.learned.importers import import_llmrouter, import_routellm  # noqa: E402
from flagman.learned.routers import Router  # noqa: E402
from flagman.learned.train import train_router  # noqa: E402

SHARED = ROOT / ".." / "shared" / "data"
STRONG, WEAK = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"
CACHE = Path(os.environ.get("FLAGMAN_BENCH_CACHE", "/tmp/flagman-cache"))


def cached_embeddings(spec: str, texts: list[str]) -> np.ndarray:
    """Embeddings of `texts` by encoder `spec`, from/into an on-disk cache (bench only)."""
    from flagman.encoders.registry import load_encoder

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"emb-{spec.replace('/', '_')}.npz"
    table: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            table = dict(zip(z["keys"].tolist(), z["vecs"], strict=True))
    keys = [hashlib.sha256(t.encode()).hexdigest()[:16] for t in texts]
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in table}.items())
    if missing:
        print(f"  encoding {len(missing)} texts with {spec} …", file=sys.stderr, flush=True)
        vecs = load_encoder(spec).encode([t for _, t in missing])
        table.update(zip([k for k, _ in missing], vecs, strict=True))
        np.savez(path, keys=np.array(list(table)), vecs=np.stack(list(table.values())))
    return np.stack([table[k] for k in keys]).astype(np.float32)


def precomputed(encoder: str, texts: list[str]) -> dict[str, np.ndarray] | None:
    parts = [p for p in encoder.split("+") if p != "tfidf"]
    return {p: cached_embeddings(p, texts) for p in parts} or None


def fit(rows: list[Outcome], kind: str, encoder: str, models: list[str] | None = None,
        pair: tuple[str, str] | None = None) -> Router:
    texts = [o.prompt for o in rows]
    return train_router(Dataset(rows), kind, models=models, text=encoder, pair=pair,
                        precomputed=precomputed(encoder, texts))


def features(router: Router, rows: list[Outcome], encoder: str) -> Any:
    texts = [o.prompt for o in rows]
    return router.featurizer.transform(texts, precomputed(encoder, texts))


def pair_apgr(router: Router, rows: list[Outcome], encoder: str) -> float:
    f = features(router, rows, encoder)
    s = router.pair_scores(f, router.index(STRONG), router.index(WEAK))
    return float(pair_report(s, rows, STRONG, WEAK)["apgr"])


def split(rows: list[Outcome], which: str) -> list[Outcome]:
    return [o for o in rows if split_of(o.prompt) == which]


def routellm_rows(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    """APGR per router: in distribution and cross-benchmark."""
    allr = import_routellm(SHARED / "routellm")
    mmlu = [o for o in allr if o.category != "gsm8k"]
    gsm = [o for o in allr if o.category == "gsm8k"]
    out: dict[str, dict[str, str]] = {}
    for kind in args.routers:
        t0 = time.perf_counter()
        r = fit(split(allr, "train"), kind, args.encoder, [STRONG, WEAK], (STRONG, WEAK))
        out.setdefault("MMLU APGR (in distribution)", {})[kind] = \
            f"{pair_apgr(r, split(mmlu, 'test'), args.encoder):.3f}"
        out.setdefault("GSM8K APGR (in distribution)", {})[kind] = \
            f"{pair_apgr(r, split(gsm, 'test'), args.encoder):.3f}"
        r = fit(split(mmlu, "train"), kind, args.encoder, [STRONG, WEAK], (STRONG, WEAK))
        out.setdefault("GSM8K APGR (trained on MMLU only)", {})[kind] = \
            f"{pair_apgr(r, split(gsm, 'test'), args.encoder):.3f}"
        r = fit(split(gsm, "train"), kind, args.encoder, [STRONG, WEAK], (STRONG, WEAK))
        out.setdefault("MMLU APGR (trained on GSM8K only)", {})[kind] = \
            f"{pair_apgr(r, split(mmlu, 'test'), args.encoder):.3f}"
        print(f"  {kind}: RouteLLM rows in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    return out


def llmrouter_rows(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    d = SHARED / "llmrouter"
    tr = import_llmrouter(d / "train.json", d / "models.json")
    te = import_llmrouter(d / "test.json", d / "models.json")
    out: dict[str, dict[str, str]] = {}
    for kind in args.routers:
        r = fit(tr, kind, args.encoder)
        rep = many_report(r.predict(features(r, te, args.encoder)), te, r.models)
        b = rep["best_single"]
        out.setdefault(f"LLMRouter accuracy at {b['name']}'s cost ({b['accuracy']:.3f})",
                       {})[kind] = f"{rep['accuracy']:.3f}"
        out.setdefault("LLMRouter cost share to match it", {})[kind] = f"{rep['cost_share']:.1%}"
        out.setdefault(f"LLMRouter AIQ (oracle {rep['oracle']['aiq']:.3f}, best single "
                       f"{max(s['aiq'] for s in rep['singles']):.3f})", {})[kind] = \
            f"{rep['aiq']:.4f}"
    return out


def latency_rows(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    """Scoring one prompt end to end (features incl. embedding + router), and batches."""
    allr = import_routellm(SHARED / "routellm")
    tr, te = split(allr, "train"), split(allr, "test")
    prompts = [o.prompt for o in te[:400]]
    out: dict[str, dict[str, str]] = {}
    for kind in args.routers:
        r = fit(tr, kind, args.encoder, [STRONG, WEAK], (STRONG, WEAK))
        r.strong_scores(prompts[:5])  # warm-up (loads encoders)
        times = []
        for p in prompts[:200]:
            t = time.perf_counter()
            r.strong_scores([p])
            times.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        r.strong_scores(prompts)
        rate = len(prompts) / (time.perf_counter() - t)
        out.setdefault("scoring p50, one prompt (ms)", {})[kind] = \
            f"{statistics.median(times):.2f}"
        out.setdefault("scoring throughput, batch of 400 (prompts/s)", {})[kind] = f"{rate:.0f}"
    return out


def commands(args: argparse.Namespace) -> list[str]:
    enc = args.encoder
    return [
        "flagman data import routellm ../shared/data/routellm --split train --out rl-train.jsonl",
        "flagman data import routellm ../shared/data/routellm --benchmark mmlu --split test "
        "--out mmlu-test.jsonl",
        "flagman data import routellm ../shared/data/routellm --benchmark gsm8k --split test "
        "--out gsm8k-test.jsonl",
        f"flagman train --data rl-train.jsonl --router KIND --encoder {enc} "
        f"--strong {STRONG} --weak {WEAK} --out r-KIND",
        f"flagman eval --router r-KIND --data mmlu-test.jsonl --strong {STRONG} --weak {WEAK}",
        f"flagman eval --router r-KIND --data gsm8k-test.jsonl --strong {STRONG} --weak {WEAK}",
        "# cross-benchmark: import with --benchmark mmlu (or gsm8k) --split train, train, "
        "eval on the other test file",
        "flagman data import llmrouter ../shared/data/llmrouter/train.json --out llm-train.jsonl",
        "flagman data import llmrouter ../shared/data/llmrouter/test.json --out llm-test.jsonl",
        f"flagman train --data llm-train.jsonl --router KIND --encoder {enc} --out l-KIND",
        "flagman eval --router l-KIND --data llm-test.jsonl",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", default="tfidf",
                    help="text features: tfidf, minilm, tfidf+minilm (default tfidf)")
    ap.add_argument("--routers", default="classifier,knn,sw_ranking,mf",
                    help="comma-separated router kinds")
    ap.add_argument("--skip", default="", help="comma-separated: routellm,llmrouter,latency")
    args = ap.parse_args()
    args.routers = [r.strip() for r in args.routers.split(",") if r.strip()]
    skip = set(args.skip.split(","))
    table: dict[str, dict[str, str]] = {}
    if "routellm" not in skip:
        table.update(routellm_rows(args))
    if "llmrouter" not in skip:
        table.update(llmrouter_rows(args))
    if "latency" not in skip:
        table.update(latency_rows(args))
    w = max(len(k) for k in table) if table else 10
    print(f"\nencoder: {args.encoder}")
    print(f"{'figure':{w}s} " + " ".join(f"{k:>11s}" for k in args.routers))
    for name, vals in table.items():
        print(f"{name:{w}s} " + " ".join(f"{vals.get(k, '-'):>11s}" for k in args.routers))
    print("\nreproduce with (KIND = " + ", ".join(args.routers) + "):")
    for c in commands(args):
        print("  " + c)


if __name__ == "__main__":
    main()
