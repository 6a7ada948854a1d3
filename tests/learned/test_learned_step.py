"""The `learned` routing step: two-model threshold, many-model policy, config errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flagman.config import parse_config
from flagman.errors import ConfigError
from flagman.learned.artifacts import save_router
from flagman.learned.train import train_router
from flagman.routing.base import BuildContext
from flagman.routing.learned_step import LearnedStep
from flagman.types import ChatRequest, Decision
from tests.learned.synth import dataset

MATH = "calculate the integral of this polynomial please"
POEM = "write me a sonnet with rhyme and metaphor"


def ctx(resources: dict[str, Any] | None = None) -> BuildContext:
    cfg = parse_config({"models": [
        {"name": "gpt-big", "input_price": 10, "output_price": 30},
        {"name": "gpt-poet", "input_price": 1, "output_price": 2},
        {"name": "cheap", "input_price": 0.1, "output_price": 0.1}]})
    return BuildContext(cfg, "routers[0].steps[0].learned",
                        resources if resources is not None else {},
                        {"gpt-big", "gpt-poet", "cheap"})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    r = train_router(dataset(80, three=True), "classifier", pair=("solver", "poet"),
                     stats=False)
    return save_router(r, tmp_path / "r")


async def route(step: LearnedStep, text: str) -> tuple[str | None, Decision]:
    req = ChatRequest({"model": "auto", "messages": [{"role": "user", "content": text}]})
    d = Decision(requested_model="auto")
    return await step.decide(req, d), d


async def test_two_model_threshold(folder: Path) -> None:
    step = LearnedStep({"router": str(folder), "threshold": 0.5, "strong": "gpt-big",
                        "weak": "gpt-poet"}, ctx())
    to, d = await route(step, MATH)
    assert to == "gpt-big"
    assert d.steps[0].step == "learned" and d.steps[0].outcome == "matched"
    assert d.steps[0].detail["threshold"] == 0.5 and "strong" in d.steps[0].detail["scores"]
    assert (await route(step, POEM))[0] == "gpt-poet"
    always = LearnedStep({"router": str(folder), "threshold": 0.0, "strong": "gpt-big",
                          "weak": "gpt-poet"}, ctx())
    assert (await route(always, POEM))[0] == "gpt-big"


async def test_many_model_policy(folder: Path) -> None:
    spec = {"router": str(folder), "policy": {"lambda": 0.0},
            "models": {"solver": "gpt-big", "poet": "gpt-poet", "generalist": "cheap"}}
    step = LearnedStep(spec, ctx())
    assert (await route(step, MATH))[0] == "gpt-big"
    assert (await route(step, POEM))[0] == "gpt-poet"
    cheap = LearnedStep({**spec, "policy": {"lambda": 100.0}}, ctx())
    to, d = await route(cheap, MATH)
    assert to == "cheap" and d.steps[0].detail["policy"] == {"lambda": 100.0}


async def test_passes_without_user_text(folder: Path) -> None:
    step = LearnedStep({"router": str(folder), "threshold": 0.5, "strong": "gpt-big",
                        "weak": "gpt-poet"}, ctx())
    to, d = await route(step, "")
    assert to is None and d.steps[0].outcome == "passed"


def test_config_errors(folder: Path, tmp_path: Path) -> None:
    base = {"router": str(folder), "threshold": 0.5, "strong": "gpt-big", "weak": "gpt-poet"}
    cases = [({**base, "threshold": 2}, "threshold: must be between 0 and 1"),
             ({**base, "strong": "nope"}, "strong: unknown model 'nope'"),
             ({**base, "extra": 1}, "unknown key"),
             ({**base, "router": str(tmp_path / "none")}, "router: .*not a router folder"),
             ({"router": str(folder), "policy": {"lambda": 1}, "models": {"gpt-9": "cheap",
                                                                        "poet": "gpt-poet"}},
              "models.gpt-9: 'gpt-9' is not a model"),
             ({"router": str(folder), "policy": {"beta": 1},
               "models": {"solver": "cheap", "poet": "gpt-poet"}}, "policy: unknown policy")]
    for spec, msg in cases:
        with pytest.raises(ConfigError, match=msg):
            LearnedStep(spec, ctx())


def test_router_is_loaded_once_per_resources(folder: Path) -> None:
    res: dict[str, Any] = {}
    spec = {"router": str(folder), "threshold": 0.5, "strong": "gpt-big", "weak": "gpt-poet"}
    a, b = LearnedStep(spec, ctx(res)), LearnedStep(spec, ctx(res))
    assert a.router is b.router
    assert a.watched == [folder.resolve() / "meta.json", folder.resolve() / "weights.npz"]


async def test_threshold_defaults_to_the_artifact_calibration(folder: Path) -> None:
    from flagman.learned.artifacts import set_default_threshold

    spec = {"router": str(folder), "strong": "gpt-big", "weak": "gpt-poet"}
    assert LearnedStep(spec, ctx()).threshold == 0.5
    set_default_threshold(folder, 0.0, 1.0)
    step = LearnedStep(spec, ctx())
    assert step.threshold == 0.0
    assert (await route(step, POEM))[0] == "gpt-big"


def test_replacing_the_router_folder_reloads_the_gateway(
    folder: Path, make_gateway: Any, upstream: Any,
) -> None:
    """The config watcher watches router files too: a new artifact is served, a
    half-written one is rejected and the previous router keeps serving."""
    import time

    from tests.conftest import openai_model

    gw = make_gateway({
        "server": {"reload_interval": 0.05},
        "models": [openai_model("gpt-big", upstream), openai_model("gpt-poet", upstream)],
        "routers": [{"name": "auto", "default": "gpt-poet", "steps": [{"learned": {
            "router": str(folder), "threshold": 0.5, "strong": "gpt-big",
            "weak": "gpt-poet"}}]}]})

    def step() -> Any:
        return gw.gateway.runtime.routers["auto"].steps[0]

    def wait(pred: Any) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.02)
        return False

    first = step().router
    assert first.kind == "classifier"
    save_router(train_router(dataset(30, seed=4), "knn", pair=("solver", "poet")), folder)
    assert wait(lambda: step().router.kind == "knn")
    served = step().router
    (folder / "weights.npz").write_bytes(b"half a file")  # checksum no longer matches
    assert wait(lambda: 'result="rejected"} 1.0' in gw.get("/metrics").text)
    assert step().router is served
