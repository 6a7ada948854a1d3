"""A bare, fast OpenAI-shaped upstream for benchmarks (raw ASGI under uvicorn).

    python bench/fake_upstream.py --port 9911 [--delay-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time
from typing import Any

import orjson

BODY = orjson.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "bench",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there."},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
})


def make_app(delay: float) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        if delay:
            await asyncio.sleep(delay)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": BODY})
    return app


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")


def main() -> None:
    import uvicorn

    ap = argparse.ArgumentParser(description="bare OpenAI-shaped upstream")
    ap.add_argument("--port", type=int, default=9911)
    ap.add_argument("--delay-ms", type=float, default=0.0)
    a = ap.parse_args()
    uvicorn.run(make_app(a.delay_ms / 1000), host="127.0.0.1", port=a.port, log_level="warning",
                access_log=False, loop="uvloop", http="httptools")


if __name__ == "__main__":
    main()
