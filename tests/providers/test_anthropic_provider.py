"""The Anthropic provider against a fake Anthropic API on loopback."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, Reply, assemble_openai_chunks

from flagman.config import Config, Deployment
from flagman.errors import (
    AuthenticationError,
    BadRequestError,
    RateLimitedError,
    TimeoutError_,
    UpstreamError,
    UpstreamUnavailableError,
)
from flagman.providers.anthropic import AnthropicProvider, messages_url

KEY = "sk-ant-test-123"


@pytest.fixture
def anthropic_upstream() -> Iterator[FakeAnthropicUpstream]:
    with FakeAnthropicUpstream() as up:
        yield up


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def make(
    anthropic_upstream: FakeAnthropicUpstream, session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    monkeypatch.setenv("FLAGMAN_TEST_ANTHROPIC_KEY", KEY)

    def build(**kw: Any) -> AnthropicProvider:
        fields = {"name": "claude", "provider": "anthropic", "model": "claude-up",
                  "base_url": anthropic_upstream.url, "api_key": "env:FLAGMAN_TEST_ANTHROPIC_KEY", **kw}
        dep = Deployment(**fields)
        return AnthropicProvider(dep, session, Config(models=[dep]))

    return build


def _body(**kw: Any) -> dict[str, Any]:
    return {"model": "claude-up", "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], **kw}


def test_messages_url_does_not_double_v1() -> None:
    assert messages_url(None) == "https://api.anthropic.com/v1/messages"
    assert messages_url("http://h:1/") == "http://h:1/v1/messages"
    assert messages_url("http://h:1/v1/") == "http://h:1/v1/messages"


async def test_complete_sends_headers_and_translated_body(
    make: Any, anthropic_upstream: FakeAnthropicUpstream
) -> None:
    anthropic_upstream.reply_text("Hello!", usage={"input_tokens": 12, "output_tokens": 3})
    result = await make().complete(_body(stop=["END"], user="u-7", stream_options={"x": 1}))
    req = anthropic_upstream.requests[-1]
    assert req.path == "/v1/messages"
    assert req.headers["x-api-key"] == KEY
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert req.body == {
        "model": "claude-up", "max_tokens": 4096,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "stop_sequences": ["END"], "metadata": {"user_id": "u-7"},
    }
    assert result.data["object"] == "chat.completion"
    assert result.data["choices"][0]["message"] == {"role": "assistant", "content": "Hello!"}
    assert result.data["choices"][0]["finish_reason"] == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (12, 3)


async def test_options_and_base_url_with_v1(make: Any, anthropic_upstream: FakeAnthropicUpstream) -> None:
    provider = make(base_url=anthropic_upstream.url + "/v1",
                    options={"anthropic_version": "2024-01-01", "default_max_tokens": 256},
                    headers={"x-extra": "1"})
    await provider.complete(_body())
    req = anthropic_upstream.requests[-1]
    assert req.path == "/v1/messages"
    assert req.headers["anthropic-version"] == "2024-01-01" and req.headers["x-extra"] == "1"
    assert req.body["max_tokens"] == 256
    await provider.complete(_body(max_tokens=9))
    assert anthropic_upstream.requests[-1].body["max_tokens"] == 9


async def test_complete_tool_use(make: Any, anthropic_upstream: FakeAnthropicUpstream) -> None:
    anthropic_upstream.reply_tool_use("get_weather", {"city": "Paris"}, text="Checking.")
    tools = [{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]
    result = await make().complete(_body(tools=tools, tool_choice="required"))
    assert anthropic_upstream.requests[-1].body["tools"] == [
        {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}]
    assert anthropic_upstream.requests[-1].body["tool_choice"] == {"type": "any"}
    choice = result.data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["id"] == "toolu_fake01" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}


async def _collect(provider: AnthropicProvider, body: dict[str, Any]) -> list[dict[str, Any]]:
    return [chunk async for chunk in provider.stream(body)]


async def test_stream_text(make: Any, anthropic_upstream: FakeAnthropicUpstream) -> None:
    anthropic_upstream.reply_text("A fairly long streamed answer.",
                        usage={"input_tokens": 21, "output_tokens": 8})
    chunks = await _collect(make(), _body(stream=True))
    assert anthropic_upstream.requests[-1].body["stream"] is True
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    out = assemble_openai_chunks(chunks)
    assert out["content"] == "A fairly long streamed answer."
    assert out["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["prompt_tokens"] == 21
    assert chunks[-1]["usage"]["completion_tokens"] == 8


async def test_stream_tool_calls(make: Any, anthropic_upstream: FakeAnthropicUpstream) -> None:
    anthropic_upstream.enqueue(Reply(stop_reason="tool_use", content=[
        {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {"tz": "UTC"}},
    ]))
    out = assemble_openai_chunks(await _collect(make(), _body(stream=True)))
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in out["tool_calls"]] == [
        ("toolu_a", "get_weather", {"city": "Oslo"}), ("toolu_b", "get_time", {"tz": "UTC"})]
    assert out["finish_reason"] == "tool_calls" and out["content"] == ""


async def test_stream_ttft_timeout(make: Any, anthropic_upstream: FakeAnthropicUpstream) -> None:
    anthropic_upstream.enqueue(Reply(delay=1.0))
    with pytest.raises(TimeoutError_):
        await _collect(make(ttft_timeout=0.2), _body(stream=True))


async def test_stream_error_event_mid_stream(make: Any, anthropic_upstream: FakeAnthropicUpstream) -> None:
    anthropic_upstream.enqueue(Reply(error_after=3, error_type="overloaded_error"))
    with pytest.raises(UpstreamError) as exc:
        await _collect(make(), _body(stream=True))
    assert exc.value.deployment == "claude" and exc.value.code == "overloaded_error"


async def test_stream_cut_short(make: Any, anthropic_upstream: FakeAnthropicUpstream) -> None:
    anthropic_upstream.enqueue(Reply(cut_after=4))
    with pytest.raises(UpstreamError, match="ended the stream early"):
        await _collect(make(), _body(stream=True))


@pytest.mark.parametrize(("status", "etype", "error"), [
    (429, "rate_limit_error", RateLimitedError),
    (529, "overloaded_error", UpstreamUnavailableError),
    (401, "authentication_error", AuthenticationError),
    (400, "invalid_request_error", BadRequestError),
    (500, "api_error", UpstreamError),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_error_mapping(
    make: Any, anthropic_upstream: FakeAnthropicUpstream, status: int, etype: str,
    error: type[Exception], stream: bool,
) -> None:
    anthropic_upstream.reply_error(status, etype, headers={"retry-after": "7"})
    provider = make()
    with pytest.raises(error) as exc:
        if stream:
            await _collect(provider, _body(stream=True))
        else:
            await provider.complete(_body())
    if status in (429, 529):
        assert getattr(exc.value, "retry_after", None) == 7.0


async def test_wrong_key_is_an_authentication_error(
    make: Any, anthropic_upstream: FakeAnthropicUpstream
) -> None:
    anthropic_upstream.expected_api_key = "another-key"
    with pytest.raises(AuthenticationError):
        await make().complete(_body())


async def test_connection_refused_is_unavailable(make: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UpstreamUnavailableError):
        await make(base_url=f"http://127.0.0.1:{port}").complete(_body())


async def test_bad_openai_body_is_rejected_before_sending(
    make: Any, anthropic_upstream: FakeAnthropicUpstream
) -> None:
    with pytest.raises(BadRequestError) as exc:
        await make().complete(_body(n=3))
    assert exc.value.param == "n" and anthropic_upstream.requests == []
