"""The encoder interface shared by semantic routing and learned routers.

An encoder turns texts into L2-normalised float32 rows.  Specs are short
strings so configs and router artifacts can name them:

    "minilm"                 the packaged all-MiniLM-L6-v2 (offline), fastest path
    "tfidf"                  model-free TF-IDF fitted on the reference texts
    "openai:<model>@<group>" an OpenAI-compatible embeddings endpoint (a model group)
    "package.module:Class"   a user's own
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
