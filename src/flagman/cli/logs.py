"""`flagman logs`: the latest request-log rows, or an export as JSONL/CSV."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import click


def _db_path(config_path: str | None, db: str | None) -> Path:
    if db:
        return Path(db)
    if config_path:
        from flagman.config import load_config

        cfg = load_config(config_path)
        return cfg.resolve_path(cfg.log.path)
    return Path("flagman.db")


@click.command()
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="Config file whose log.path to read.")
@click.option("--db", type=click.Path(dir_okay=False), help="SQLite log file (overrides --config).")
@click.option("-n", "--limit", default=20, show_default=True, help="How many rows (newest first).")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv"]), default="table",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file.")
def logs(config_path: str | None, db: str | None, limit: int, fmt: str, output: str | None) -> None:
    """Show the latest rows of the request log, or export them."""
    from flagman.store.sqlite import SQLiteLogStore

    path = _db_path(config_path, db)
    if not path.exists():
        raise click.ClickException(f"no request log at {path}")
    store = SQLiteLogStore(path)
    rows = store.latest(limit)
    store.close()
    out = open(output, "w", newline="", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
    try:
        if fmt == "jsonl":
            for r in rows:
                out.write(json.dumps(_decode(r), default=str) + "\n")
        elif fmt == "csv":
            if rows:
                w = csv.DictWriter(out, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
        else:
            _table(rows)
    finally:
        if output:
            out.close()


def _decode(r: dict[str, Any]) -> dict[str, Any]:
    return {k: (json.loads(v) if k in ("decision", "attempts") and v else v) for k, v in r.items()}


def _table(rows: list[dict[str, Any]]) -> None:
    import datetime

    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"latest {len(rows)} requests")
    for col in ("time", "id", "model", "deployment", "strategy", "status", "attempts",
                "latency ms", "overhead ms", "tokens in/out", "cost $"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            datetime.datetime.fromtimestamp(r["created"]).strftime("%H:%M:%S"),
            r["id"][:12], r["requested_model"], r["deployment"] or "-", r["strategy"] or "-",
            f"{r['status']}" + (f" {r['error_class']}" if r["error_class"] else ""),
            str(r["attempt_count"]), f"{r['latency_ms'] or 0:.1f}", f"{r['overhead_ms'] or 0:.2f}",
            f"{r['prompt_tokens'] or 0}/{r['completion_tokens'] or 0}", f"{r['cost_usd'] or 0:.6f}",
        )
    Console().print(t)
