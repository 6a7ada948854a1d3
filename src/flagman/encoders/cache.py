"""An LRU cache of embeddings keyed by text, around any encoder.

Gateways see the same prompts again and again (retries, health probes,
templated system prompts, fan-out of one question to many users); a hit costs
a dict lookup instead of a model call.  The cache lives on the wrapper
instance, never at module level, so two routers do not share or race on it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from flagman.encoders.base import Encoder


class CachedEncoder:
    """Wraps `inner`; same `name` and `dim`, so artifacts cannot tell the difference."""

    def __init__(self, inner: Encoder, *, maxsize: int = 4096) -> None:
        if maxsize <= 0:
            raise ValueError("maxsize must be positive")
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._rows: OrderedDict[str, np.ndarray] = OrderedDict()
        # encode may run in worker threads (asyncio.to_thread) while the loop reads
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, t in enumerate(texts):
                row = self._rows.get(t)
                if row is None:
                    missing.setdefault(t, []).append(i)
                else:
                    self._rows.move_to_end(t)
                    out[i] = row
                    self.hits += 1
        if missing:
            todo = list(missing)
            rows = self.inner.encode(todo)
            with self._lock:
                for t, row in zip(todo, rows, strict=True):
                    out[missing[t]] = row
                    self.misses += len(missing[t])
                    self._rows[t] = row.copy()
                    self._rows.move_to_end(t)
                while len(self._rows) > self.maxsize:
                    self._rows.popitem(last=False)
        return out

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
            self.hits = self.misses = 0

    def __getattr__(self, attr: str) -> object:
        # fit / to_state / aclose of the wrapped encoder stay reachable
        if attr == "inner":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(attr)
        value = getattr(self.inner, attr)
        if attr == "fit" and callable(value):
            return self._wrap_fit(value)
        return value

    def _wrap_fit(self, fit: Callable[[list[str]], object]) -> Callable[[list[str]], object]:
        """Refitting changes every embedding: drop the cache and follow the new dim."""

        def wrapped(texts: list[str]) -> CachedEncoder:
            fit(texts)
            self.clear()
            self.dim = self.inner.dim
            return self

        return wrapped
