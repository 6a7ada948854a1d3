"""A streaming response that notices a client going away at once.

Starlette's StreamingResponse, under ASGI spec 2.4 servers (uvicorn), only
notices a disconnect when its next `send` fails, so a slow upstream would keep
generating for a client that left.  This response listens for
`http.disconnect` while streaming and cancels the body generator, whose
`finally` closes the upstream request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send


class SSEResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self, body: AsyncIterator[bytes], headers: Mapping[str, str] | None = None,
        status_code: int = 200,
    ) -> None:
        self.body_iterator = body
        self.status_code = status_code
        self.background = None
        self.init_headers({"cache-control": "no-cache", **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})

        async def pump() -> None:
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def listen() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        pumper = asyncio.ensure_future(pump())
        listener = asyncio.ensure_future(listen())
        try:
            await asyncio.wait({pumper, listener}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (listener, pumper):
                if not task.done():
                    task.cancel()
            for task in (pumper, listener):
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task
