"""Streams fail over until the first token reaches the client; after that, an error event."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from tests.conftest import openai_model
from tests.fakes.gateway import GatewayServer
from tests.fakes.openai_upstream import Reply
from tests.reliability.helpers import MSG, MakeGateway, Upstream, attempts_of

ORDERED = {"m": {"strategy": "ordered"}}


def _stream(gw: GatewayServer) -> tuple[httpx.Headers, list[str]]:
    with httpx.stream("POST", gw.url + "/v1/chat/completions", timeout=10,
                      json={"model": "m", "messages": MSG, "stream": True}) as r:
        assert r.status_code == 200
        return r.headers, [ln[6:] for ln in r.iter_lines() if ln.startswith("data: ")]


def _text(events: list[str]) -> str:
    chunks = [json.loads(e) for e in events if e != "[DONE]"]
    return "".join(c["delta"].get("content") or "" for ch in chunks for c in ch.get("choices", []))


def _pair(make_gateway: MakeGateway, a: Upstream, b: Upstream, **a_extra: Any) -> GatewayServer:
    return make_gateway({"models": [openai_model("m", a, id="a", **a_extra),
                                    openai_model("m", b, id="b")], "groups": ORDERED})


@pytest.mark.parametrize(("reply", "ttft"), [
    (Reply(ttft_delay=2.0), 0.2),  # nothing at all before the timeout
    # the role announcement (OpenAI's, with "refusal": null) at once, the first word
    # after 2 s: that announcement is not a first token, so TTFT still fires
    (Reply(chunk_delay=2.0), 0.3),
], ids=["silent", "role-chunk-then-stall"])
def test_ttft_timeout_fails_over_before_first_token(
    make_gateway: MakeGateway, upstream: Upstream, upstream_b: Upstream, reply: Reply,
    ttft: float,
) -> None:
    upstream.enqueue(reply)
    gw = _pair(make_gateway, upstream, upstream_b, ttft_timeout=ttft)
    headers, events = _stream(gw)
    assert events[-1] == "[DONE]" and _text(events).strip() == "Hello from the fake upstream."
    assert headers["x-flagman-model"] == "b"
    assert headers["x-flagman-attempts"] == "a:timeout,b:ok"
    row = gw.rows()[-1]
    assert row["status"] == 200 and 150 < row["ttft_ms"] < 5000


def test_cut_after_role_chunk_fails_over(
    make_gateway: MakeGateway, upstream: Upstream, upstream_b: Upstream,
) -> None:
    upstream.enqueue(Reply(cut_after=1))
    gw = _pair(make_gateway, upstream, upstream_b)
    headers, events = _stream(gw)
    assert headers["x-flagman-model"] == "b" and events[-1] == "[DONE]"
    assert attempts_of_headers(headers)[0].startswith("a:upstream_")
    first = json.loads(events[0])  # the client still gets the role chunk first, once
    assert first["choices"][0]["delta"].get("role") == "assistant"
    assert sum('"role"' in e for e in events) == 1


def attempts_of_headers(h: httpx.Headers) -> list[str]:
    return h.get("x-flagman-attempts", "").split(",")


def test_ttft_does_not_limit_the_rest_of_the_stream(
    make_gateway: MakeGateway, upstream: Upstream, upstream_b: Upstream,
) -> None:
    upstream.enqueue(Reply(text="one two three four five", chunk_delay=0.25))
    gw = _pair(make_gateway, upstream, upstream_b, ttft_timeout=1.0)
    headers, events = _stream(gw)  # ~2 s in total, first token after 0.25 s
    assert headers["x-flagman-model"] == "a" and "x-flagman-attempts" not in headers
    assert _text(events).split() == ["one", "two", "three", "four", "five"]


def test_total_timeout_mid_stream_ends_with_error_event(
    make_gateway: MakeGateway, upstream: Upstream, upstream_b: Upstream,
) -> None:
    upstream.enqueue(Reply(text=" ".join(["w"] * 30), chunk_delay=0.1))
    gw = _pair(make_gateway, upstream, upstream_b, timeout=1.0)
    headers, events = _stream(gw)
    assert headers["x-flagman-model"] == "a"
    assert events[-1] == "[DONE]"
    err = json.loads(events[-2])["error"]
    assert err["code"] == "timeout" and err["type"] and err["message"]
    assert 0 < len(_text(events).split()) < 30
    row = gw.rows()[-1]
    assert row["status"] == 504 and row["error_class"] == "timeout"
    assert gw.get("/readyz").json()["deployments"]["a"]["last_error"] == "timeout"
    assert len(upstream_b.requests) == 0  # after the first token there is no failover


def test_stream_with_only_failures_gets_a_json_error(
    make_gateway: MakeGateway, upstream: Upstream, upstream_b: Upstream,
) -> None:
    upstream.default = Reply(status=503)
    upstream_b.default = Reply(status=503)
    gw = _pair(make_gateway, upstream, upstream_b)
    r = httpx.post(gw.url + "/v1/chat/completions",
                   json={"model": "m", "messages": MSG, "stream": True})
    assert r.status_code == 503 and r.json()["error"]["code"] == "upstream_unavailable"
    assert len(attempts_of(r)) == 3
