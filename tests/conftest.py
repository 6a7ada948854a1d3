"""Shared fixtures: fake upstreams and a real flagman server, all on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.gateway import GatewayServer, write_config
from tests.fakes.openai_upstream import FakeOpenAIUpstream

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIUpstream]:
    with FakeOpenAIUpstream(name="a") as up:
        yield up


@pytest.fixture
def upstream_b() -> Iterator[FakeOpenAIUpstream]:
    with FakeOpenAIUpstream(name="b", seed=1) as up:
        yield up


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], GatewayServer]]:
    servers: list[GatewayServer] = []

    def make(config: dict[str, Any]) -> GatewayServer:
        config = {"log": {"path": str(tmp_path / "log.db"), "flush_interval": 0.02}, **config}
        path = write_config(tmp_path / "flagman.yaml", config)
        gw = GatewayServer(path).start()
        servers.append(gw)
        return gw

    yield make
    for s in servers:
        s.stop()


def openai_model(name: str, up: FakeOpenAIUpstream, **extra: Any) -> dict[str, Any]:
    return {"name": name, "provider": "openai", "base_url": up.url, **extra}
