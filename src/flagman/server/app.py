"""The ASGI app factory.  All state is built here, none at import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flagman.config import Config, load_config
from flagman.errors import BadRequestError, FlagmanError, NotFoundError
from flagman.gateway import Gateway
from flagman.server import admin, chat, openapi
from flagman.server.http import error_response

log = logging.getLogger("flagman.server")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    err: FlagmanError
    if exc.status_code == 404:
        err = NotFoundError(f"no route {request.method} {request.url.path}", code="unknown_url")
    elif exc.status_code == 405:
        err = BadRequestError(f"method {request.method} not allowed on {request.url.path}",
                              code="method_not_allowed")
        err.status = 405  # type: ignore[misc]
    else:
        err = BadRequestError(str(exc.detail))
        err.status = exc.status_code  # type: ignore[misc]
    return error_response(err, uuid.uuid4().hex)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # A bug must still answer with an OpenAI-style body, never a traceback.
    log.exception("unexpected error on %s", request.url.path)
    err = FlagmanError("internal error in flagman; see the server log")
    return error_response(err, uuid.uuid4().hex)


def routes() -> list[Route]:
    from flagman.server import messages

    return [
        Route("/v1/chat/completions", chat.chat_completions, methods=["POST"]),
        Route("/chat/completions", chat.chat_completions, methods=["POST"]),
        Route("/v1/messages", messages.messages, methods=["POST"]),
        Route("/v1/models", admin.list_models, methods=["GET"]),
        Route("/v1/route", admin.route_preview, methods=["POST"]),
        Route("/v1/feedback", admin.feedback, methods=["POST"]),
        Route("/healthz", admin.healthz, methods=["GET"]),
        Route("/readyz", admin.readyz, methods=["GET"]),
        Route("/metrics", admin.metrics, methods=["GET"]),
        Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
    ]


def create_app(config: Config | str | Path, *, watch: bool = True) -> Starlette:
    """Build the app.  Given a path, the file is watched and reloaded on change and SIGHUP."""
    path = None if isinstance(config, Config) else Path(config)
    cfg = load_config(path) if path is not None else config
    assert isinstance(cfg, Config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gw = Gateway(cfg, path)
        await gw.start()
        app.state.gateway = gw
        tasks = []
        if watch and path is not None:
            tasks.append(asyncio.ensure_future(gw.watch()))
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                # only possible in the main thread; tests run servers in threads
                asyncio.get_running_loop().add_signal_handler(
                    signal.SIGHUP, lambda: asyncio.ensure_future(gw.reload()))
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            await gw.close()

    return Starlette(
        routes=routes(),
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _unexpected},
    )
