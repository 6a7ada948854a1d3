"""Static token embeddings distilled from MiniLM: mean of per-token vectors.

Tens of microseconds a prompt and no model runtime at all, at the cost of
word order and context (see `flagman.encoders.distill` for how the table is
made).  The table ships with flagman under ``flagman/data/encoders``; the
tokenizer is the packaged MiniLM's, so token ids match the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from flagman.encoders.minilm_torch import packaged_model_dir

PACKAGED = (
    Path(__file__).resolve().parent.parent / "data" / "encoders" / "minilm-static.safetensors"
)
MAX_TOKENS = 512


class StaticEncoder:
    """Weighted-mean of static token vectors, L2-normalised."""

    fast = True

    def __init__(self, table: np.ndarray, tokenizer: Any, *, name: str = "minilm-static") -> None:
        self.table = np.ascontiguousarray(table, dtype=np.float32)
        self.dim = int(self.table.shape[1])
        self.name = name
        self.fingerprint = ""  # set by `packaged`: caches of embeddings key on it
        self._tok = tokenizer

    @classmethod
    def packaged(cls, path: Path | None = None) -> StaticEncoder:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        path = path or PACKAGED
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is missing: build it with `python -m flagman.encoders.distill`"
            )
        arrays = load_file(str(path))
        table = arrays["embeddings"].astype(np.float32) * arrays["scales"][:, None]
        tok = Tokenizer.from_file(str(packaged_model_dir() / "tokenizer.json"))
        tok.enable_truncation(MAX_TOKENS)
        tok.no_padding()
        if tok.get_vocab_size() != len(table):
            raise ValueError(f"{path}: table has {len(table)} rows, tokenizer "
                             f"{tok.get_vocab_size()} tokens")
        enc = cls(table, tok)
        enc.fingerprint = f"{path.name}:{path.stat().st_size}"
        return enc

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encs = self._tok.encode_batch(texts, add_special_tokens=False)
        for i, e in enumerate(encs):
            if e.ids:
                out[i] = self.table[e.ids].mean(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)
