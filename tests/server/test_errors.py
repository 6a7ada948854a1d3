"""Upstream errors map to the flagman error tree, by status and structured fields."""

from __future__ import annotations

import openai
import pytest
from tests.conftest import openai_model
from tests.fakes.openai_upstream import Reply

CASES = [
    (Reply(status=400), 400, "bad_request", openai.BadRequestError),
    (Reply(status=400, error_code="context_length_exceeded"), 400, "context_window_exceeded",
     openai.BadRequestError),
    (Reply(status=400, error_code="content_policy_violation"), 400, "content_policy",
     openai.BadRequestError),
    (Reply(status=401), 401, "authentication", openai.AuthenticationError),
    (Reply(status=403), 403, "permission", openai.PermissionDeniedError),
    (Reply(status=404), 404, "not_found", openai.NotFoundError),
    (Reply(status=429, headers={"retry-after": "7"}), 429, "rate_limited", openai.RateLimitError),
    (Reply(status=503), 503, "upstream_unavailable", openai.InternalServerError),
    (Reply(status=500), 502, "upstream_error", openai.InternalServerError),
    (Reply(invalid_json=True), 502, "upstream_error", openai.InternalServerError),
    # one reset is resent on a fresh connection (the keep-alive race); two are an outage
    ([Reply(reset=True), Reply(reset=True)], 503, "upstream_unavailable",
     openai.InternalServerError),
    (Reply(delay=3), 504, "timeout", openai.InternalServerError),
]


@pytest.mark.parametrize(("reply", "status", "error_class", "exc"), CASES)
def test_error_mapping(make_gateway, upstream, reply, status, error_class, exc) -> None:  # type: ignore[no-untyped-def]
    upstream.enqueue(*(reply if isinstance(reply, list) else [reply]))
    gw = make_gateway({
        "models": [openai_model("m", upstream, timeout=0.5)],
        "reliability": {"retry": {"attempts": 0}},
    })
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(exc) as info:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == status
    body = info.value.body
    assert isinstance(body, dict) and body["code"] == error_class
    if error_class == "rate_limited":
        assert info.value.response.headers["retry-after"] == "7"
    row = gw.rows()[-1]
    assert row["error_class"] == error_class and row["status"] == status


def test_provider_key_never_reaches_client_or_log(make_gateway, upstream, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    key = "sk-live-0123456789abcdefghijklmnop"
    monkeypatch.setenv("FAKE_PROVIDER_KEY", key)
    upstream.enqueue(Reply(status=401, error_type="invalid_request_error",
                           error_message=f"Incorrect API key provided: {key[:8]}****{key[-4:]}"
                                         f" (Bearer {key})"))
    gw = make_gateway({"models": [openai_model("m", upstream, api_key="env:FAKE_PROVIDER_KEY")]})
    r = gw.post("/v1/chat/completions", json={"model": "m", "messages": [
        {"role": "user", "content": "x"}]})
    assert r.status_code == 401
    assert upstream.requests[-1].headers["authorization"] == f"Bearer {key}"
    assert key not in r.text and key[:8] not in r.text and key[-4:] not in r.text
    assert key not in gw.get("/metrics").text and key not in gw.get("/readyz").text
    assert all(key not in str(v) for row in gw.rows() for v in row.values())


def test_literal_secret_in_config_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from flagman.config import parse_config
    from flagman.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_config({"models": [{"name": "m", "api_key": "sk-literal"}]})
    assert "models[0].api_key: secrets must be given as env:" in str(info.value)
    assert "sk-literal" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_config({"models": [{"name": "m", "api_key": "env:FLAGMAN_SURELY_UNSET"}]})
    assert "FLAGMAN_SURELY_UNSET is not set" in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_config({"models": [{"name": "m", "bogus": 1}], "sever": {}})
    text = str(info.value)
    assert "models[0].bogus: Extra inputs are not permitted" in text and "sever" in text
