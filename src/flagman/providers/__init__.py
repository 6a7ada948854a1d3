"""Provider adapters: `base.py` is the interface, one module per provider."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp

from flagman.errors import ConfigError

if TYPE_CHECKING:
    from flagman.config import Config, Deployment
    from flagman.providers.base import Provider


def builtin_providers() -> dict[str, str]:
    """Provider name → import string; users may give `package.module:Class` too."""
    return {
        "openai": "flagman.providers.openai:OpenAIProvider",
        "anthropic": "flagman.providers.anthropic:AnthropicProvider",
        "replay": "flagman.providers.replay:ReplayProvider",
    }


def create_provider(
    deployment: Deployment, session: aiohttp.ClientSession | None, config: Config, where: str
) -> Provider:
    from flagman.providers.base import Provider
    from flagman.routing.base import import_string

    target = builtin_providers().get(deployment.provider)
    if target is None and ":" in deployment.provider:
        target = deployment.provider
    if target is None:
        known = ", ".join(builtin_providers())
        raise ConfigError(f"{where}.provider: unknown provider {deployment.provider!r} (known: {known})")
    try:
        cls = import_string(target)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"{where}.provider: cannot load {target!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise ConfigError(f"{where}.provider: {target!r} is not a Provider subclass")
    return cls(deployment, session, config)
