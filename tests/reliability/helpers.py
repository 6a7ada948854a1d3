"""Helpers shared by the reliability tests."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
from tests.fakes.gateway import GatewayServer
from tests.fakes.openai_upstream import FakeOpenAIUpstream

MakeGateway = Callable[[dict[str, Any]], GatewayServer]
Upstream = FakeOpenAIUpstream

MSG = [{"role": "user", "content": "hi"}]


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connection refused, at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def chat(gw: Any, model: str = "m", stream: bool = False, **body: Any) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", timeout=30,
                      json={"model": model, "messages": MSG, "stream": stream, **body})


def attempts_of(r: httpx.Response) -> list[str]:
    h = r.headers.get("x-flagman-attempts")
    return h.split(",") if h else []


def wait_until(pred: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()
