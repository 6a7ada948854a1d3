"""Endpoints other than chat: models, health, metrics, route preview, feedback."""

from __future__ import annotations

import asyncio
import time
import uuid

from starlette.requests import Request
from starlette.responses import Response

from flagman.errors import BadRequestError, FlagmanError, NotFoundError
from flagman.gateway import Gateway
from flagman.server.chat import parse_chat
from flagman.server.http import JSONBytes, error_response, read_json


def _gw(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


async def list_models(request: Request) -> Response:
    gw = _gw(request)
    assert gw.runtime is not None
    created = int(gw.started)
    data = [{"id": name, "object": "model", "created": created, "owned_by": "flagman"}
            for name in gw.runtime.model_names()]
    return JSONBytes({"object": "list", "data": data})


async def healthz(request: Request) -> Response:
    return JSONBytes({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when the runtime is built and at least one deployment is not cooling down."""
    gw = _gw(request)
    if gw.runtime is None:
        return JSONBytes({"status": "starting"}, status_code=503)
    deployments = {}
    for dep_id in gw.runtime.targets:
        h = gw.health.snapshot().get(dep_id) or {"breaker": "closed", "cooldown_s": 0.0}
        deployments[dep_id] = {**h, "available": gw.health.cooldown_remaining(dep_id) == 0}
    ready = any(d["available"] for d in deployments.values())
    body = {"status": "ready" if ready else "degraded", "deployments": deployments,
            "config_reloads": gw.reloads, "retry_budget": gw.budget.stats(),
            "log": {"queued": gw.writer.queued if gw.writer else 0,
                    "dropped": gw.writer.dropped if gw.writer else 0}}
    return JSONBytes(body, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    gw = _gw(request)
    return Response(gw.metrics.render(), media_type=gw.metrics.content_type)


async def route_preview(request: Request) -> Response:
    """POST /v1/route: the decision for a chat body, without calling any upstream."""
    gw = _gw(request)
    rid = uuid.uuid4().hex
    try:
        req = await parse_chat(request, gw)
        ex = gw.exchange(req, "route")
        plan = await gw.route(ex)
    except FlagmanError as exc:
        return error_response(exc, rid)
    assert ex.decision is not None
    body = {"decision": ex.decision.to_dict(), "plan": [e.id for e in plan]}
    return JSONBytes(body, headers={"x-flagman-route": ex.decision.header()})


async def feedback(request: Request) -> Response:
    """POST /v1/feedback {request_id, score, comment?}: stored against the logged request."""
    gw = _gw(request)
    rid = uuid.uuid4().hex
    try:
        body = await read_json(request, 64 * 1024)
        request_id, score = body.get("request_id"), body.get("score")
        if not isinstance(request_id, str) or not request_id:
            raise BadRequestError("request_id must be a string", param="request_id")
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
            raise BadRequestError("score must be a number in [0, 1]", param="score")
        comment = body.get("comment")
        if gw.writer is not None:
            await gw.writer.flush()  # the row may still be in the writer's queue
        ok = await asyncio.to_thread(gw.store.add_feedback, request_id, float(score),
                                     str(comment) if comment is not None else None)
        if not ok:
            raise NotFoundError(f"no logged request with id {request_id!r}", param="request_id")
    except FlagmanError as exc:
        return error_response(exc, rid)
    return JSONBytes({"status": "stored", "request_id": request_id, "created": int(time.time())})
