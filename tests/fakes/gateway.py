"""Run a real flagman server (uvicorn, loopback) in a background thread for tests."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml

from flagman.server.app import create_app


class GatewayServer:
    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.app = create_app(config_path)
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host="127.0.0.1", port=0, log_level="warning", access_log=False,
            lifespan="on", timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway(self) -> Any:
        return self.app.state.gateway

    def start(self) -> GatewayServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("flagman test server did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def flush_log(self) -> None:
        """Wait until the batching writer has written every finished request."""
        loop: asyncio.AbstractEventLoop = self.gateway.writer._task.get_loop()
        asyncio.run_coroutine_threadsafe(self.gateway.writer.flush(), loop).result(10)

    def call(self, coro_fn: Any) -> Any:
        loop: asyncio.AbstractEventLoop = self.gateway.writer._task.get_loop()
        return asyncio.run_coroutine_threadsafe(coro_fn(), loop).result(30)

    def rows(self) -> list[dict[str, Any]]:
        self.flush_log()
        return list(reversed(self.gateway.store.latest(100000)))

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=30, **kw)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
