"""Fuzz the HTTP API from its own OpenAPI description (schemathesis), bounded in time.

Valid and invalid bodies go to every operation of a real flagman server in front of a healthy
fake upstream: no answer may be a 5xx (a healthy upstream leaves flagman no excuse), every
answer must match the document, and the server must keep serving.  Derandomized, so a run is
reproducible; `FLAGMAN_FUZZ_EXAMPLES` raises the count for a longer local session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.fakes.gateway import GatewayServer, write_config
from tests.fakes.openai_upstream import FakeOpenAIUpstream

EXAMPLES = int(os.environ.get("FLAGMAN_FUZZ_EXAMPLES", "50"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    with FakeOpenAIUpstream(name="fuzz") as up:
        cfg = {"log": {"path": str(tmp / "log.db"), "flush_interval": 0.02},
               "server": {"max_body_bytes": 65536},
               "models": [{"name": "m", "base_url": up.url}, {"name": "m", "base_url": up.url}],
               "routers": [{"name": "auto", "default": "m"}]}
        gw = GatewayServer(write_config(tmp / "flagman.yaml", cfg)).start()
        yield gw
        gw.stop()


@pytest.fixture(scope="module")
def api_schema(fuzz_server: GatewayServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")


# schemathesis' own pytest plugin (`from_fixture`) breaks on pytest 9, so each operation's
# strategy is driven by hypothesis directly; one test per operation and generation mode.
OPERATIONS = [("POST", "/v1/chat/completions"), ("POST", "/v1/messages"), ("GET", "/v1/models"),
              ("POST", "/v1/route"), ("POST", "/v1/feedback"), ("GET", "/healthz"),
              ("GET", "/readyz")]


CASES = [(m, p, mode) for m, p in OPERATIONS
         for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
         if m == "POST" or mode == GenerationMode.POSITIVE]  # a GET without inputs has no invalid


@pytest.mark.parametrize(("method", "path", "mode"), CASES,
                         ids=[f"{m} {p} {mode.value}" for m, p, mode in CASES])
def test_api_never_5xx_and_matches_its_description(
    api_schema: schemathesis.BaseSchema, fuzz_server: GatewayServer, method: str, path: str,
    mode: GenerationMode,
) -> None:
    operation = api_schema[path][method]
    examples = EXAMPLES if method == "POST" else 3
    seen: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    def run(case: schemathesis.Case) -> None:
        response = case.call(timeout=15)
        seen.append(response.status_code)
        case.validate_response(response, checks=CHECKS)

    run()
    assert seen, "no request was generated"
    assert fuzz_server.get("/healthz").status_code == 200  # still serving


MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("body", [
    {"model": "m", "messages": MSG, "stream": True, "stream_options": "yes"},
    {"model": "m", "messages": MSG, "stream": True, "stream_options": [1]},
])
def test_found_by_fuzzing_bad_stream_options_is_a_400_not_a_breaker_trip(
    fuzz_server: GatewayServer, body: dict[str, object],
) -> None:
    """Was a TypeError inside the attempt: a 500 that also counted against the deployment."""
    for _ in range(8):  # more than the breaker's consecutive-failure threshold
        r = fuzz_server.post("/v1/chat/completions", json=body)
        assert r.status_code == 400 and r.json()["error"]["param"] == "stream_options"
    ok = fuzz_server.post("/v1/chat/completions", json={"model": "m", "messages": MSG})
    assert ok.status_code == 200


def test_openapi_document_lists_every_public_route(fuzz_server: GatewayServer) -> None:
    doc = fuzz_server.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {"/v1/chat/completions", "/v1/messages", "/v1/models",
                                 "/v1/route", "/v1/feedback", "/healthz", "/readyz"}
