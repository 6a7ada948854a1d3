"""Anthropic ↔ OpenAI translation: requests, responses, streams, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import orjson
import pytest
from tests.fakes.anthropic_upstream import (
    FakeAnthropicUpstream,
    assemble_openai_chunks,
    message_events,
)

from flagman.errors import BadRequestError, UpstreamError
from flagman.formats.anthropic import (
    AnthropicStreamToOpenAI,
    OpenAIStreamToAnthropic,
    anthropic_error_body,
    anthropic_request_to_openai,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
    openai_response_to_anthropic,
    sse_event,
)

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
def anthropic_upstream() -> Iterator[FakeAnthropicUpstream]:
    with FakeAnthropicUpstream() as up:
        yield up


def _req(**kw: Any) -> dict[str, Any]:
    return {"model": "claude-x", "max_tokens": 100,
            "messages": [{"role": "user", "content": "hi"}], **kw}


# -- requests -------------------------------------------------------------------------------


def test_text_request_round_trip_keeps_system_sampling_and_user() -> None:
    body = _req(
        system=[{"type": "text", "text": "Be brief."}],
        messages=[
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi! How can I help?"},
            {"role": "user", "content": [{"type": "text", "text": "Tell me a joke"}]},
        ],
        temperature=0.3, top_p=0.9, top_k=40, stop_sequences=["END"],
        metadata={"user_id": "u-1"}, stream=False,
    )
    oai = anthropic_request_to_openai(body)
    assert oai["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": "Tell me a joke"},
    ]
    assert (oai["model"], oai["max_tokens"], oai["stream"]) == ("claude-x", 100, False)
    assert (oai["stop"], oai["user"], oai["top_k"], oai["temperature"]) == (["END"], "u-1", 40, 0.3)
    back = openai_request_to_anthropic(oai)
    assert back["system"] == [{"type": "text", "text": "Be brief."}]
    assert [m["role"] for m in back["messages"]] == ["user", "assistant", "user"]
    assert back["messages"][2]["content"] == [{"type": "text", "text": "Tell me a joke"}]
    assert back["stop_sequences"] == ["END"]
    assert back["metadata"] == {"user_id": "u-1"}
    assert (back["top_k"], back["top_p"], back["max_tokens"]) == (40, 0.9, 100)
    assert "stream" not in back and "user" not in back


def test_streaming_request_asks_openai_upstreams_for_usage() -> None:
    oai = anthropic_request_to_openai(_req(stream=True))
    assert oai["stream"] is True
    assert oai["stream_options"] == {"include_usage": True}


def test_tools_round_trip() -> None:
    body = _req(
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        messages=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                 "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather",
                 "input": {"city": "Rome"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "toolu_2",
                 "content": [{"type": "text", "text": "25C"}]},
                {"type": "text", "text": "Which is warmer?"},
            ]},
        ],
    )
    oai = anthropic_request_to_openai(body)
    assert oai["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": WEATHER_TOOL["input_schema"]}}]
    assert oai["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert oai["parallel_tool_calls"] is False
    assistant = oai["messages"][1]
    assert assistant["content"] == "Checking."
    assert [json.loads(c["function"]["arguments"]) for c in assistant["tool_calls"]] == [
        {"city": "Paris"}, {"city": "Rome"}]
    assert oai["messages"][2:] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "25C"},
        {"role": "user", "content": "Which is warmer?"},
    ]
    back = openai_request_to_anthropic(oai)
    assert back["tools"] == [WEATHER_TOOL]
    assert back["tool_choice"] == {"type": "tool", "name": "get_weather",
                                   "disable_parallel_tool_use": True}
    assert back["messages"][1] == body["messages"][1]
    # the two tool messages and the user's text become one user turn again
    assert back["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "25C"},
        {"type": "text", "text": "Which is warmer?"},
    ]
    assert len(back["messages"]) == 3


@pytest.mark.parametrize(("anthropic_choice", "openai_choice"), [
    ({"type": "auto"}, "auto"), ({"type": "any"}, "required"), ({"type": "none"}, "none"),
])
def test_tool_choice_modes(anthropic_choice: dict[str, Any], openai_choice: str) -> None:
    oai = anthropic_request_to_openai(_req(tools=[WEATHER_TOOL], tool_choice=anthropic_choice))
    assert oai["tool_choice"] == openai_choice
    assert openai_request_to_anthropic(oai)["tool_choice"] == anthropic_choice


def test_images_round_trip() -> None:
    blocks = [
        {"type": "text", "text": "Compare these"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    oai = anthropic_request_to_openai(_req(messages=[{"role": "user", "content": blocks}]))
    parts = oai["messages"][0]["content"]
    assert parts[1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert parts[2] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    assert openai_request_to_anthropic(oai)["messages"][0]["content"] == blocks


def test_openai_only_fields_are_dropped_and_limits_adapted() -> None:
    oai = {
        "model": "claude-x", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "developer", "content": "Rules."}, {"role": "user", "content": "q"}],
        "presence_penalty": 0.5, "seed": 3, "response_format": {"type": "json_object"},
        "temperature": 1.7, "stop": "###", "max_completion_tokens": 55,
    }
    out = openai_request_to_anthropic(oai)
    assert set(out) == {"model", "messages", "max_tokens", "system", "stream", "temperature",
                        "stop_sequences"}
    assert (out["max_tokens"], out["temperature"], out["stop_sequences"]) == (55, 1.0, ["###"])
    assert out["system"] == [{"type": "text", "text": "Rules."}]
    no_max = {"model": "m", "messages": [{"role": "user", "content": "q"}]}
    assert openai_request_to_anthropic(no_max, default_max_tokens=99)["max_tokens"] == 99
    with pytest.raises(BadRequestError) as exc:
        openai_request_to_anthropic({**no_max, "n": 2})
    assert exc.value.param == "n"


def test_unknown_anthropic_fields_pass_through_to_openai_shape() -> None:
    oai = anthropic_request_to_openai(_req(thinking={"type": "enabled", "budget_tokens": 1024}))
    assert oai["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert openai_request_to_anthropic(oai)["thinking"] == oai["thinking"]


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "m", "max_tokens": 5}, "messages"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    (_req(max_tokens="10"), "max_tokens"),
    (_req(max_tokens=0), "max_tokens"),
    (_req(model=None), "model"),
    (_req(messages="hello"), "messages"),
    (_req(messages=[{"role": "system", "content": "x"}]), "messages[0].role"),
    (_req(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
    (_req(messages=[{"role": "user", "content": [{"type": "video"}]}]),
     "messages[0].content[0].type"),
    (_req(system=5), "system"),
    (_req(tools=[{"name": "t"}]), "tools[0].input_schema"),
    (_req(tool_choice={"type": "sometimes"}), "tool_choice.type"),
    (_req(stop_sequences="END"), "stop_sequences"),
    (_req(temperature="hot"), "temperature"),
    (_req(stream="yes"), "stream"),
])
def test_malformed_request_names_the_param(body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequestError) as exc:
        anthropic_request_to_openai(body)
    assert exc.value.param == param
    assert param in exc.value.message


# -- responses ------------------------------------------------------------------------------


def _completion(message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-x",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
    }


@pytest.mark.parametrize(("finish", "stop"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"),
    ("content_filter", "refusal"),
])
def test_finish_reason_to_stop_reason(finish: str, stop: str) -> None:
    msg = openai_response_to_anthropic(
        _completion({"role": "assistant", "content": "x"}, finish), "claude-x")
    assert msg["stop_reason"] == stop


@pytest.mark.parametrize(("stop", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"),
])
def test_stop_reason_to_finish_reason(stop: str, finish: str) -> None:
    data = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "text", "text": "x"}], "stop_reason": stop,
            "usage": {"input_tokens": 3, "output_tokens": 1}}
    assert anthropic_response_to_openai(data)["choices"][0]["finish_reason"] == finish


def test_response_round_trip_with_tool_calls_and_usage() -> None:
    calls = [{"id": "call_1", "type": "function",
              "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
    oai = _completion({"role": "assistant", "content": "Let me look.", "tool_calls": calls},
                      "tool_calls")
    msg = openai_response_to_anthropic(oai, "claude-x")
    assert msg["type"] == "message" and msg["model"] == "claude-x"
    assert msg["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
    ]
    assert (msg["usage"]["input_tokens"], msg["usage"]["output_tokens"]) == (20, 9)
    back = anthropic_response_to_openai(msg)
    assert back["choices"][0]["message"]["content"] == "Let me look."
    call = back["choices"][0]["message"]["tool_calls"][0]
    assert (call["id"], json.loads(call["function"]["arguments"])) == ("call_1", {"city": "Paris"})
    assert back["choices"][0]["finish_reason"] == "tool_calls"
    assert back["usage"] == {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29}


def test_cached_prompt_tokens_move_between_usage_fields() -> None:
    oai = _completion({"role": "assistant", "content": "x"}, "stop")
    oai["usage"]["prompt_tokens_details"] = {"cached_tokens": 15}
    usage = openai_response_to_anthropic(oai, "m")["usage"]
    assert (usage["input_tokens"], usage["cache_read_input_tokens"]) == (5, 15)
    back = anthropic_response_to_openai({"content": [], "usage": usage})["usage"]
    assert back["prompt_tokens"] == 20 and back["prompt_tokens_details"] == {"cached_tokens": 15}


# -- streams --------------------------------------------------------------------------------


def _openai_chunks(text: str, calls: list[tuple[str, str, str]], finish: str) -> list[dict]:
    """An OpenAI stream: text in pieces, then each tool call's name and argument pieces."""
    chunks: list[dict[str, Any]] = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
    chunks += [{"choices": [{"index": 0, "delta": {"content": text[i:i + 4]}}]}
               for i in range(0, len(text), 4)]
    for n, (cid, name, args) in enumerate(calls):
        first = {"index": n, "id": cid, "type": "function",
                 "function": {"name": name, "arguments": ""}}
        chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [first]}}]})
        for i in range(0, len(args), 3):
            part = {"index": n, "function": {"arguments": args[i:i + 3]}}
            chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [part]}}]})
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    chunks.append({"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 12}})
    return chunks


def _to_anthropic_events(chunks: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    tr = OpenAIStreamToAnthropic("claude-x", message_id="msg_test")
    events = [e for c in chunks for e in tr.feed(c)]
    return events + tr.finish()


def _check_block_structure(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Blocks open in index order, get deltas only while open, and all close."""
    open_index: int | None = None
    kinds: list[str] = []
    for name, data in events:
        assert name == data["type"]
        if name == "content_block_start":
            assert open_index is None and data["index"] == len(kinds)
            open_index = data["index"]
            kinds.append(data["content_block"]["type"])
        elif name == "content_block_delta":
            assert data["index"] == open_index
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
    assert open_index is None
    assert [n for n, _ in events][0] == "message_start"
    assert [n for n, _ in events][-2:] == ["message_delta", "message_stop"]
    return kinds


def test_openai_stream_to_anthropic_and_back_text() -> None:
    events = _to_anthropic_events(_openai_chunks("Hello there, friend.", [], "stop"))
    assert _check_block_structure(events) == ["text"]
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert events[-2][1]["usage"]["output_tokens"] == 12
    back = AnthropicStreamToOpenAI("claude-x")
    chunks = [c for name, data in events for c in back.feed(name, data)]
    out = assemble_openai_chunks(chunks)
    assert out["content"] == "Hello there, friend."
    assert out["finish_reason"] == "stop" and out["tool_calls"] == []
    assert out["usage"]["prompt_tokens"] == 30 and out["usage"]["completion_tokens"] == 12
    assert chunks[-1]["choices"] == [] and back.finished


def test_openai_stream_with_several_tool_calls() -> None:
    calls = [("call_a", "get_weather", '{"city": "Paris"}'),
             ("call_b", "get_time", '{"tz": "Europe/Rome"}')]
    events = _to_anthropic_events(_openai_chunks("Two calls.", calls, "tool_calls"))
    assert _check_block_structure(events) == ["text", "tool_use", "tool_use"]
    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert [(b.get("id"), b.get("name")) for b in starts[1:]] == [
        ("call_a", "get_weather"), ("call_b", "get_time")]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    back = AnthropicStreamToOpenAI("claude-x")
    out = assemble_openai_chunks([c for n, d in events for c in back.feed(n, d)])
    assert out["content"] == "Two calls."
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in out["tool_calls"]] == [
        ("call_a", "get_weather", {"city": "Paris"}), ("call_b", "get_time", {"tz": "Europe/Rome"})]
    assert out["finish_reason"] == "tool_calls"


def test_anthropic_stream_matches_the_json_translation() -> None:
    message = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "Looking it up for you."},
                    {"type": "tool_use", "id": "toolu_9", "name": "get_weather",
                     "input": {"city": "Oslo", "units": "metric"}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 40, "output_tokens": 17},
    }
    tr = AnthropicStreamToOpenAI("claude-x")
    out = assemble_openai_chunks([c for n, d in message_events(message, 3) for c in tr.feed(n, d)])
    expected = anthropic_response_to_openai(message)
    exp_msg = expected["choices"][0]["message"]
    assert out["content"] == exp_msg["content"]
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in out["tool_calls"]] == [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in exp_msg["tool_calls"]]
    assert out["finish_reason"] == expected["choices"][0]["finish_reason"] == "tool_calls"
    assert out["usage"] == expected["usage"]


def test_empty_openai_stream_still_forms_a_message() -> None:
    tr = OpenAIStreamToAnthropic("claude-x")
    events = tr.finish()
    assert [n for n, _ in events] == ["message_start", "message_delta", "message_stop"]
    assert tr.finish() == []


def test_error_event_raises_upstream_error() -> None:
    tr = AnthropicStreamToOpenAI("claude-x")
    tr.feed("message_start", {"type": "message_start", "message": {"usage": {}}})
    with pytest.raises(UpstreamError) as exc:
        tr.feed("error", {"type": "error",
                          "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert exc.value.code == "overloaded_error" and "Overloaded" in exc.value.message


def test_sse_event_encoding() -> None:
    raw = sse_event("ping", {"type": "ping"})
    assert raw == b'event: ping\ndata: {"type":"ping"}\n\n'


# -- the official SDK reads what we produce -------------------------------------------------


def _sdk(anthropic_upstream: FakeAnthropicUpstream) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=anthropic_upstream.url, api_key="test", max_retries=0)


def test_sdk_parses_translated_stream(anthropic_upstream: FakeAnthropicUpstream) -> None:
    calls = [("call_a", "get_weather", '{"city": "Paris"}'),
             ("call_b", "get_weather", '{"city": "Rome"}')]
    events = _to_anthropic_events(_openai_chunks("Checking both.", calls, "tool_calls"))
    anthropic_upstream.reply_raw(b"".join(sse_event(n, d) for n, d in events))
    with _sdk(anthropic_upstream).messages.stream(
        model="claude-x", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == "Checking both."
    assert final.id == "msg_test" and final.stop_reason == "tool_use"
    assert final.content[0].type == "text" and final.content[0].text == "Checking both."
    tools = [(b.id, b.input) for b in final.content if b.type == "tool_use"]
    assert tools == [("call_a", {"city": "Paris"}), ("call_b", {"city": "Rome"})]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (30, 12)


def test_sdk_parses_translated_message(anthropic_upstream: FakeAnthropicUpstream) -> None:
    calls = [{"id": "call_1", "type": "function",
              "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
    oai = _completion({"role": "assistant", "content": "Sure.", "tool_calls": calls}, "tool_calls")
    body = orjson.dumps(openai_response_to_anthropic(oai, "claude-x"))
    anthropic_upstream.reply_raw(body, content_type="application/json")
    msg = _sdk(anthropic_upstream).messages.create(
        model="claude-x", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert msg.stop_reason == "tool_use" and msg.usage.input_tokens == 20
    assert msg.content[1].type == "tool_use" and msg.content[1].input == {"city": "Paris"}


@pytest.mark.parametrize(("status", "error_class", "anthropic_type", "sdk_error"), [
    (400, "bad_request", "invalid_request_error", anthropic.BadRequestError),
    (400, "context_window_exceeded", "invalid_request_error", anthropic.BadRequestError),
    (401, "authentication", "authentication_error", anthropic.AuthenticationError),
    (403, "permission", "permission_error", anthropic.PermissionDeniedError),
    (404, "not_found", "not_found_error", anthropic.NotFoundError),
    (413, "bad_request", "request_too_large", anthropic.APIStatusError),
    (429, "rate_limited", "rate_limit_error", anthropic.RateLimitError),
    (502, "upstream_error", "api_error", anthropic.InternalServerError),
    (503, "upstream_unavailable", "overloaded_error", anthropic.InternalServerError),
    (504, "timeout", "api_error", anthropic.InternalServerError),
])
def test_error_bodies_per_class(
    anthropic_upstream: FakeAnthropicUpstream, status: int, error_class: str, anthropic_type: str,
    sdk_error: type[Exception],
) -> None:
    body = anthropic_error_body(status, error_class, "nope")
    assert body == {"type": "error", "error": {"type": anthropic_type, "message": "nope"}}
    anthropic_upstream.reply_raw(orjson.dumps(body), content_type="application/json", status=status)
    with pytest.raises(sdk_error) as exc:
        _sdk(anthropic_upstream).messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert getattr(exc.value, "body", {})["error"]["type"] == anthropic_type
