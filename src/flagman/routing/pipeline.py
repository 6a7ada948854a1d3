"""A virtual model: an ordered pipeline of steps ending in a default."""

from __future__ import annotations

import logging

from flagman.config import RouterConfig
from flagman.errors import FlagmanError
from flagman.routing.base import BuildContext, Step, resolve_step
from flagman.types import ChatRequest, Decision

log = logging.getLogger("flagman.routing")


class RouterPipeline:
    def __init__(self, cfg: RouterConfig, index: int, ctx: BuildContext) -> None:
        self.name = cfg.name
        self.default = cfg.default
        self.fallbacks = list(cfg.fallbacks)
        self.steps: list[Step] = []
        for j, raw in enumerate(cfg.steps):
            path = f"routers[{index}].steps[{j}]"
            if not isinstance(raw, dict) or len(raw) != 1:
                raise BuildContext(ctx.config, path).error(
                    "each step is a mapping with exactly one key, e.g. `rules: [...]`")
            ((kind, spec),) = raw.items()
            step_ctx = BuildContext(ctx.config, f"{path}.{kind}", ctx.resources, ctx.known_models)
            factory = resolve_step(str(kind), step_ctx)
            self.steps.append(factory(spec, step_ctx))

    async def decide(self, req: ChatRequest, decision: Decision) -> str:
        for step in self.steps:
            try:
                target = await step.decide(req, decision)
            except FlagmanError:
                raise
            except Exception as exc:  # a broken step passes on rather than failing the request
                log.exception("routing step %s of %s failed", step.kind, self.name)
                decision.trace(step.kind, "error", error=type(exc).__name__)
                continue
            if target is not None:
                return target
        decision.trace("default", "matched", to=self.default)
        return self.default

    async def aclose(self) -> None:
        for step in self.steps:
            await step.aclose()
