"""`flagman serve`."""

from __future__ import annotations

import logging
import sys

import click

from flagman.errors import ConfigError


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="YAML config file (reloaded on change and on SIGHUP).")
@click.option("--host", default=None, help="Address to bind (default: server.host or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default: server.port or 8080).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def serve(config_path: str, host: str | None, port: int | None, log_level: str) -> None:
    """Run the gateway: OpenAI and Anthropic endpoints, /metrics, /readyz."""
    import uvicorn

    from flagman.config import load_config
    from flagman.server.app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(config_path)
        app = create_app(config_path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    uvicorn.run(
        app,
        host=host or cfg.server.host,
        port=port if port is not None else cfg.server.port,
        loop="uvloop",
        http="httptools",
        log_level=log_level,
        access_log=False,  # the request log is flagman's own, written off the request path
        timeout_graceful_shutdown=30,
    )
