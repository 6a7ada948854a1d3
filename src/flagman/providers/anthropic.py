"""Anthropic Messages API provider.

The gateway speaks the OpenAI chat shape internally; this adapter translates
the request on the way out and the answer (JSON or SSE) on the way back, with
`flagman.formats.anthropic`.  Error bodies (`{"type": "error", "error":
{"type": "overloaded_error", …}}`) are classified by `classify_upstream` from
their structured `error.type`, like every other provider.

Options (`deployment.options`): `anthropic_version` (default 2023-06-01),
`anthropic_beta` (sent as the `anthropic-beta` header), `default_max_tokens`
(default 4096; Anthropic requires `max_tokens`, OpenAI clients often omit it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from flagman.errors import ConfigError, FlagmanError, UpstreamError
from flagman.formats.anthropic import (
    AnthropicStreamToOpenAI,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
)
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

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_VERSION = "2023-06-01"


def messages_url(base_url: str | None) -> str:
    """`/v1/messages` under the base URL, without doubling a `/v1` it already has."""
    base = (base_url or DEFAULT_BASE_URL).rstrip("/")
    return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"


class AnthropicProvider(Provider):
    kind = "anthropic"
    capabilities = Capabilities(streaming=True, tools=True, embeddings=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        d = self.deployment
        opts = d.options
        self._url = messages_url(d.base_url)
        headers = {
            "content-type": "application/json",
            "anthropic-version": str(opts.get("anthropic_version") or DEFAULT_VERSION),
        }
        if opts.get("anthropic_beta"):
            headers["anthropic-beta"] = str(opts["anthropic_beta"])
        if d.api_key is not None and d.auth != "none":
            headers["x-api-key"] = d.api_key.get_secret_value()
        self._headers = {**headers, **d.headers}
        default_max = opts.get("default_max_tokens", 4096)
        if not isinstance(default_max, int) or isinstance(default_max, bool) or default_max < 1:
            raise ConfigError(f"{self.id}: options.default_max_tokens must be a positive integer")
        self._default_max_tokens = default_max
        self._timeout = aiohttp.ClientTimeout(total=d.timeout)

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None:
            raise UpstreamError(f"deployment {self.id} has no HTTP session")
        return self.session

    def _payload(self, body: dict[str, Any], stream: bool) -> bytes:
        req = openai_request_to_anthropic(body, default_max_tokens=self._default_max_tokens)
        if stream:
            req["stream"] = True
        else:
            req.pop("stream", None)
        return orjson.dumps(req)

    async def complete(self, body: dict[str, Any]) -> ChatResult:
        payload = self._payload(body, stream=False)
        with map_transport_errors(self.id):
            async with self._session().post(
                self._url, data=payload, headers=self._headers, timeout=self._timeout
            ) as resp:
                await raise_for_upstream(resp, self.id)
                raw = await resp.read()
        data = decode_json(raw, self.id)
        if not isinstance(data, dict) or data.get("type") != "message":
            raise UpstreamError(f"upstream {self.id} answered without a message", deployment=self.id)
        out = anthropic_response_to_openai(data)
        return ChatResult(data=out, usage=Usage.from_openai(out["usage"]))

    def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        return first_then_rest(self._stream(body), self.deployment.ttft_timeout, self.id)

    async def _stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        payload = self._payload(body, stream=True)
        translator = AnthropicStreamToOpenAI(str(body.get("model") or self.deployment.upstream_model))
        with map_transport_errors(self.id):
            async with self._session().post(
                self._url, data=payload, headers=self._headers, timeout=self._timeout
            ) as resp:
                await raise_for_upstream(resp, self.id)
                async for event, data in iter_sse(resp):
                    for chunk in self._translate(translator, event, data):
                        yield chunk
                    if translator.finished:
                        return
        # A stream that closes without message_stop was cut short.
        raise UpstreamError(f"upstream {self.id} ended the stream early", deployment=self.id)

    def _translate(
        self, translator: AnthropicStreamToOpenAI, event: str | None, data: bytes
    ) -> list[dict[str, Any]]:
        payload = decode_json(data, self.id)
        if not isinstance(payload, dict):
            raise UpstreamError(f"upstream {self.id} sent a non-object event", deployment=self.id)
        try:
            return translator.feed(event, payload)
        except FlagmanError as exc:
            exc.deployment = self.id
            raise
