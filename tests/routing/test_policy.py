"""Compliance policy: detectors, restriction to tagged deployments, rejection, redacted log."""

from __future__ import annotations

import json

import openai
import pytest
from tests.conftest import openai_model

from flagman.routing import detectors as det


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("mail me at jane.doe@example.com please", "email"),
        ("my card is 4111 1111 1111 1111", "card"),
        ("card 5500-0000-0000-0004 expires", "card"),
        ("IBAN GB82 WEST 1234 5698 7654 32", "iban"),
        ("DE89370400440532013000 is my account", "iban"),
        ("SSN 123-45-6789", "ssn"),
        ("call +44 20 7946 0958 tomorrow", "phone"),
        ("call (415) 555-2671", "phone"),
        ("key sk-proj-abcdefghijklmnopqrstuvwxyz123456", "secret"),
        ("AKIAIOSFODNN7EXAMPLE", "secret"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE...", "secret"),
    ],
)
def test_detectors_find(text, kind) -> None:  # type: ignore[no-untyped-def]
    found = det.scan(text, list(det.BUILTIN.values()))
    assert [m.kind for m in found] == [kind]
    assert f"[REDACTED:{kind}]" in det.redact(text, found)


@pytest.mark.parametrize("text", [
    "the year 2024 had 365 days",
    "card 4111 1111 1111 1112",          # fails Luhn
    "IBAN GB82 WEST 1234 5698 7654 33",  # fails mod 97
    "SSN 000-12-3456",                   # invalid area
    "version 1.2.3 and sk-short",
])
def test_detectors_ignore_lookalikes(text) -> None:  # type: ignore[no-untyped-def]
    assert det.scan(text, list(det.BUILTIN.values())) == []


def _cfg(up_cloud, up_local, with_local: bool = True):  # type: ignore[no-untyped-def]
    models = [openai_model("cloud", up_cloud, tags=["cloud"])]
    if with_local:
        models.append(openai_model("local", up_local, tags=["on_prem"]))
    return {
        "log": {"store_bodies": True},
        "models": models,
        "groups": {"cloud": {"fallbacks": ["local"] if with_local else []}},
        "routers": [{"name": "auto", "steps": [
            {"policy": {"require_tags": ["on_prem"],
                        "custom": [{"name": "codename", "regex": "(?i)project falcon"}]}},
            {"rules": [{"when": {"messages": {"$contains": "cloud"}}, "to": "cloud"}]},
        ], "default": "local" if with_local else "cloud"}],
    }


def test_pii_request_only_reaches_on_prem_and_log_is_redacted(make_gateway, upstream, upstream_b,
                                                              tmp_path) -> None:
    cfg = _cfg(upstream, upstream_b)
    cfg["routers"][0]["default"] = "cloud"
    cfg["routers"][0]["steps"][0]["policy"]["to"] = "local"
    gw = make_gateway(cfg)
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    secret = "please use the cloud, my card is 4111 1111 1111 1111 and mail a@b.io"
    raw = c.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": secret}])
    assert raw.headers["x-flagman-model"] == "local"
    assert "policy:restricted" in raw.headers["x-flagman-route"]
    assert len(upstream.requests) == 0 and len(upstream_b.requests) == 1
    # a clean request may still use the cloud
    raw = c.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "use the cloud"}])
    assert raw.headers["x-flagman-model"] == "cloud"
    rows = gw.rows()
    pii_row = rows[0]
    assert "4111" not in pii_row["prompt"] and "a@b.io" not in pii_row["prompt"]
    assert "[REDACTED:card]" in pii_row["prompt"]
    decision = json.loads(pii_row["decision"])
    assert decision["redactions"] == ["card", "email"]
    assert "4111" not in pii_row["decision"]


def test_pii_rejected_when_no_on_prem_deployment(make_gateway, upstream, upstream_b) -> None:
    gw = make_gateway(_cfg(upstream, upstream_b, with_local=False))
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as info:
        c.chat.completions.create(model="auto", messages=[
            {"role": "user", "content": "cloud please: Project Falcon launch codes"}])
    assert info.value.body["code"] == "policy_no_deployment"
    assert len(upstream.requests) == 0
    ok = c.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    assert ok.choices[0].message.content


def test_reject_action(make_gateway, upstream, upstream_b) -> None:
    cfg = _cfg(upstream, upstream_b)
    cfg["routers"][0]["steps"][0]["policy"]["action"] = "reject"
    gw = make_gateway(cfg)
    r = gw.post("/v1/chat/completions", json={"model": "auto", "messages": [
        {"role": "user", "content": "SSN 123-45-6789"}]})
    assert r.status_code == 403 and r.json()["error"]["code"] == "policy_rejected"
    assert "123-45" not in r.text


def test_two_policy_steps_redact_what_each_found() -> None:
    from flagman.routing.policy import _redactor

    first = _redactor(None, [det.BUILTIN["email"]])
    both = _redactor(first, [det.BUILTIN["card"]])
    out = both("mail a@b.io, card 4111 1111 1111 1111")
    assert "a@b.io" not in out and "4111" not in out
    assert "[REDACTED:email]" in out and "[REDACTED:card]" in out
