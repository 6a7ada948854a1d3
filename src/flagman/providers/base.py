"""The provider interface: one small base class, one module per provider.

Modelled on httpx's transport: a provider is `complete(body)` and
`stream(body)` plus `aclose()`.  The body it receives is always the OpenAI
chat shape (the gateway's normalized request) with `model` already set to the
upstream id; what it returns is the OpenAI shape too.  Each provider maps its
own wire errors to `flagman.errors` in one place.

The HTTP client is aiohttp, not httpx: measured on this machine with a local
upstream at 16 connections, httpx.AsyncClient did 301 requests/s and
aiohttp 2,792 (`python bench/http_clients.py --requests 3000`).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
import orjson

from flagman.errors import (
    FlagmanError,
    TimeoutError_,
    UpstreamError,
    UpstreamUnavailableError,
    classify_upstream,
)
from flagman.types import Usage

if TYPE_CHECKING:
    from flagman.config import Config, Deployment


@dataclass
class ChatResult:
    data: dict[str, Any]  # an OpenAI chat.completion object
    usage: Usage
    #: the upstream's bytes when they are exactly `data` (forwarded without re-encoding)
    raw: bytes | None = None


@dataclass(frozen=True)
class Capabilities:
    streaming: bool = True
    tools: bool = True
    embeddings: bool = False


class Provider(ABC):
    kind: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(
        self, deployment: Deployment, session: aiohttp.ClientSession | None, config: Config
    ) -> None:
        self.deployment = deployment
        self.session = session
        self.config = config

    @property
    def id(self) -> str:
        return self.deployment.id or self.deployment.name

    @abstractmethod
    async def complete(self, body: dict[str, Any]) -> ChatResult:
        """Answer a non-streaming chat request."""

    @abstractmethod
    def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Yield OpenAI `chat.completion.chunk` objects; the last carries usage."""

    async def embed(self, body: dict[str, Any]) -> dict[str, Any]:
        raise UpstreamError(f"deployment {self.id} does not serve embeddings")

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """The shared HTTP session is closed by the app, not by providers."""

    def cost(self, usage: Usage) -> float:
        d = self.deployment
        return (usage.prompt_tokens * d.input_price + usage.completion_tokens * d.output_price) / 1e6


@contextmanager
def map_transport_errors(deployment: str) -> Iterator[None]:
    """Translate aiohttp/asyncio failures into the flagman tree (the one place)."""
    try:
        yield
    except FlagmanError:
        raise
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise TimeoutError_(f"upstream {deployment} timed out", deployment=deployment) from exc
    except (
        aiohttp.ClientConnectionError,
        aiohttp.ClientPayloadError,
        ConnectionError,
    ) as exc:
        raise UpstreamUnavailableError(
            f"upstream {deployment} unavailable: {type(exc).__name__}", deployment=deployment
        ) from exc
    except aiohttp.ClientResponseError as exc:
        raise UpstreamError(f"upstream {deployment}: HTTP {exc.status}", deployment=deployment) from exc
    except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UpstreamError(f"upstream {deployment} sent invalid JSON", deployment=deployment) from exc


def decode_json(raw: bytes, deployment: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"upstream {deployment} sent invalid JSON", deployment=deployment) from None


async def raise_for_upstream(resp: aiohttp.ClientResponse, deployment: str) -> None:
    if resp.status < 400:
        return
    raw = await resp.read()
    try:
        body: Any = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    raise classify_upstream(resp.status, body, resp.headers, deployment=deployment)


async def iter_sse(resp: aiohttp.ClientResponse) -> AsyncIterator[tuple[str | None, bytes]]:
    """Yield (event, data) pairs of a server-sent-events body."""
    event: str | None = None
    data: list[bytes] = []
    async for line in resp.content:
        line = line.rstrip(b"\r\n")
        if not line:
            if data:
                yield event, b"\n".join(data)
            event, data = None, []
        elif line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode()
    if data:
        yield event, b"\n".join(data)


async def first_then_rest(
    it: AsyncIterator[dict[str, Any]], ttft_timeout: float | None, deployment: str
) -> AsyncIterator[dict[str, Any]]:
    """Enforce a time-to-first-token limit on a chunk iterator."""
    if ttft_timeout is None:
        async for c in it:
            yield c
        return
    t0 = time.perf_counter()
    try:
        # asyncio.timeout, not wait_for: no extra task that could outlive a cancellation
        async with asyncio.timeout(ttft_timeout):
            first = await anext(it)
    except StopAsyncIteration:
        return
    except TimeoutError:
        raise TimeoutError_(
            f"upstream {deployment}: no first token after {time.perf_counter() - t0:.2f}s",
            deployment=deployment,
        ) from None
    yield first
    async for c in it:
        yield c
