"""The semantic routing step: send a prompt where its meaning matches.

YAML (a step of a router's ``steps:`` list)::

    - semantic:
        encoder: minilm-l4           # optional (the default); any encoder spec, see
                                     # flagman.encoders.registry
        routes: routes/support.yaml  # a file, resolved against the config's folder,
                                     # or an inline list of routes (same shape as the file)
        top_k: 3                     # a route's similarity = mean of its top-k utterance cosines
        threshold: 0.4               # default threshold for routes without their own
        head: true                   # blend in a softmax head trained on the utterances
        head_weight: 0.2
        candidates: 8                # the head shortlists this many routes for the
                                     # similarity pass (0 = every route)
        fallback: next               # out of scope → next step; or a model group / router
        cache: 2048                  # LRU of query embeddings (0 = off)

Routes file: a list of ``{name, to, threshold (optional), utterances: [...]}``;
``flagman routes fit`` writes fitted thresholds back into it.

Every decision is traced: ``matched`` (route, to, score, threshold, top) or
``out_of_scope`` (best, score, threshold, top, and ``to`` when a fallback
model takes it).  The built index (embeddings + head) is cached on disk under
``$FLAGMAN_CACHE_DIR/semantic`` keyed by a hash of encoder, parameters and
utterances, so a restart with 10,000 utterances does not re-encode them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

import numpy as np

from flagman.encoders.base import Encoder
from flagman.encoders.registry import SEMANTIC_DEFAULT, is_fast, load_encoder, needs_fit
from flagman.errors import ConfigError
from flagman.routing.base import BuildContext, Step
from flagman.routing.semantic_core import IndexParams, SemanticIndex
from flagman.routing.semantic_routes import Route, load_routes_file, parse_routes
from flagman.types import ChatRequest, Decision

log = logging.getLogger(__name__)

STEP_KEYS = {"encoder", "routes", "top_k", "threshold", "head", "head_weight", "candidates",
             "fallback", "cache", "index_cache"}


def _number(spec: dict[str, Any], key: str, default: float, ctx: BuildContext,
            lo: float, hi: float) -> float:
    v = spec.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
        raise ctx.error(f"must be a number in [{lo}, {hi}]", f".{key}")
    return float(v)


def _index_key(enc: Encoder, params: IndexParams, routes: list[Route]) -> str:
    """What the stored arrays depend on: the vectors and the head's training.

    Not top_k, thresholds or the shortlist size: they act at scoring time, and
    editing one must not re-encode 10,000 utterances on the next reload.
    """
    fingerprint = str(getattr(enc, "fingerprint", ""))  # the model file, for local models
    head = [params.head_weight > 0, params.head_c, params.min_head_examples]
    blob = json.dumps(
        [enc.name, fingerprint, head, [[r.name, r.utterances] for r in routes]], sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def build_index(
    routes: list[Route], enc: Encoder, params: IndexParams, *, disk_cache: bool = True
) -> SemanticIndex:
    """Fit the encoder if it must be, then load the cached index or build and cache it."""
    texts = [u for r in routes for u in r.utterances]
    labels = [r.name for r in routes for _ in r.utterances]
    if needs_fit(enc):
        enc.fit(texts)  # type: ignore[attr-defined]
    thresholds = {r.name: r.threshold for r in routes if r.threshold is not None}
    path = None
    if disk_cache:
        from flagman.encoders.minilm_onnx import cache_dir

        path = cache_dir().parent / "semantic" / f"{_index_key(enc, params, routes)}.npz"
        if path.exists():
            try:
                idx = SemanticIndex.load(path)
                idx.params = params  # scoring-time parameters are today's, not the file's
                idx.thresholds = np.array(
                    [thresholds.get(r, params.default_threshold) for r in idx.routes], np.float32
                )
                return idx
            except (OSError, ValueError, KeyError) as exc:
                log.warning("ignoring unreadable semantic index cache %s: %s", path, exc)
    idx = SemanticIndex.build(texts, labels, enc, params=params, thresholds=thresholds)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            idx.save(path)
        except OSError as exc:  # a read-only home must not stop the gateway
            log.warning("cannot cache semantic index at %s: %s", path, exc)
    return idx


class SemanticStep(Step):
    """Embeds the last user message and picks the best route above its threshold."""

    kind = "semantic"

    def __init__(self, spec: Any, ctx: BuildContext) -> None:
        super().__init__(spec, ctx)
        if not isinstance(spec, dict):
            raise ctx.error("the semantic step takes a mapping (encoder, routes, …)")
        unknown = set(spec) - STEP_KEYS
        if unknown:
            raise ctx.error(f"unknown key(s) {', '.join(sorted(unknown))}")
        self.routes = self._routes(spec, ctx)
        self.targets = {r.name: ctx.check_target(str(r.to), f".routes[{i}].to")
                        for i, r in enumerate(self.routes)}
        fallback = spec.get("fallback", "next")
        if not isinstance(fallback, str) or not fallback:
            raise ctx.error("must be 'next' or a model name", ".fallback")
        self.fallback = None if fallback == "next" else ctx.check_target(fallback, ".fallback")
        top_k = spec.get("top_k", 3)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ctx.error("must be a positive integer", ".top_k")
        use_head = spec.get("head", True)
        if not isinstance(use_head, bool):
            raise ctx.error("must be true or false", ".head")
        candidates = spec.get("candidates", 8)
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 0:
            raise ctx.error("must be a non-negative integer (0 = every route)", ".candidates")
        self.params = IndexParams(
            top_k=top_k,
            default_threshold=_number(spec, "threshold", IndexParams().default_threshold, ctx,
                                      -1.0, 1.0),
            head_weight=_number(spec, "head_weight", 0.2, ctx, 0.0, 1.0) if use_head else 0.0,
            candidates=candidates,
        )
        enc_spec = spec.get("encoder", SEMANTIC_DEFAULT)
        cache = spec.get("cache", 2048)
        if not isinstance(enc_spec, str) or isinstance(cache, bool) or not isinstance(cache, int):
            raise ctx.error("encoder must be a spec string and cache an integer")
        try:
            self.encoder = load_encoder(
                enc_spec, resources=ctx.resources, config=ctx.config, cache=max(cache, 0)
            )
            self.index = build_index(self.routes, self.encoder, self.params,
                                     disk_cache=bool(spec.get("index_cache", True)))
        except ConfigError as exc:
            raise ctx.error(str(exc), ".encoder") from None
        except (ImportError, OSError, RuntimeError, ValueError) as exc:
            raise ctx.error(f"cannot build the semantic index: {exc}") from None
        self.threaded = not is_fast(self.encoder)

    @staticmethod
    def _routes(spec: dict[str, Any], ctx: BuildContext) -> list[Route]:
        src = spec.get("routes")
        if isinstance(src, str):
            return load_routes_file(ctx.config.resolve_path(src))
        if isinstance(src, list):
            return parse_routes(src, f"{ctx.path}.routes")
        raise ctx.error("a routes file path or an inline list of routes is required", ".routes")

    async def decide(self, req: ChatRequest, decision: Decision) -> str | None:
        text = req.last_user_text
        if not text.strip():
            decision.trace(self.kind, "passed", reason="no user text")
            return None
        if self.threaded:
            emb = await asyncio.to_thread(self.encoder.encode, [text])
        else:
            emb = self.encoder.encode([text])
        pred = self.index.classify_embeddings(emb)[0]
        top = pred.top(self.index.routes)
        detail = {"score": round(pred.score, 4), "threshold": round(pred.threshold, 4),
                  "top": top}
        decision.scores["semantic"] = top
        if pred.route is not None:
            to = self.targets[pred.route]
            decision.trace(self.kind, "matched", route=pred.route, to=to, **detail)
            return to
        if self.fallback is not None:
            decision.trace(self.kind, "out_of_scope", best=pred.best, to=self.fallback, **detail)
            return self.fallback
        decision.trace(self.kind, "out_of_scope", best=pred.best, **detail)
        return None
