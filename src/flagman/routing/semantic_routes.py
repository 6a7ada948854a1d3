"""Route definitions of the semantic step: parsing, validation, writing back.

A routes file is YAML: a list (or a mapping with a ``routes:`` list) of

    - name: billing
      to: support-small          # a model group or router
      threshold: 0.42            # optional; written by `flagman routes fit`
      utterances: ["why was I charged twice", ...]

Errors are ConfigErrors naming the file and the entry (``routes.yaml[2].to``),
the same shape as the config loader's, so a bad file is fixed in one look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flagman.config import read_yaml
from flagman.errors import ConfigError

ROUTE_KEYS = {"name", "to", "threshold", "utterances", "description"}


@dataclass
class Route:
    name: str
    utterances: list[str]
    to: str | None = None  # None only for evaluation-only route sets
    threshold: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # description, kept on write-back


def _route(item: Any, where: str, need_to: bool) -> Route:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: a route must be a mapping with name, to and utterances")
    unknown = set(item) - ROUTE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name: a non-empty string is required")
    to = item.get("to")
    if (need_to or to is not None) and (not isinstance(to, str) or not to):
        raise ConfigError(f"{where}.to: the model group or router to send matches to is required")
    utts = item.get("utterances")
    if not isinstance(utts, list) or not utts:
        raise ConfigError(f"{where}.utterances: a non-empty list of strings is required")
    for j, u in enumerate(utts):
        if not isinstance(u, str) or not u.strip():
            raise ConfigError(f"{where}.utterances[{j}]: must be a non-empty string")
    th = item.get("threshold")
    if th is not None and (
        isinstance(th, bool) or not isinstance(th, int | float) or not math.isfinite(th)
    ):
        raise ConfigError(f"{where}.threshold: must be a number")
    extra = {"description": item["description"]} if "description" in item else {}
    return Route(name, list(utts), to, None if th is None else float(th), extra)


def parse_routes(data: Any, where: str, *, need_to: bool = True) -> list[Route]:
    """Validate a list of route mappings; `where` prefixes every error message."""
    if isinstance(data, dict) and set(data) == {"routes"}:
        data = data["routes"]
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{where}: expected a non-empty list of routes")
    routes = [_route(item, f"{where}[{i}]", need_to) for i, item in enumerate(data)]
    seen: set[str] = set()
    for i, r in enumerate(routes):
        if r.name in seen:
            raise ConfigError(f"{where}[{i}].name: duplicate route {r.name!r}")
        seen.add(r.name)
    return routes


def load_routes_file(path: Path, *, need_to: bool = True) -> list[Route]:
    data = read_yaml(path, "routes")
    return parse_routes(data, str(path), need_to=need_to)


def dump_routes(routes: list[Route]) -> str:
    """YAML text for `routes`, keys in a stable, readable order."""
    out = []
    for r in routes:
        item: dict[str, Any] = {"name": r.name}
        if r.to is not None:
            item["to"] = r.to
        if r.threshold is not None:
            item["threshold"] = round(float(r.threshold), 4)
        item.update(r.extra)
        item["utterances"] = list(r.utterances)
        out.append(item)
    return yaml.safe_dump(out, sort_keys=False, allow_unicode=True, width=100)
