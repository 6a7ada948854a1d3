"""OpenAI and every OpenAI-compatible server (vLLM, Ollama, llama.cpp, Together, Groq).

Azure OpenAI is the same wire format with another URL and auth:
`auth: azure` sends the key in `api-key`, and `api_version` adds the
`?api-version=` query; `base_url` is then the deployment URL
(`https://NAME.openai.azure.com/openai/deployments/DEPLOYMENT`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from flagman.errors import UpstreamError
from flagman.providers.base import (
    Capabilities,
    ChatResult,
    Provider,
    decode_json,
    first_then_rest,
    iter_sse,
    map_transport_errors,
    raise_for_upstream,
)
from flagman.types import Usage

JSON = "application/json"


class OpenAIProvider(Provider):
    kind = "openai"
    capabilities = Capabilities(streaming=True, tools=True, embeddings=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        d = self.deployment
        base = (d.base_url or "https://api.openai.com/v1").rstrip("/")
        query = f"?api-version={d.api_version}" if d.api_version else ""
        self._chat_url = f"{base}/chat/completions{query}"
        self._embed_url = f"{base}/embeddings{query}"
        headers = {"content-type": JSON, **d.headers}
        key = d.api_key.get_secret_value() if d.api_key else None
        if key and d.auth == "bearer":
            headers["authorization"] = f"Bearer {key}"
        elif key and d.auth in ("azure", "x-api-key"):
            headers["api-key" if d.auth == "azure" else "x-api-key"] = key
        self._headers = headers
        self._timeout = aiohttp.ClientTimeout(total=d.timeout)

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None:
            raise UpstreamError(f"deployment {self.id} has no HTTP session")
        return self.session

    async def _post(self, url: str, payload: bytes) -> aiohttp.ClientResponse:
        """POST, retrying once when a pooled keep-alive connection turns out to be closed.

        The upstream closing an idle connection just as we reuse it is a race no
        upstream is at fault for; the request never reached it, so one immediate
        resend on a fresh connection is safe and is not counted as an attempt.
        """
        session = self._session()
        try:
            return await session.post(url, data=payload, headers=self._headers,
                                      timeout=self._timeout)
        except aiohttp.ServerDisconnectedError:
            return await session.post(url, data=payload, headers=self._headers,
                                      timeout=self._timeout)

    async def complete(self, body: dict[str, Any]) -> ChatResult:
        with map_transport_errors(self.id):
            async with await self._post(self._chat_url, orjson.dumps(body)) as resp:
                await raise_for_upstream(resp, self.id)
                raw = await resp.read()
        data = decode_json(raw, self.id)
        if not isinstance(data, dict) or "choices" not in data:
            raise UpstreamError(f"upstream {self.id} answered without choices", deployment=self.id)
        return ChatResult(data=data, usage=Usage.from_openai(data.get("usage")), raw=raw)

    def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        return first_then_rest(self._stream(body), self.deployment.ttft_timeout, self.id)

    async def _stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        with map_transport_errors(self.id):
            async with await self._post(self._chat_url, orjson.dumps(body)) as resp:
                await raise_for_upstream(resp, self.id)
                async for _event, data in iter_sse(resp):
                    if data == b"[DONE]":
                        return
                    chunk = decode_json(data, self.id)
                    if isinstance(chunk, dict) and "error" in chunk:
                        raise UpstreamError(
                            f"upstream {self.id} sent an error event mid-stream",
                            deployment=self.id,
                        )
                    yield chunk
        # A stream that closes without [DONE] was cut short.
        raise UpstreamError(f"upstream {self.id} ended the stream early", deployment=self.id)

    async def embed(self, body: dict[str, Any]) -> dict[str, Any]:
        with map_transport_errors(self.id):
            async with await self._post(self._embed_url, orjson.dumps(body)) as resp:
                await raise_for_upstream(resp, self.id)
                raw = await resp.read()
        data = decode_json(raw, self.id)
        if not isinstance(data, dict):
            raise UpstreamError(f"upstream {self.id} sent an invalid embeddings body")
        return data
