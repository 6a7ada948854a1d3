"""Bad input gets a 4xx with an OpenAI-style error body, and the server keeps serving."""

from __future__ import annotations

import httpx
import pytest
from tests.conftest import openai_model


@pytest.fixture
def gw(make_gateway, upstream):  # type: ignore[no-untyped-def]
    return make_gateway({"server": {"max_body_bytes": 2000},
                         "models": [openai_model("m", upstream)]})


GOOD = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400,
         "invalid_json"),
        ({"content": b"[1, 2]", "headers": {"content-type": "application/json"}}, 400,
         "invalid_json"),
        ({"json": {"model": "m"}}, 400, "invalid_messages"),
        ({"json": {"model": "m", "messages": "hi"}}, 400, "invalid_messages"),
        ({"json": {"model": "m", "messages": [{"content": "no role"}]}}, 400, "invalid_messages"),
        ({"json": {"messages": [{"role": "user", "content": "x"}]}}, 400, "missing_model"),
        ({"json": {**GOOD, "model": "nope"}}, 404, "model_not_found"),
        ({"json": {**GOOD, "messages": [{"role": "user", "content": "x" * 5000}]}}, 413,
         "request_too_large"),
        ({"content": b"model=m", "headers": {"content-type": "application/x-www-form-urlencoded"}},
         415, "unsupported_media_type"),
    ],
)
def test_bad_request_gets_openai_error(gw, kwargs, status, code) -> None:  # type: ignore[no-untyped-def]
    r = gw.post("/v1/chat/completions", **kwargs)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code
    assert isinstance(err["message"], str) and err["type"]
    assert "Traceback" not in r.text
    assert gw.post("/v1/chat/completions", json=GOOD).status_code == 200


def test_chunked_oversized_body_is_refused(gw) -> None:  # type: ignore[no-untyped-def]
    def gen():  # type: ignore[no-untyped-def]
        yield b'{"model": "m", "messages": [{"role": "user", "content": "'
        for _ in range(100):
            yield b"x" * 100
        yield b'"}]}'

    r = httpx.post(gw.url + "/v1/chat/completions", content=gen(),
                   headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert gw.post("/v1/chat/completions", json=GOOD).status_code == 200


def test_unknown_path_and_method(gw) -> None:  # type: ignore[no-untyped-def]
    r = gw.get("/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url"
    r = gw.get("/v1/chat/completions")
    assert r.status_code == 405 and "error" in r.json()


def test_error_responses_carry_request_id(gw) -> None:  # type: ignore[no-untyped-def]
    r = gw.post("/v1/chat/completions", json={**GOOD, "model": "nope"})
    assert len(r.headers["x-flagman-request-id"]) == 32
