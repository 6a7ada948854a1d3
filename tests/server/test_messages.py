"""POST /v1/messages with the official anthropic SDK, routed to OpenAI- and Anthropic-shaped upstreams."""

from __future__ import annotations

import anthropic
import pytest
from tests.conftest import openai_model
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.openai_upstream import Reply

TOOLS = [{"name": "get_weather", "description": "weather",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]


def _client(gw) -> anthropic.Anthropic:  # type: ignore[no-untyped-def]
    return anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0)


def test_messages_to_openai_upstream(make_gateway, upstream) -> None:
    gw = make_gateway({"models": [openai_model("claude-like", upstream, input_price=3,
                                               output_price=15)]})
    msg = _client(gw).messages.create(
        model="claude-like", max_tokens=100, system="be brief",
        messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].type == "text" and msg.content[0].text.startswith("Hello")
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens == 9 and msg.usage.output_tokens == 5
    sent = upstream.requests[-1].body
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}
    assert sent["max_tokens"] == 100


def test_messages_tool_use_over_openai(make_gateway, upstream) -> None:
    call = {"id": "call_9", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}
    upstream.enqueue(Reply(tool_calls=[call]), Reply(tool_calls=[call]))
    gw = make_gateway({"models": [openai_model("m", upstream)]})
    c = _client(gw)
    msg = c.messages.create(model="m", max_tokens=50, tools=TOOLS,
                            messages=[{"role": "user", "content": "weather?"}])
    block = msg.content[0]
    assert msg.stop_reason == "tool_use" and block.type == "tool_use"
    assert block.name == "get_weather" and block.input == {"city": "Oslo"}
    assert upstream.requests[-1].body["tools"][0]["function"]["name"] == "get_weather"
    with c.messages.stream(model="m", max_tokens=50, tools=TOOLS,
                           messages=[{"role": "user", "content": "weather?"}]) as s:
        final = s.get_final_message()
    assert final.content[0].type == "tool_use" and final.content[0].input == {"city": "Oslo"}


def test_messages_streaming_text(make_gateway, upstream) -> None:
    gw = make_gateway({"models": [openai_model("m", upstream)]})
    with _client(gw).messages.stream(model="m", max_tokens=50,
                                     messages=[{"role": "user", "content": "hi"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text.strip() == "Hello from the fake upstream."
    assert final.usage.output_tokens == 5


def test_messages_to_anthropic_upstream(make_gateway) -> None:
    with FakeAnthropicUpstream() as up:
        up.reply_text("Bonjour")
        gw = make_gateway({"models": [{"name": "claude", "provider": "anthropic",
                                       "base_url": up.url, "model": "claude-3-5-haiku"}]})
        msg = _client(gw).messages.create(model="claude", max_tokens=20,
                                          messages=[{"role": "user", "content": "hi"}])
        assert msg.content[0].text == "Bonjour"
        assert up.requests[-1].body["model"] == "claude-3-5-haiku"


def test_messages_errors_use_anthropic_shape(make_gateway, upstream) -> None:
    gw = make_gateway({"models": [openai_model("m", upstream)]})
    with pytest.raises(anthropic.NotFoundError) as info:
        _client(gw).messages.create(model="nope", max_tokens=5,
                                    messages=[{"role": "user", "content": "x"}])
    assert info.value.body["type"] == "error"
    assert info.value.body["error"]["type"] == "not_found_error"
    r = gw.post("/v1/messages", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
