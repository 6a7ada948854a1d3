"""`flagman demo`: GSM8K questions through a real flagman server, offline.

Starts `flagman serve` on loopback with two `replay` deployments answering
with RouteLLM's recorded GPT-4 and Mixtral responses, sends the held-out
GSM8K questions with the official `openai` SDK to the virtual model `auto`,
and prints where they went, the recorded accuracy, the cost against sending
everything to GPT-4, and the gateway's own overhead.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import click
import yaml

STRONG, WEAK = "gpt-4-1106-preview", "Mixtral-8x7B-Instruct"
WEAK_COLUMN = "mistralai/Mixtral-8x7B-Instruct-v0.1"
# List prices, USD per 1M tokens (input, output): OpenAI's gpt-4-1106-preview
# (GPT-4 Turbo) price list; Mixtral-8x7B-Instruct at Together AI's serverless price.
PRICES = {STRONG: (10.0, 30.0), WEAK: (0.60, 0.60)}


def data_dir() -> Path:
    return Path(str(resources.files("flagman") / "data"))


def held_out(prompt: str) -> bool:
    """The fixed 80/20 split by a stable hash of the prompt: True for the 20% test part."""
    try:
        from flagman.learned.datasets import split_of
    except ImportError:  # the learned package is optional for the demo's rule fallback
        return int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16) % 100 >= 80
    return split_of(prompt) == "test"


def demo_config(workdir: Path, threshold: float | None) -> dict[str, Any]:
    recording = str(data_dir() / "routellm" / "gsm8k_responses.csv")
    models = [
        {"name": STRONG, "provider": "replay", "input_price": PRICES[STRONG][0],
         "output_price": PRICES[STRONG][1], "tags": ["cloud"],
         "options": {"recording": recording}},
        {"name": WEAK, "provider": "replay", "model": WEAK_COLUMN,
         "input_price": PRICES[WEAK][0], "output_price": PRICES[WEAK][1], "tags": ["cloud"],
         "options": {"recording": recording}},
    ]
    steps: list[dict[str, Any]]
    if _shipped_router_available():
        learned: dict[str, Any] = {"router": "default", "strong": STRONG, "weak": WEAK}
        if threshold is not None:
            learned["threshold"] = threshold
        steps = [{"learned": learned}]
    else:  # until a learned router ships: long word problems go to the strong model
        steps = [{"rules": [{"name": "long-question", "when": {"prompt_tokens": {"$gt": 60}},
                             "to": STRONG}]}]
    return {
        "server": {"host": "127.0.0.1"},
        "log": {"path": str(workdir / "demo.db")},
        "models": models,
        "routers": [{"name": "auto", "steps": steps, "default": WEAK}],
    }


def _shipped_router_available() -> bool:
    return (data_dir() / "routers" / "default" / "meta.json").exists() and _has_learned_step()


def _has_learned_step() -> bool:
    try:
        import flagman.routing.learned_step  # noqa: F401
    except ImportError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Outcome:
    deployment: str
    correct: bool
    cost: float
    overhead_ms: float


def load_questions(limit: int | None) -> list[dict[str, str]]:
    path = data_dir() / "routellm" / "gsm8k_responses.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if held_out(r["prompt"].strip())]
    return rows[:limit] if limit else rows


def start_server(config_path: Path, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "flagman", "serve", "--config", str(config_path),
           "--port", str(port), "--log-level", "warning"]
    return subprocess.Popen(cmd)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException("flagman serve exited during start-up")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise click.ClickException("flagman serve did not become ready")


async def send_all(url: str, rows: list[dict[str, str]], concurrency: int) -> list[Outcome]:
    import openai
    from rich.progress import Progress

    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="demo", max_retries=0)
    sem = asyncio.Semaphore(concurrency)
    out: list[Outcome] = []
    with Progress() as progress:
        task = progress.add_task("GSM8K through flagman", total=len(rows))

        async def one(row: dict[str, str]) -> None:
            async with sem:
                raw = await client.chat.completions.with_raw_response.create(
                    model="auto", messages=[{"role": "user", "content": row["prompt"]}])
            dep = raw.headers["x-flagman-model"]
            column = STRONG if dep == STRONG else WEAK_COLUMN
            out.append(Outcome(dep, row[column] == "True", float(raw.headers["x-flagman-cost-usd"]),
                               float(raw.headers["x-flagman-overhead-ms"])))
            progress.advance(task)

        await asyncio.gather(*(one(r) for r in rows))
    await client.close()
    return out


def strong_only_cost(rows: list[dict[str, str]]) -> float:
    from flagman.providers.replay import _tokens

    pin, pout = PRICES[STRONG]
    return sum(_tokens(r["prompt"].strip()) * pin + _tokens(r[f"{STRONG}_response"]) * pout
               for r in rows) / 1e6


def report(rows: list[dict[str, str]], outcomes: list[Outcome], strategy: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"flagman demo: {len(rows)} held-out GSM8K questions, model=auto ({strategy})")
    for col in ("answered by", "requests", "accuracy", "cost $"):
        t.add_column(col, justify="right" if col != "answered by" else "left")
    for dep in (STRONG, WEAK):
        mine = [o for o in outcomes if o.deployment == dep]
        acc = sum(o.correct for o in mine) / len(mine) if mine else 0.0
        t.add_row(dep, str(len(mine)), f"{acc:.1%}", f"{sum(o.cost for o in mine):.4f}")
    total_cost = sum(o.cost for o in outcomes)
    acc = sum(o.correct for o in outcomes) / max(1, len(outcomes))
    t.add_row("[b]flagman auto[/b]", str(len(outcomes)), f"[b]{acc:.1%}[/b]", f"[b]{total_cost:.4f}[/b]")
    strong_cost = strong_only_cost(rows)
    strong_acc = sum(r[STRONG] == "True" for r in rows) / max(1, len(rows))
    weak_acc = sum(r[WEAK_COLUMN] == "True" for r in rows) / max(1, len(rows))
    t.add_row("all to GPT-4 (what-if)", str(len(rows)), f"{strong_acc:.1%}", f"{strong_cost:.4f}")
    t.add_row("all to Mixtral (what-if)", str(len(rows)), f"{weak_acc:.1%}", "")
    console = Console()
    console.print(t)
    ov = sorted(o.overhead_ms for o in outcomes)
    if ov:
        p50, p99 = ov[len(ov) // 2], ov[min(len(ov) - 1, int(0.99 * len(ov)))]
        console.print(f"gateway overhead per request: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    if strong_cost:
        console.print(f"cost saved against all-GPT-4: {1 - total_cost / strong_cost:.1%}")


@click.command()
@click.option("--limit", type=int, default=None, help="Send only the first N held-out questions.")
@click.option("--concurrency", default=8, show_default=True, help="Requests in flight at once.")
@click.option("--threshold", type=float, default=None,
              help="Learned-router threshold (default: the shipped router's calibrated one).")
@click.option("--workdir", default=".flagman/demo", show_default=True,
              type=click.Path(file_okay=False), help="Where the config and request log go.")
def demo(limit: int | None, concurrency: int, threshold: float | None, workdir: str) -> None:
    """Route held-out GSM8K questions through a real flagman server (offline, replayed)."""
    wd = Path(workdir).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    cfg = demo_config(wd, threshold)
    strategy = "learned router" if "learned" in cfg["routers"][0]["steps"][0] else "length rule"
    config_path = wd / "config.yaml"
    config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    rows = load_questions(limit)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    click.echo(f"starting flagman serve --config {config_path} on {url}")
    proc = start_server(config_path, port)
    try:
        wait_ready(url, proc)
        outcomes = asyncio.run(send_all(url, rows, concurrency))
    finally:
        proc.terminate()
        proc.wait(30)
    report(rows, outcomes, strategy)
    click.echo(f"request log: flagman logs --db {wd / 'demo.db'}")
