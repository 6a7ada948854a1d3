"""Hot reload (good and broken files), client disconnects and cut streams."""

from __future__ import annotations

import os
import threading
import time

import httpx
import openai
import yaml
from tests.conftest import openai_model
from tests.fakes.openai_upstream import Reply

MSG = [{"role": "user", "content": "hi"}]


def _wait(pred, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def _rewrite(path, mutate) -> None:  # type: ignore[no-untyped-def]
    cfg = yaml.safe_load(path.read_text())
    mutate(cfg)
    path.write_text(yaml.safe_dump(cfg))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))


def test_reload_applies_good_file_and_rejects_broken(make_gateway, upstream, upstream_b) -> None:
    gw = make_gateway({"server": {"reload_interval": 0.05},
                       "models": [openai_model("m", upstream)]})
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    # a slow request in flight while the file changes must finish on the old config
    upstream.enqueue(Reply(delay=0.6, text="old config"))
    result: dict[str, str] = {}
    t = threading.Thread(target=lambda: result.setdefault(
        "text", client.chat.completions.create(model="m", messages=MSG).choices[0].message.content))
    t.start()
    time.sleep(0.1)
    _rewrite(gw.config_path, lambda c: c["models"].append(openai_model("new", upstream_b)))
    assert _wait(lambda: "new" in [m.id for m in client.models.list()])
    t.join()
    assert result["text"] == "old config"
    assert client.chat.completions.create(model="new", messages=MSG).choices[0].message.content

    # a broken file is rejected and the previous config keeps serving
    gw.config_path.write_text("models: [ {name: 1, unknown_key: true} ")
    os.utime(gw.config_path, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    assert _wait(lambda: 'result="rejected"} 1.0' in gw.get("/metrics").text)
    assert [m.id for m in client.models.list()] == ["m", "new"]
    assert client.chat.completions.create(model="m", messages=MSG).choices[0].message.content


def test_reload_sees_a_rewrite_within_the_same_mtime(make_gateway, upstream) -> None:
    """Truncate-then-write can land in one clock tick: a watcher that read the half-written
    file in between must still pick up the finished one."""
    gw = make_gateway({"server": {"reload_interval": 0.05},
                       "models": [openai_model("m", upstream)]})
    full = yaml.safe_load(gw.config_path.read_text())
    full["models"].append(openai_model("later", upstream))
    text = yaml.safe_dump(full)
    stamp = time.time_ns() + 2 * 10**9
    gw.config_path.write_text(text[: len(text) // 2])  # what a reader may catch mid-write
    os.utime(gw.config_path, ns=(stamp, stamp))
    assert _wait(lambda: 'result="rejected"} 1.0' in gw.get("/metrics").text)
    gw.config_path.write_text(text)
    os.utime(gw.config_path, ns=(stamp, stamp))  # the same tick as the partial file
    assert _wait(lambda: "later" in [m["id"] for m in gw.get("/v1/models").json()["data"]])


def test_sighup_reloads_a_running_server(tmp_path, upstream) -> None:  # type: ignore[no-untyped-def]
    """A real `flagman serve` process and a real signal (handlers need the main thread)."""
    import signal
    import socket
    import subprocess
    import sys

    from tests.conftest import write_config

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = {"server": {"reload_interval": 3600},  # only the signal can reload it in time
           "log": {"path": str(tmp_path / "log.db")}, "models": [openai_model("m", upstream)]}
    path = write_config(tmp_path / "flagman.yaml", cfg)
    proc = subprocess.Popen([sys.executable, "-m", "flagman", "serve", "--config", str(path),
                             "--port", str(port), "--log-level", "warning"])
    url = f"http://127.0.0.1:{port}/v1/models"

    def models() -> list[str]:
        try:
            return [m["id"] for m in httpx.get(url, timeout=2).json()["data"]]
        except httpx.HTTPError:
            return []

    try:
        assert _wait(lambda: models() == ["m"], timeout=30)
        _rewrite(path, lambda c: c["models"].append(openai_model("extra", upstream)))
        assert models() == ["m"]
        proc.send_signal(signal.SIGHUP)
        assert _wait(lambda: "extra" in models())
    finally:
        proc.terminate()
        proc.wait(10)


def test_client_disconnect_cancels_upstream(make_gateway, upstream) -> None:
    upstream.enqueue(Reply(text=" ".join(["w"] * 50), chunk_delay=0.2))
    gw = make_gateway({"models": [openai_model("m", upstream)]})
    with httpx.stream("POST", gw.url + "/v1/chat/completions", timeout=10,
                      json={"model": "m", "messages": MSG, "stream": True}) as r:
        for line in r.iter_lines():
            if line.startswith("data:"):
                break  # first chunk seen: hang up
    assert _wait(lambda: upstream.cancelled == 1 and upstream.active == 0, 5)
    row = gw.rows()[-1]
    assert row["status"] == 499 and row["error_class"] == "client_disconnected"


def test_stream_cut_after_first_token_ends_with_error_event(make_gateway, upstream) -> None:
    upstream.enqueue(Reply(text="one two three", cut_after=2))
    gw = make_gateway({"models": [openai_model("m", upstream)]})
    with httpx.stream("POST", gw.url + "/v1/chat/completions", timeout=10,
                      json={"model": "m", "messages": MSG, "stream": True}) as r:
        lines = [ln for ln in r.iter_lines() if ln.startswith("data:")]
    assert lines[-1] == "data: [DONE]"
    assert '"error"' in lines[-2] and "upstream_" in lines[-2]
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    upstream.enqueue(Reply(text="one two three", cut_after=2))
    try:
        list(client.chat.completions.create(model="m", messages=MSG, stream=True))
        raised = False
    except openai.APIError:
        raised = True
    assert raised, "the SDK must see the error event, not a silently short answer"
