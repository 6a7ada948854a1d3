"""Everything built from one config file: providers, groups, routers.

A `Runtime` is immutable once built; a config reload builds a new one and
swaps it in, so requests in flight finish on the runtime they started with.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from flagman.config import Config, Deployment, GroupConfig
from flagman.errors import (
    ContextWindowExceededError,
    FlagmanError,
    NotFoundError,
    PermissionDeniedError,
)
from flagman.providers import create_provider
from flagman.providers.base import Provider
from flagman.reliability.attempts import PlanEntry
from flagman.reliability.state import HealthBoard
from flagman.routing import balance
from flagman.routing.base import BuildContext, Step
from flagman.routing.pipeline import RouterPipeline
from flagman.types import ChatRequest, Decision

if TYPE_CHECKING:  # the learned stack pulls in scikit-learn: imported when used
    from flagman.routing.learned_step import LearnedStep

MAX_ROUTER_DEPTH = 8


@dataclass
class Target:
    """A deployment as the balancer and attempt loop see it."""

    id: str
    deployment: Deployment
    provider: Provider

    @property
    def weight(self) -> float:
        return self.deployment.weight

    @property
    def price(self) -> float:
        return self.deployment.input_price + self.deployment.output_price


def deployment_ids(cfg: Config) -> list[str]:
    counts = Counter(d.name for d in cfg.models)
    seen: Counter[str] = Counter()
    ids = []
    for d in cfg.models:
        if d.id:
            ids.append(d.id)
        elif counts[d.name] == 1:
            ids.append(d.name)
        else:
            ids.append(f"{d.name}#{seen[d.name]}")
        seen[d.name] += 1
    return ids


class Runtime:
    def __init__(
        self, config: Config, session: aiohttp.ClientSession | None, resources: dict[str, Any]
    ) -> None:
        self.config = config
        self.groups: dict[str, list[Target]] = {}
        self.targets: dict[str, Target] = {}
        for i, (dep_id, d) in enumerate(zip(deployment_ids(config), config.models, strict=True)):
            dep = d if d.id else d.model_copy(update={"id": dep_id})
            t = Target(dep_id, dep, create_provider(dep, session, config, f"models[{i}]"))
            self.groups.setdefault(d.name, []).append(t)
            self.targets[dep_id] = t
        self.group_cfg = {name: config.groups.get(name, GroupConfig()) for name in self.groups}
        # built once per config, not per request
        self.fallback_on = {name: frozenset(g.fallback_on) for name, g in self.group_cfg.items()}
        known = set(self.groups) | {r.name for r in config.routers}
        self.routers: dict[str, RouterPipeline] = {}
        for i, rc in enumerate(config.routers):
            ctx = BuildContext(config, f"routers[{i}]", resources, known)
            self.routers[rc.name] = RouterPipeline(rc, i, ctx)
        # RouteLLM-style names (router-<kind>-<threshold>): one step per kind, built and
        # checked here with the rest of the config; a request only sets the threshold
        self.named_steps: dict[str, LearnedStep] = {}
        lc = config.learned
        if lc is not None:
            import flagman.learned.calibrate  # noqa: F401 - named_router's parser, loaded now
            from flagman.routing.learned_step import LearnedStep

            for kind, folder in lc.routers.items():
                ctx = BuildContext(config, f"learned.routers.{kind}", resources, known)
                self.named_steps[kind] = LearnedStep(
                    {"router": folder, "strong": lc.strong, "weak": lc.weak}, ctx)
        steps = [s for p in self.routers.values() for s in p.steps] + [*self.named_steps.values()]
        #: files the runtime was built from besides the config: a change reloads it
        self.watched: list[Path] = [f for s in steps for f in getattr(s, "watched", [])]

    def named_router(self, name: str) -> Step | None:
        """The learned step of a RouteLLM-style name, at the name's threshold."""
        if not name.startswith("router-") or not self.named_steps:
            return None
        from flagman.learned.calibrate import parse_router_model_name  # loaded at init

        parsed = parse_router_model_name(name)
        step = self.named_steps.get(parsed[0]) if parsed is not None else None
        return step.at_threshold(parsed[1]) if step is not None and parsed is not None else None

    def model_names(self) -> list[str]:
        return [*self.routers, *self.groups]

    async def decide(self, req: ChatRequest) -> Decision:
        """Resolve the requested model to a group, running router pipelines on the way."""
        requested = req.model
        decision = Decision(requested_model=requested)
        target = requested
        fallbacks: list[str] = []
        for _ in range(MAX_ROUTER_DEPTH):
            router = self.routers.get(target)
            if router is None:
                break
            if decision.strategy == "direct":
                decision.strategy = router.name
            fallbacks = router.fallbacks or fallbacks
            target = await router.decide(req, decision)
        if target not in self.groups and target == requested:
            named = self.named_router(requested)
            if named is not None:
                decision.strategy = requested
                target = await named.decide(req, decision) or self.config.learned.weak  # type: ignore[union-attr]
        if target not in self.groups:
            if target == requested:
                raise NotFoundError(
                    f"The model {requested!r} does not exist on this gateway; "
                    "GET /v1/models lists the names it serves",
                    param="model", code="model_not_found",
                )
            raise NotFoundError(f"router {decision.strategy!r} chose unknown model {target!r}")
        decision.group = target
        decision.fallbacks = fallbacks
        return decision

    def plan(
        self, req: ChatRequest, decision: Decision, health: HealthBoard, rng: random.Random
    ) -> list[PlanEntry[Target]]:
        """Deployments to try in order: the group (balanced), then its fallback groups."""
        assert decision.group is not None
        gcfg = self.group_cfg[decision.group]
        groups = [decision.group, *gcfg.fallbacks, *decision.fallbacks]
        sticky = balance.sticky_key(req, gcfg.sticky)
        tokens = req.estimated_prompt_tokens
        entries: list[PlanEntry[Target]] = []
        seen: set[str] = set()
        for g in dict.fromkeys(groups):
            ok = [t for t in self.groups.get(g, []) if self._admit(t, decision, tokens)]
            healthy = [t for t in ok if health.available(t.id)]
            rest = [t for t in ok if t not in healthy]
            for tgt in [*balance.order(self.group_cfg[g].strategy, healthy, health, rng, sticky),
                        *rest]:
                if tgt.id not in seen:
                    seen.add(tgt.id)
                    entries.append(PlanEntry(tgt, tgt.id, g, tgt.deployment.context_window))
        if not entries:
            raise self._no_candidate(decision)
        decision.deployment = entries[0].id
        return entries

    def _admit(self, t: Target, decision: Decision, tokens: int) -> bool:
        need = decision.required_tags
        if need is not None and not set(need) <= set(t.deployment.tags):
            decision.reject(t.id, f"lacks required tags {need}")
            return False
        cw = t.deployment.context_window
        if cw is not None and tokens > cw:
            decision.reject(t.id, f"context window {cw} < ~{tokens} prompt tokens")
            return False
        return True

    def _no_candidate(self, decision: Decision) -> FlagmanError:
        reasons = [r["reason"] for r in decision.rejected]
        if any("tags" in r for r in reasons):
            return PermissionDeniedError(
                "this request may only go to deployments tagged "
                f"{decision.required_tags}, and none is configured for {decision.group!r}",
                code="policy_no_deployment",
            )
        return ContextWindowExceededError(
            f"the prompt is longer than the context window of every deployment of "
            f"{decision.group!r} and its fallbacks",
            code="context_window_exceeded",
        )

    async def aclose(self) -> None:
        for r in self.routers.values():
            await r.aclose()
        for t in self.targets.values():
            await t.provider.aclose()
