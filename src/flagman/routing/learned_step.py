"""The `learned` routing step: a trained router picks the model by predicted quality.

Two models (P(strong needed) against a threshold)::

    - learned: {router: default, threshold: 0.3, strong: gpt-4o, weak: gpt-4o-mini}

Without `threshold`, the artifact's calibrated default (its `params.threshold`,
set by `flagman calibrate --write`) or 0.5 is used.

Many models (predicted quality per model, then a policy)::

    - learned:
        router: routers/mine
        policy: {lambda: 0.5}          # or {target: 0.8}
        models: {artifact-model-name: config-group-name, ...}

The router artifact is loaded when the config is built (so a bad folder is a
config error) through a `RouterCache` shared in `ctx.resources`.  Its files are
in the step's `watched` list: the gateway's config watcher reloads when they
change, off the event loop and with every check redone, so replacing the folder
hot-swaps the router and a half-written one is rejected like a broken config.
"""

from __future__ import annotations

import asyncio
import copy
import functools
from typing import Any

import numpy as np

from flagman.encoders.registry import is_fast, load_encoder
from flagman.errors import ConfigError
from flagman.learned.artifacts import META_FILE, WEIGHTS_FILE, RouterCache, resolve_router_path
from flagman.learned.importers import DEFAULT_OUTPUT_TOKENS
from flagman.learned.policy import Policy, choose
from flagman.learned.routers import Router
from flagman.routing.base import BuildContext, Step
from flagman.types import ChatRequest, Decision

CACHE_KEY = "learned:router-cache"
_PAIR_KEYS = {"router", "threshold", "strong", "weak", "pair"}
_MANY_KEYS = {"router", "policy", "models"}


def router_cache(ctx: BuildContext) -> RouterCache:
    cache = ctx.resources.get(CACHE_KEY)
    if not isinstance(cache, RouterCache):
        # encoders through the shared registry: a router on minilm reuses the semantic
        # step's session, and openai:<model>@<group> finds its group in the config
        cache = RouterCache(encoder_loader=functools.partial(
            load_encoder, resources=ctx.resources, config=ctx.config))
        ctx.resources[CACHE_KEY] = cache
    return cache


class LearnedStep(Step):
    kind = "learned"

    def __init__(self, spec: Any, ctx: BuildContext) -> None:
        super().__init__(spec, ctx)
        if not isinstance(spec, dict):
            raise ctx.error("expects a mapping: {router: ..., threshold: ..., strong: ..., weak: ...}")
        self.many = "models" in spec or "policy" in spec
        allowed = _MANY_KEYS if self.many else _PAIR_KEYS
        unknown = set(spec) - allowed
        if unknown:
            raise ctx.error(f"unknown key(s) {', '.join(sorted(unknown))} "
                            f"(allowed: {', '.join(sorted(allowed))})")
        self.router_name = str(spec.get("router", "default"))
        folder = resolve_router_path(self.router_name).resolve()
        try:
            router = self.router = router_cache(ctx).get(str(folder))
        except ConfigError as exc:
            raise ctx.error(exc.message, ".router") from None
        self.watched = [folder / META_FILE, folder / WEIGHTS_FILE]
        if self.many:
            self._build_many(spec, router, ctx)
        else:
            self._build_pair(spec, router, ctx)
        # inline only when every part is cheap; knn and sw_ranking scan their training
        # prompts (~12 ms), so they go to a thread whatever the encoder
        self.inline = router.fast and all(
            p == "tfidf" or is_fast(router.featurizer.encoder(p)) for p in router.featurizer.parts)

    def at_threshold(self, threshold: float) -> LearnedStep:
        """This step with another threshold (RouteLLM-style names carry their own)."""
        step = copy.copy(self)
        step.threshold = threshold
        return step

    def _build_pair(self, spec: dict[str, Any], router: Router, ctx: BuildContext) -> None:
        for key in ("strong", "weak"):
            if key not in spec:
                raise ctx.error(f"two-model mode needs {key!r}")
        try:
            self.threshold = float(spec.get("threshold", router.params.get("threshold", 0.5)))
        except (TypeError, ValueError):
            raise ctx.error("must be a number", ".threshold") from None
        if not 0.0 <= self.threshold <= 1.0:
            raise ctx.error("must be between 0 and 1", ".threshold")
        self.strong = ctx.check_target(str(spec["strong"]), ".strong")
        self.weak = ctx.check_target(str(spec["weak"]), ".weak")
        pair = spec.get("pair") or list(router.default_pair())
        if not isinstance(pair, list) or len(pair) != 2:
            raise ctx.error("must be [artifact-strong-model, artifact-weak-model]", ".pair")
        for m in pair:
            if m not in router.models:
                raise ctx.error(f"{m!r} is not a model of router {self.router_name!r} "
                                f"({', '.join(router.models)})", ".pair")
        self.pair = (str(pair[0]), str(pair[1]))

    def _build_many(self, spec: dict[str, Any], router: Router, ctx: BuildContext) -> None:
        try:
            self.policy = Policy.parse(spec.get("policy"))
        except ValueError as exc:
            raise ctx.error(str(exc), ".policy") from None
        mapping = spec.get("models")
        if not isinstance(mapping, dict) or len(mapping) < 2:
            raise ctx.error("must map at least two artifact model names to model groups",
                            ".models")
        self.targets: dict[str, str] = {}
        for art, group in mapping.items():
            if art not in router.models:
                raise ctx.error(f"{art!r} is not a model of router {self.router_name!r} "
                                f"({', '.join(router.models)})", f".models.{art}")
            self.targets[str(art)] = ctx.check_target(str(group), f".models.{art}")
        self.prices = self._group_prices(ctx)
        self.columns = [router.index(m) for m in self.targets]  # artifact column per target

    def _group_prices(self, ctx: BuildContext) -> np.ndarray:
        """(m, 2) input/output USD per 1M tokens of each target group's first deployment."""
        first: dict[str, tuple[float, float]] = {}
        for d in ctx.config.models:
            first.setdefault(d.name, (d.input_price, d.output_price))
        return np.array([first.get(g, (0.0, 0.0)) for g in self.targets.values()])

    def score(self, router: Router, text: str, tokens: int) -> dict[str, Any]:
        """The decision for one prompt: pure CPU, callable inline or in a thread."""
        if not self.many:
            s, w = router.index(self.pair[0]), router.index(self.pair[1])
            p = float(router.pair_scores(router.featurize([text]), s, w)[0])
            to = self.strong if p >= self.threshold else self.weak
            return {"to": to, "scores": {"strong": round(p, 4)}, "threshold": self.threshold}
        pred = router.score_texts([text])[:, self.columns]
        # output length is unknown before generation: the importers' assumption
        costs = (tokens * self.prices[:, 0] + DEFAULT_OUTPUT_TOKENS * self.prices[:, 1]) / 1e6
        j = int(choose(pred, costs, self.policy)[0])
        groups = list(self.targets.values())
        return {"to": groups[j], "policy": self.policy.describe(),
                "scores": {g: round(float(v), 4) for g, v in zip(groups, pred[0], strict=True)}}

    async def decide(self, req: ChatRequest, decision: Decision) -> str | None:
        text = req.last_user_text
        if not text:
            decision.trace(self.kind, "passed", reason="no user text")
            return None
        if self.inline:
            out = self.score(self.router, text, req.estimated_prompt_tokens)
        else:
            out = await asyncio.to_thread(self.score, self.router, text,
                                          req.estimated_prompt_tokens)
        decision.scores["learned"] = out["scores"]
        decision.trace(self.kind, "matched", **out)
        return str(out["to"])
