"""Stream failover stops at the first token, not at the first chunk.

OpenAI-compatible servers send a role announcement (`delta: {role, content: ""}`)
as soon as they accept a request, before generating anything.  Passing it on
would commit the gateway to that deployment while the client has learnt
nothing, so an upstream that fails right after it could no longer be failed
over.  `first_token` reads past such preamble chunks, under the deployment's
TTFT limit, and hands back the first chunk with the rest of the stream
(preamble included, in order) behind it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from flagman.errors import TimeoutError_, UpstreamError

log = logging.getLogger("flagman")

Chunk = dict[str, Any]
MAX_PREAMBLE = 8  # chunks held back at most while waiting for the first token


def is_preamble(chunk: Chunk) -> bool:
    """A chunk that carries nothing for the client yet (role only, empty content)."""
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices or chunk.get("usage"):
        return False
    for ch in choices:
        if not isinstance(ch, dict) or ch.get("finish_reason") is not None:
            return False
        delta = ch.get("delta")
        # OpenAI's first chunk is {"role": "assistant", "content": "", "refusal": null}:
        # empty values carry nothing, whatever their key
        if not isinstance(delta, dict) or any(v for k, v in delta.items() if k != "role"):
            return False
    return True


class PrefixedStream:
    """An upstream chunk iterator with chunks already read put back in front.

    A class rather than an async generator: closing a generator that never
    started does not run its `finally`, which would leak the upstream request.
    """

    def __init__(self, head: list[Chunk], rest: AsyncIterator[Chunk]) -> None:
        self._head = deque(head)
        self._rest = rest

    def __aiter__(self) -> PrefixedStream:
        return self

    async def __anext__(self) -> Chunk:
        if self._head:
            return self._head.popleft()
        return await self._rest.__anext__()

    async def aclose(self) -> None:
        self._head.clear()
        await close_quietly(self._rest)


async def close_quietly(it: AsyncIterator[Any]) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # closing a broken upstream must not mask the real error
            log.debug("closing upstream stream failed", exc_info=True)


async def first_token(
    it: AsyncIterator[Chunk], deployment: str, ttft_timeout: float | None
) -> tuple[Chunk, PrefixedStream]:
    """Read until the first chunk with content, within `ttft_timeout` seconds.

    The provider adapter enforces the limit up to the first chunk (a second timer around
    the same await would race it); the preamble chunks after it get what is left.
    On any failure the upstream iterator is closed before the error propagates.
    """
    t0 = time.monotonic()
    head: list[Chunk] = []
    try:
        head.append(await it.__anext__())
        left = None if ttft_timeout is None else max(0.0, ttft_timeout - (time.monotonic() - t0))
        async with asyncio.timeout(left):
            while is_preamble(head[-1]) and len(head) < MAX_PREAMBLE:
                head.append(await it.__anext__())
    except StopAsyncIteration:
        if head:  # a complete answer with no content at all: nothing to fail over
            return head[0], PrefixedStream(head[1:], it)
        await close_quietly(it)
        raise UpstreamError(f"upstream {deployment} sent an empty stream",
                            deployment=deployment) from None
    except TimeoutError:
        await close_quietly(it)
        raise TimeoutError_(f"upstream {deployment}: no first token within {ttft_timeout}s",
                            deployment=deployment) from None
    except BaseException:
        await close_quietly(it)
        raise
    return head[0], PrefixedStream(head[1:], it)
