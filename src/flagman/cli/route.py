"""`flagman route`: the decision for a prompt, without calling any upstream."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from typing import Any

import click

from flagman.errors import FlagmanError


async def explain(config_path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Run the same routing code the server runs, on a fresh health board."""
    from flagman.config import load_config
    from flagman.reliability.state import HealthBoard
    from flagman.runtime import Runtime
    from flagman.types import ChatRequest

    cfg = load_config(config_path)
    runtime = await asyncio.to_thread(Runtime, cfg, None, {})
    try:
        req = ChatRequest(body)
        decision = await runtime.decide(req)
        plan = runtime.plan(req, decision, HealthBoard(cfg.reliability.breaker), random.Random(0))
        return {"decision": decision.to_dict(), "plan": [e.id for e in plan]}
    finally:
        await runtime.aclose()


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="YAML config file.")
@click.option("--model", default="auto", show_default=True, help="The model the client asks for.")
@click.option("--user", default=None, help="The request's `user` field.")
@click.option("--metadata", default=None, help='The request\'s `metadata`, as JSON: \'{"tier":"free"}\'.')
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@click.argument("prompt")
def route(config_path: str, model: str, user: str | None, metadata: str | None, as_json: bool,
          prompt: str) -> None:
    """Print which deployment PROMPT would go to and why."""
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    if user:
        body["user"] = user
    if metadata:
        body["metadata"] = json.loads(metadata)
    try:
        out = asyncio.run(explain(config_path, body))
    except FlagmanError as exc:
        if as_json:
            click.echo(json.dumps({**exc.to_body(), "status": exc.status}))
        else:
            click.echo(f"error {exc.status} {exc.error_class}: {exc.message}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(out, default=str))
        return
    d = out["decision"]
    click.echo(f"model     {d['requested_model']} -> group {d['group']} -> deployment {d['deployment']}")
    click.echo(f"strategy  {d['strategy']}")
    for s in d["steps"]:
        rest = {k: v for k, v in s.items() if k not in ("step", "outcome")}
        click.echo(f"  {s['step']:<10} {s['outcome']:<12} {json.dumps(rest, default=str)}")
    for r in d["rejected"]:
        click.echo(f"  rejected  {r['candidate']}: {r['reason']}")
    click.echo(f"try order {', '.join(out['plan'])}")
