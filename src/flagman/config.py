"""The YAML config file, validated with pydantic.

Unknown keys are errors; every error names its path (`models[2].base_url: …`).
Secrets are only accepted as `env:NAME` references and are resolved when the
file is loaded, so a missing variable is a config error, not a 500 later.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from flagman.errors import ConfigError

ERROR_CLASS_NAMES = (
    "rate_limited",
    "upstream_unavailable",
    "upstream_error",
    "timeout",
    "context_window_exceeded",
    "content_policy",
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Deployment(Strict):
    """One upstream deployment; entries sharing `name` form a model group."""

    name: str = Field(min_length=1)
    provider: str = "openai"
    base_url: str | None = None
    model: str | None = None  # upstream model id, defaults to name
    id: str | None = None  # unique deployment id, defaults to name@base_url#index
    api_key: SecretStr | None = None  # only as env:NAME
    auth: Literal["bearer", "azure", "x-api-key", "none"] = "bearer"
    api_version: str | None = None  # Azure OpenAI's query parameter
    headers: dict[str, str] = Field(default_factory=dict)
    input_price: float = Field(0.0, ge=0)  # USD per 1M input tokens
    output_price: float = Field(0.0, ge=0)  # USD per 1M output tokens
    context_window: int | None = Field(None, gt=0)
    tags: list[str] = Field(default_factory=list)
    weight: float = Field(1.0, ge=0)
    timeout: float = Field(600.0, gt=0)  # seconds, whole request
    ttft_timeout: float | None = Field(None, gt=0)  # seconds to first streamed token
    options: dict[str, Any] = Field(default_factory=dict)  # provider-specific, validated by it

    @field_validator("api_key", mode="before")
    @classmethod
    def _env_only(cls, v: Any) -> Any:
        if v is None:
            return None
        if not isinstance(v, str) or not v.startswith("env:"):
            raise ValueError("secrets must be given as env:VARIABLE references, not literal values")
        name = v[4:]
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]

    @property
    def upstream_model(self) -> str:
        return self.model or self.name


def _known_error_classes(names: list[str] | dict[str, int]) -> list[str] | dict[str, int]:
    """A misspelt error class would silently never match: reject it when the file loads."""
    unknown = [n for n in names if n not in ERROR_CLASS_NAMES]
    if unknown:
        raise ValueError(f"unknown error class {unknown[0]!r}; known: {', '.join(ERROR_CLASS_NAMES)}")
    return names


class GroupConfig(Strict):
    """Settings of one model group (deployments sharing a name)."""

    strategy: Literal["weighted", "least_busy", "latency", "cheapest", "ordered"] = "weighted"
    sticky: Literal["user", "conversation"] | None = None
    fallbacks: list[str] = Field(default_factory=list)  # ordered group names
    #: error classes that may cross to the fallback groups (siblings fail over on any of them)
    fallback_on: list[str] = Field(default_factory=lambda: list(ERROR_CLASS_NAMES))
    #: past the group's recent p95 latency, send a second copy to a sibling; first answer wins
    hedge: bool = False

    @field_validator("fallback_on")
    @classmethod
    def _fallback_classes(cls, v: list[str]) -> list[str]:
        _known_error_classes(v)
        return v


class RouterConfig(Strict):
    """A virtual model: a pipeline of steps ending in a default."""

    name: str = Field(min_length=1)
    steps: list[dict[str, Any]] = Field(default_factory=list)
    default: str
    fallbacks: list[str] = Field(default_factory=list)
    description: str | None = None


class LearnedNamesConfig(Strict):
    """RouteLLM-style model names: `router-mf-0.116` = router `mf`, threshold 0.116."""

    strong: str
    weak: str
    #: router kind in the name → artifact folder (or "default", the shipped router)
    routers: dict[str, str] = Field(default_factory=lambda: {"mf": "default"})


class LogConfig(Strict):
    backend: Literal["sqlite"] = "sqlite"
    path: str = "flagman.db"
    store_bodies: bool = False
    batch_size: int = Field(1000, gt=0)
    flush_interval: float = Field(0.2, gt=0)  # seconds


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)
    reload_interval: float = Field(1.0, gt=0)  # seconds between config file checks


class RetryConfig(Strict):
    """How often one request may be re-sent, and how fast."""

    attempts: int = Field(2, ge=0)  # extra attempts per request, across deployments
    backoff_base: float = Field(0.05, ge=0)  # seconds; full jitter over base·2^n
    backoff_max: float = Field(2.0, ge=0)  # also the longest Retry-After waited for in-request
    #: re-sends to a deployment the request already tried / first sends to it, per deployment
    budget_ratio: float = Field(0.2, ge=0)
    budget_window: float = Field(10.0, gt=0)  # seconds
    budget_floor: int = Field(10, ge=0)  # re-sends always allowed per window (a quiet gateway)
    #: at most this many further attempts after an error of the class (default: `attempts`)
    per_class: dict[str, int] = Field(default_factory=dict)

    @field_validator("per_class")
    @classmethod
    def _per_class_names(cls, v: dict[str, int]) -> dict[str, int]:
        _known_error_classes(v)
        if any(n < 0 for n in v.values()):
            raise ValueError("per-class retry counts must be >= 0")
        return v


class BreakerConfig(Strict):
    """When a deployment is taken out of rotation, and for how long."""

    consecutive_failures: int = Field(5, gt=0)
    error_rate: float = Field(0.5, gt=0, le=1)  # failure share over `window` that opens it
    window: float = Field(10.0, gt=0)  # seconds
    min_requests: int = Field(20, gt=0)  # outcomes in the window before the rate counts
    cooldown: float = Field(5.0, gt=0)  # seconds open before a half-open probe; 429 default
    max_cooldown: float = Field(300.0, gt=0)  # cap on an upstream's Retry-After


class ReliabilityConfig(Strict):
    retry: RetryConfig = Field(default_factory=RetryConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)


class Config(Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    models: Annotated[list[Deployment], Field(min_length=1)]
    groups: dict[str, GroupConfig] = Field(default_factory=dict)
    routers: list[RouterConfig] = Field(default_factory=list)
    learned: LearnedNamesConfig | None = None
    reliability: ReliabilityConfig = Field(default_factory=ReliabilityConfig)
    #: folder against which relative paths in the file are resolved (set by the loader)
    base_dir: str = "."

    def resolve_path(self, p: str) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() else Path(self.base_dir) / path

    def group_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for d in self.models:
            seen.setdefault(d.name)
        return list(seen)


def format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid config"]
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"  {format_loc(tuple(err['loc']))}: {msg}")
    return "\n".join(lines)


def parse_config(data: Any, *, source: str = "<config>", base_dir: str = ".") -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        cfg = Config.model_validate({**data, "base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
    _check_cross_refs(cfg, source)
    return cfg


def _check_cross_refs(cfg: Config, source: str) -> None:
    groups = set(cfg.group_names())
    routers = {r.name for r in cfg.routers}
    problems: list[str] = []
    ids: set[str] = set()
    for i, d in enumerate(cfg.models):
        if d.id is not None:
            if d.id in ids:
                problems.append(f"models[{i}].id: duplicate deployment id {d.id!r}")
            ids.add(d.id)
    for name in cfg.groups:
        if name not in groups:
            problems.append(f"groups.{name}: no model entry has this name")
    for name, g in cfg.groups.items():
        for j, fb in enumerate(g.fallbacks):
            if fb not in groups:
                problems.append(f"groups.{name}.fallbacks[{j}]: unknown model group {fb!r}")
    for i, r in enumerate(cfg.routers):
        if r.name in groups:
            problems.append(f"routers[{i}].name: {r.name!r} is already a model group name")
        if r.default not in groups and r.default not in routers:
            problems.append(f"routers[{i}].default: unknown model {r.default!r}")
        for j, fb in enumerate(r.fallbacks):
            if fb not in groups:
                problems.append(f"routers[{i}].fallbacks[{j}]: unknown model group {fb!r}")
    if cfg.learned is not None:
        for key in ("strong", "weak"):
            if getattr(cfg.learned, key) not in groups:
                problems.append(f"learned.{key}: unknown model group {getattr(cfg.learned, key)!r}")
    if problems:
        raise ConfigError(f"{source}: invalid config\n  " + "\n  ".join(problems))


def read_yaml(path: Path, what: str = "config") -> Any:
    """Read a YAML file; unreadable or malformed files are ConfigErrors naming the path."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} file: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def load_config(path: str | Path) -> Config:
    p = Path(path)
    data = read_yaml(p)
    return parse_config(data, source=str(p), base_dir=str(p.resolve().parent))
