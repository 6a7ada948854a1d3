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
    (Reply(reset=True), 503, "upstream_unavailable", openai.InternalServerError),
    (Reply(delay=3), 504, "timeout", openai.InternalServerError),
]


@pytest.mark.parametrize(("reply", "status", "error_class", "exc"), CASES)
def test_error_mapping(make_gateway, upstream, reply, status, error_class, exc) -> None:  # type: ignore[no-untyped-def]
    upstream.enqueue(reply)
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
