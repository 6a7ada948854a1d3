"""Which of MiniLM's six layers the fast `minilm-l4` encoder keeps, and why.

    python bench/minilm_layers.py [--variants 012345,01235,0125,...]

For each subset of layers (in order), the packaged all-MiniLM-L6-v2 is run with
only those layers (sentence-transformers, fp32, mean pooling) and the semantic
step's scoring (top-3 mean + softmax head, `SemanticIndex`) is measured twice:

* **val**: references = a fixed 80% of Banking77's *train* split, queries = the
  other 20%.  This is the figure the choice is made on;
* **test**: references = all of train, queries = the test split (the figure
  reported elsewhere), printed for transparency, not used to choose.

About a minute per subset on this 2-core box.  Measured: keeping the last layer
matters most (it maps into the space the model was trained for); (0, 1, 2, 5)
has the best val accuracy of the 4-layer subsets, within 0.1 point of all six.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from flagman.routing.semantic_core import SemanticIndex  # noqa: E402
from semantic_bench import read_b77  # noqa: E402

VARIANTS = ["012345", "01235", "01245", "0125", "0135", "0145", "0235", "0245", "025", "015",
            "0123", "012"]


class Precomputed:
    """SemanticIndex.build wants an encoder; the embeddings are passed in."""

    name, dim = "precomputed", 384

    def encode(self, texts: list[str]) -> np.ndarray:
        raise AssertionError("embeddings are precomputed")


def accuracy(ref_emb: np.ndarray, ref_labels: list[str], q_emb: np.ndarray,
             gold: list[str]) -> float:
    idx = SemanticIndex.build([""] * len(ref_labels), ref_labels, Precomputed(), emb=ref_emb)
    return float(np.mean([p.best == g for p, g in
                          zip(idx.classify_embeddings(q_emb), gold, strict=True)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="comma-separated layer subsets, e.g. 0125 for layers 0, 1, 2, 5")
    args = ap.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table
    from sentence_transformers import SentenceTransformer

    from flagman.encoders.minilm_torch import packaged_model_dir

    torch.set_num_threads(2)
    model = SentenceTransformer(str(packaged_model_dir()), device="cpu")
    bert: Any = model[0].auto_model  # a BertModel; torch's stubs type it Tensor | Module
    layers = list(bert.encoder.layer)
    train, test = read_b77("train"), read_b77("test")
    labels = np.array(train[1])
    perm = np.random.default_rng(0).permutation(len(labels))
    cut = int(0.8 * len(labels))
    fit_i, val_i = perm[:cut], perm[cut:]

    table = Table(title="Banking77 accuracy of the semantic step by MiniLM layers kept")
    for c in ("layers", "val (train 80/20)", "test", "s"):
        table.add_column(c, justify="left" if c == "layers" else "right")
    for v in args.variants.split(","):
        keep = [int(ch) for ch in v]
        t0 = time.perf_counter()
        bert.encoder.layer = torch.nn.ModuleList([layers[i] for i in keep])
        a = model.encode(train[0], batch_size=128, normalize_embeddings=True)
        b = model.encode(test[0], batch_size=128, normalize_embeddings=True)
        val = accuracy(a[fit_i], list(labels[fit_i]), a[val_i], list(labels[val_i]))
        acc = accuracy(a, train[1], b, test[1])
        table.add_row(", ".join(map(str, keep)), f"{100 * val:.2f}%", f"{100 * acc:.2f}%",
                      f"{time.perf_counter() - t0:.0f}")
        print(f"… {v}: val {val:.4f} test {acc:.4f}", file=sys.stderr, flush=True)
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
