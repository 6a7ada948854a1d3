"""Encoder specs → encoders, built lazily and shared through `resources`.

Specs are short strings so a YAML file or a router artifact can name an
encoder (the uvicorn import-string way for users' own):

    minilm              the packaged all-MiniLM-L6-v2, whole, on its fastest path
    minilm-l4           4 of its 6 layers (0, 1, 2, 5), int8: the semantic step's default
    minilm-torch        plain sentence-transformers (the reference, ~13 ms a query)
    minilm-onnx         ONNX Runtime, fp32, exported locally from the packaged weights
    minilm-onnx-int8    same, dynamically quantised to int8
    minilm-static       static token embeddings distilled from MiniLM (model2vec-style)
    tfidf               TF-IDF, unfitted: call ``fit(texts)`` first
    openai:<model>@<base_url or model group>
    package.module:Class  (or a factory function), called with no arguments

Nothing is loaded at import; models are built on first use and cached in the
caller's `resources` dict (a step's BuildContext shares one per config), so
ten semantic steps naming "minilm" load it once.  TF-IDF is never shared: each
user fits its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flagman.encoders.base import Encoder
from flagman.encoders.cache import CachedEncoder
from flagman.errors import ConfigError

if TYPE_CHECKING:
    from flagman.config import Config

#: what "minilm" means: the whole model on its fastest path (int8 ONNX)
DEFAULT_MINILM = "minilm-onnx-int8"
#: MiniLM's layers kept by "minilm-l4", the semantic step's default.  Dropping
#: middle layers and keeping the last keeps the output space the model was
#: trained for; chosen among 4-layer subsets by accuracy on a split of
#: Banking77's *train* set (bench/semantic_bench.py, docs/semantic.md)
LITE_LAYERS = (0, 1, 2, 5)
#: the semantic step's default encoder: 4 of MiniLM's 6 layers: a third less encoder
#: time, 11% less per decision (2.35 against 2.65 ms, bench/semantic_bench.py)
SEMANTIC_DEFAULT = "minilm-l4"


def _minilm_torch() -> Encoder:
    from flagman.encoders.minilm_torch import MiniLMTorchEncoder

    return MiniLMTorchEncoder()


def _minilm_onnx(quantized: bool, layers: tuple[int, ...] | None = None) -> Callable[[], Encoder]:
    def build() -> Encoder:
        from flagman.encoders.minilm_onnx import MiniLMOnnxEncoder

        return MiniLMOnnxEncoder(quantized=quantized, layers=layers)

    return build


def _minilm_static() -> Encoder:
    from flagman.encoders.static import StaticEncoder

    return StaticEncoder.packaged()


def builtin_encoders() -> dict[str, Callable[[], Encoder]]:
    """Name → factory; a function, not a module-level dict, so nothing is mutable."""
    return {
        "minilm-torch": _minilm_torch,
        "minilm-onnx": _minilm_onnx(False),
        "minilm-onnx-int8": _minilm_onnx(True),
        "minilm-l4": _minilm_onnx(True, LITE_LAYERS),
        "minilm-static": _minilm_static,
    }


def _user_encoder(spec: str) -> Encoder:
    from flagman.routing.base import import_string

    try:
        obj = import_string(spec)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"encoder {spec!r}: cannot load it: {exc}") from None
    enc = obj() if callable(obj) and not isinstance(obj, Encoder) else obj
    if not isinstance(enc, Encoder):
        raise ConfigError(f"encoder {spec!r}: needs name, dim and encode(texts)")
    return enc


def _build(spec: str, config: Config | None) -> Encoder:
    if spec == "tfidf":
        from flagman.encoders.tfidf import TfidfEncoder

        return TfidfEncoder()
    factory = builtin_encoders().get(spec)
    if factory is not None:
        return factory()
    if spec.startswith("openai:"):
        from flagman.encoders.remote import OpenAIEmbeddingEncoder

        return OpenAIEmbeddingEncoder.from_spec(spec, config)
    if ":" in spec:
        return _user_encoder(spec)
    known = ", ".join(["minilm", *builtin_encoders(), "tfidf"])
    raise ConfigError(
        f"unknown encoder {spec!r} (known: {known}, 'openai:<model>@<url or group>', "
        "or 'package.module:Class')"
    )


def is_fast(enc: Encoder) -> bool:
    """Encoders that declare `fast = True` may run on the event loop; others go to a thread."""
    return getattr(enc, "fast", False) is True


def needs_fit(enc: Encoder) -> bool:
    """True for encoders (TF-IDF) that must learn from the reference texts first."""
    fitted = getattr(enc, "fitted", None)
    return fitted is False


def load_encoder(
    spec: str,
    *,
    resources: dict[str, Any] | None = None,
    config: Config | None = None,
    cache: int = 0,
) -> Encoder:
    """Build (or reuse from `resources`) the encoder named by `spec`.

    `cache` > 0 wraps it in an LRU embedding cache of that many texts; cached
    and uncached encoders are stored under different keys.
    """
    spec = spec.strip()
    if spec == "minilm":  # an alias: share one session with the explicit spec
        spec = DEFAULT_MINILM
    shareable = spec != "tfidf"
    key = f"encoder:{spec}" + (f"#cache={cache}" if cache else "")
    if shareable and resources is not None and key in resources:
        return resources[key]  # type: ignore[no-any-return]
    enc: Encoder
    if cache and shareable and resources is not None:
        enc = CachedEncoder(load_encoder(spec, resources=resources, config=config), maxsize=cache)
    else:
        enc = _build(spec, config)
        if cache:
            enc = CachedEncoder(enc, maxsize=cache)
    if shareable and resources is not None:
        resources[key] = enc
    return enc
