"""The routing step interface and its registry.

A step looks at a request and either decides (returns a model group or
router name), restricts the candidates (policy), or passes to the next step
by returning None.  Steps are registered by name; users' own are loaded from
an import string `"package.module:Class"` (the uvicorn way).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from flagman.errors import ConfigError
from flagman.types import ChatRequest, Decision

if TYPE_CHECKING:
    from flagman.config import Config


@dataclass
class BuildContext:
    """What a step may use when it is built from config."""

    config: Config
    path: str  # config path of the step, for error messages: routers[0].steps[2]
    #: shared, lazily built resources (encoders, learned routers) keyed by spec
    resources: dict[str, Any] = field(default_factory=dict)
    known_models: set[str] = field(default_factory=set)  # groups and routers

    def error(self, msg: str, sub: str = "") -> ConfigError:
        return ConfigError(f"{self.path}{sub}: {msg}")

    def check_target(self, name: str, sub: str = "") -> str:
        if name not in self.known_models:
            raise self.error(f"unknown model {name!r}", sub)
        return name


class Step(ABC):
    """One step of a router pipeline."""

    #: registry name, also the key used in YAML (`- rules: …`)
    kind: ClassVar[str] = ""

    def __init__(self, spec: Any, ctx: BuildContext) -> None:
        self.spec = spec

    @abstractmethod
    async def decide(self, req: ChatRequest, decision: Decision) -> str | None:
        """Return the target model (group or router) or None to pass on.

        Record why with `decision.trace(self.kind, outcome, **detail)`.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources (HTTP sessions of remote encoders …)."""


StepFactory = Callable[[Any, BuildContext], Step]


def builtin_steps() -> dict[str, str]:
    """Name → import string.  Kept as strings so importing flagman stays cheap."""
    return {
        "rules": "flagman.routing.rules:RulesStep",
        "policy": "flagman.routing.policy:PolicyStep",
        "semantic": "flagman.routing.semantic:SemanticStep",
        "learned": "flagman.routing.learned_step:LearnedStep",
    }


def import_string(spec: str) -> Any:
    mod_name, _, attr = spec.partition(":")
    if not mod_name or not attr:
        raise ValueError(f"import string must look like 'package.module:Class', got {spec!r}")
    module = importlib.import_module(mod_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def resolve_step(kind: str, ctx: BuildContext) -> StepFactory:
    target = builtin_steps().get(kind, kind if ":" in kind else None)
    if target is None:
        raise ctx.error(f"unknown step {kind!r} (known: {', '.join(builtin_steps())}, "
                        "or 'package.module:Class')")
    try:
        cls = import_string(target)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ctx.error(f"cannot load step {kind!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Step)):
        raise ctx.error(f"{kind!r} is not a flagman.routing.base.Step subclass")
    return cls
