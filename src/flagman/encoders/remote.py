"""An OpenAI-compatible ``/embeddings`` endpoint as an encoder.

For teams that already pay for an embedding model (or run one behind vLLM,
TEI, Ollama …) and want routing to use it.  The endpoint is either a URL or a
model group of the config, so its key stays an ``env:`` reference there.
The call is blocking; the semantic step runs it in a worker thread.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from flagman.errors import ConfigError

if TYPE_CHECKING:
    from flagman.config import Config


def parse_openai_spec(spec: str) -> tuple[str, str]:
    """``openai:<model>@<base_url-or-group>`` → (model, where)."""
    body = spec.removeprefix("openai:")
    model, sep, where = body.rpartition("@")
    if not sep or not model or not where:
        raise ConfigError(
            f"encoder {spec!r}: expected 'openai:<model>@<base_url or model group>'"
        )
    return model, where


def _endpoint(where: str, config: Config | None) -> tuple[str, str | None]:
    """Base URL and key: a URL is taken as is (key from OPENAI_API_KEY), a group from config."""
    if where.startswith(("http://", "https://")):
        return where, os.environ.get("OPENAI_API_KEY")
    if config is None:
        raise ConfigError(f"encoder endpoint {where!r} is not a URL and no config names groups")
    for dep in config.models:
        if dep.name == where:
            if not dep.base_url:
                raise ConfigError(f"model group {where!r} has no base_url to send embeddings to")
            key = dep.api_key.get_secret_value() if dep.api_key is not None else None
            return dep.base_url, key
    raise ConfigError(f"encoder endpoint {where!r}: unknown model group")


class OpenAIEmbeddingEncoder:
    """Calls ``POST {base_url}/embeddings``; re-normalises rows (not all servers do)."""

    def __init__(
        self, model: str, base_url: str, api_key: str | None = None, *, timeout: float = 30.0,
    ) -> None:
        from openai import OpenAI

        self.model = model
        self.base_url = base_url
        self.name = f"openai:{model}@{base_url}"
        self._client: Any = OpenAI(
            base_url=base_url, api_key=api_key or "unused", timeout=timeout, max_retries=1
        )
        self._dim: int | None = None  # known after a first call: probed lazily

    @classmethod
    def from_spec(cls, spec: str, config: Config | None = None) -> OpenAIEmbeddingEncoder:
        model, where = parse_openai_spec(spec)
        base_url, key = _endpoint(where, config)
        return cls(model, base_url, key)

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.encode(["dimension probe"]).shape[1])
        return self._dim

    @dim.setter
    def dim(self, value: int) -> None:  # the Encoder protocol declares a plain attribute
        self._dim = value

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        resp = self._client.embeddings.create(model=self.model, input=texts)
        rows = sorted(resp.data, key=lambda d: d.index)
        out = np.asarray([r.embedding for r in rows], dtype=np.float32)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        self._dim = out.shape[1]
        return out

    def close(self) -> None:
        self._client.close()
