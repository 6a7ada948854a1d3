"""The encoder interface shared by semantic routing and learned routers.

An encoder turns texts into L2-normalised float32 rows.  Specs are short
strings so configs and router artifacts can name them:

    "minilm-l4"              4 of the packaged all-MiniLM-L6-v2's layers (the semantic default)
    "minilm"                 the whole packaged all-MiniLM-L6-v2 (offline), int8 ONNX
    "tfidf"                  model-free TF-IDF fitted on the reference texts
    "openai:<model>@<group>" an OpenAI-compatible embeddings endpoint (a model group)
    "package.module:Class"   a user's own

and more in `flagman.encoders.registry` (torch, fp32, static table).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    #: stable name written into artifacts so a router refuses a mismatched encoder
    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return an array of shape (len(texts), dim), float32, rows L2-normalised."""
        ...
