"""The OpenAI endpoint end to end: official SDK → flagman → fake upstream, all real HTTP."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest
from tests.conftest import openai_model
from tests.fakes.openai_upstream import Reply


def _client(gw) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)


def test_sync_completion_passes_fields_through(make_gateway, upstream) -> None:
    gw = make_gateway({"models": [openai_model("gpt-x", upstream, model="up-x",
                                               input_price=2.0, output_price=10.0)]})
    raw = _client(gw).chat.completions.with_raw_response.create(
        model="gpt-x", messages=[{"role": "user", "content": "hi"}], seed=7, n=1, stop=["\n"],
        user="u1", response_format={"type": "json_object"}, metadata={"team": "a"},
        extra_body={"vendor_knob": {"deep": [1, 2]}},
    )
    resp = raw.parse()
    assert resp.choices[0].message.content == "Hello from the fake upstream."
    sent = upstream.requests[-1].body
    assert sent["model"] == "up-x"  # upstream id replaces the client's name
    for key, val in {"seed": 7, "stop": ["\n"], "user": "u1", "metadata": {"team": "a"},
                     "vendor_knob": {"deep": [1, 2]},
                     "response_format": {"type": "json_object"}}.items():
        assert sent[key] == val
    h = raw.headers
    assert h["x-flagman-model"] == "gpt-x"
    assert len(h["x-flagman-request-id"]) == 32
    assert float(h["x-flagman-cost-usd"]) == pytest.approx((9 * 2.0 + 5 * 10.0) / 1e6)
    assert 0 <= float(h["x-flagman-overhead-ms"]) < 1000
    # unknown response fields from the upstream reach the client too
    assert resp.model_extra["echo"]["seed"] == 7


def test_tool_call_round_trip(make_gateway, upstream) -> None:
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}
    upstream.enqueue(Reply(tool_calls=[call]), Reply(text="It is sunny."))
    gw = make_gateway({"models": [openai_model("m", upstream)]})
    c = _client(gw)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    msgs = [{"role": "user", "content": "weather in Paris?"}]
    r1 = c.chat.completions.create(model="m", messages=msgs, tools=tools, tool_choice="auto")
    tc = r1.choices[0].message.tool_calls[0]
    assert r1.choices[0].finish_reason == "tool_calls"
    assert json.loads(tc.function.arguments) == {"city": "Paris"}
    msgs += [r1.choices[0].message.model_dump(exclude_none=True),
             {"role": "tool", "tool_call_id": tc.id, "content": "sunny"}]
    r2 = c.chat.completions.create(model="m", messages=msgs, tools=tools)
    assert r2.choices[0].message.content == "It is sunny."
    sent = upstream.requests[-1].body
    assert sent["tools"] == tools and sent["messages"][-1]["tool_call_id"] == "call_1"


def test_streaming_with_and_without_usage(make_gateway, upstream) -> None:
    gw = make_gateway({"models": [openai_model("m", upstream, input_price=1, output_price=1)]})
    c = _client(gw)
    chunks = list(c.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True}))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text.strip() == "Hello from the fake upstream."
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    chunks = list(c.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert all(ch.usage is None for ch in chunks)
    # the gateway asked the upstream for usage anyway, to know the cost
    assert upstream.requests[-1].body["stream_options"] == {"include_usage": True}
    rows = gw.rows()
    assert rows[-1]["stream"] == 1 and rows[-1]["completion_tokens"] == 5
    assert rows[-1]["cost_usd"] == pytest.approx(14 / 1e6)


async def test_async_client_and_streaming(make_gateway, upstream) -> None:
    gw = make_gateway({"models": [openai_model("m", upstream)]})
    c = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    results = await asyncio.gather(*[
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": str(i)}])
        for i in range(20)])
    assert all(r.choices[0].message.content for r in results)
    stream = await c.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
    parts = [ch.choices[0].delta.content async for ch in stream if ch.choices]
    assert "".join(p or "" for p in parts).startswith("Hello")
    await c.close()


def test_models_health_metrics(make_gateway, upstream) -> None:
    gw = make_gateway({"models": [openai_model("a", upstream), openai_model("b", upstream)]})
    ids = [m.id for m in _client(gw).models.list()]
    assert ids == ["a", "b"]
    assert gw.get("/healthz").json() == {"status": "ok"}
    assert gw.get("/readyz").status_code == 200
    _client(gw).chat.completions.create(model="a", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError):
        _client(gw).chat.completions.create(model="zzz", messages=[{"role": "user", "content": "x"}])
    gw.flush_log()
    text = gw.get("/metrics").text
    assert 'flagman_requests_total{deployment="a",model="a",status="200"} 1.0' in text
    assert 'flagman_errors_total{error_class="not_found",model="(unknown)"} 1.0' in text
    assert "flagman_overhead_seconds_bucket" in text
    assert "flagman_cost_usd_total" in text


def test_log_rows(make_gateway, upstream) -> None:
    upstream.enqueue(Reply(status=503))
    gw = make_gateway({"models": [openai_model("m", upstream), openai_model("m", upstream)]})
    r = httpx.post(gw.url + "/v1/chat/completions",
                   json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200
    row = gw.rows()[-1]
    assert row["id"] == r.headers["x-flagman-request-id"]
    assert row["attempt_count"] == 2
    attempts = json.loads(row["attempts"])
    assert attempts[0]["error_class"] == "upstream_unavailable" and attempts[1]["error_class"] is None
    assert row["prompt"] is None  # bodies are only stored when the config asks
    assert row["group_name"] == "m" and row["status"] == 200
    assert r.headers["x-flagman-attempts"].endswith(":ok")
