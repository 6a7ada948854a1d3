"""Gateway overhead: direct vs flagman vs the LiteLLM proxy, one machine, one fake upstream.

    python bench/overhead.py                     # full run, about 6-8 minutes
    python bench/overhead.py --quick             # about 1.5 minutes
    python bench/overhead.py --skip-litellm      # no LiteLLM venv needed
    python bench/overhead.py --targets flagman --rounds 1 --rss-requests 0 --profile 20

Starts `bench/fake_upstream.py` (raw ASGI under uvicorn) in its own process,
a *bare proxy* (raw ASGI under uvicorn + one aiohttp session, forwarding and
nothing else: the floor of flagman's stack), `flagman serve` (one process, one
`openai` deployment pointing at the upstream) and the
LiteLLM proxy (`litellm[proxy]==1.80.0`, one worker, offline, in its own venv
under `.flagman/bench-venv`, created on first use), then drives each with
`wrk` (one thread, so the client takes at most one of the machine's cores):

* requests/s at 16 and 64 connections;
* latency p50/p99 at 1 connection, and the latency each gateway adds over
  calling the upstream directly (difference of the per-request latency
  percentiles measured by wrk; medians of `--latency-runs` interleaved runs);
* server CPU per request, wrk's CPU, and the CPU other processes used;
* flagman's RSS (`VmRSS`) before and after `--rss-requests` requests.

The machine is shared, so every measurement also records how much CPU other
processes used meanwhile; with `--rounds N` the whole set is measured N times
and the round in which other processes used the least CPU is reported.
Results are printed and written as markdown to `bench/results/overhead.md`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DEFAULT_VENV = ROOT / ".flagman" / "bench-venv"  # .flagman/ is gitignored
LITELLM_SPEC = "litellm[proxy]==1.80.0"
MODEL = "bench"
BODY = '{"model":"bench","messages":[{"role":"user","content":"Say hello."}]}'
TICK = os.sysconf("SC_CLK_TCK")

TARGET_ADDED_P50_MS = 0.5
TARGET_RPS_RATIO = 10.0
TARGET_RSS_GROWTH_MB = 20.0

# wrk scripts: POST the same body everywhere; `done` prints one JSON line we parse.
LUA_POST = f"""
wrk.method = "POST"
wrk.body = [[{BODY}]]
wrk.headers["Content-Type"] = "application/json"
done = function(s, lat, req)
  local e = s.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"sock_errors":%d,"non2xx":%d,'
    .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}}\\n',
    s.requests, s.duration, e.connect + e.read + e.write + e.timeout, e.status,
    lat:percentile(50), lat:percentile(90), lat:percentile(99), lat.mean, lat.max))
end
"""
# Fixed request count: wrk only knows durations, so the single thread exits itself.
LUA_COUNT = f"""
wrk.method = "POST"
wrk.body = [[{BODY}]]
wrk.headers["Content-Type"] = "application/json"
local limit = tonumber(os.getenv("WRK_LIMIT"))
local n, bad = 0, 0
response = function(status, headers, body)
  n = n + 1
  if status ~= 200 then bad = bad + 1 end
  if n >= limit then
    io.write(string.format('WRKJSON {{"requests":%d,"non2xx":%d}}\\n', n, bad))
    io.flush()
    os.exit(0)
  end
end
"""

# LiteLLM logs every request through uvicorn's access logger by default; flagman does not
# log access lines, so LiteLLM gets the same treatment (this only helps LiteLLM's figures).
LITELLM_LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"err": {"class": "logging.StreamHandler", "formatter": "plain",
                         "stream": "ext://sys.stderr"}},
    "loggers": {
        "uvicorn": {"handlers": ["err"], "level": "WARNING", "propagate": False},
        "uvicorn.error": {"handlers": ["err"], "level": "WARNING", "propagate": False},
        "uvicorn.access": {"handlers": ["err"], "level": "WARNING", "propagate": False},
    },
}
# What keeps LiteLLM 1.80.0 off the network at start (checked with strace: the only
# connect() is then to the upstream): the bundled model cost map instead of fetching it,
# no database, no feedback box, no telemetry (litellm_settings.telemetry in the config).
LITELLM_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
    "DISABLE_SCHEMA_UPDATE": "True",
    "NO_DOCS": "True",
    "DISABLE_ADMIN_UI": "True",
    "LITELLM_LOG": "ERROR",
}
LITELLM_ENV_DROP = ("DATABASE_URL", "DIRECT_URL", "REDIS_HOST", "REDIS_URL", "LITELLM_MASTER_KEY",
                    "OPENAI_API_KEY", "OPENAI_BASE_URL")


# -- small process helpers ---------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready at {url} after {timeout:.0f}s")


def wait_post(url: str, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    """Like `wait_http`, for servers that only answer the completion POST."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            post_once(url)
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.05)


def diagnose(srv: Server) -> None:
    """After failed requests: show one answer and the server log's tail."""
    try:
        status, _ = post_once(srv.url)
        body = b""
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except OSError as exc:
        status, body = 0, str(exc).encode()
    print(f"  ! {srv.name} had failed requests; one request now: {status} {body[:400]!r}")
    tail = srv.log.read_bytes()[-1500:].decode(errors="replace").strip()
    print("  ! log tail:\n    " + "\n    ".join(tail.splitlines()[-12:]), flush=True)


def post_once(url: str) -> tuple[int, dict[str, str]]:
    req = urllib.request.Request(url, data=BODY.encode(), method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()
        return r.status, {k.lower(): v for k, v in r.headers.items()}


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rsplit(")", 1)[1].split()  # fields from `state` on


def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants (LiteLLM may fork helpers)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            f = _stat_fields(int(d))
            if f:
                children.setdefault(int(f[1]), []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for p in pids:
        f = _stat_fields(p)
        if f:
            total += int(f[11]) + int(f[12])  # utime + stime
    return total


def system_busy_ticks() -> int:
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def loadavg() -> tuple[float, float, float]:
    a = Path("/proc/loadavg").read_text().split()
    return float(a[0]), float(a[1]), float(a[2])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    url: str  # the chat completions URL
    log: Path

    @property
    def pids(self) -> list[int]:
        return tree_pids(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: only what we started
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    fh = open(log, "wb")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                            start_new_session=True)


# -- the targets ---------------------------------------------------------------------------------

def serve_bare_proxy(port: int, upstream: str) -> None:
    """The floor of flagman's stack: uvicorn (uvloop, httptools) + one aiohttp session,
    raw ASGI, no framework, no routing, no logging: body in, POST upstream, body out."""
    import aiohttp
    import uvicorn

    state: dict[str, aiohttp.ClientSession] = {}
    headers = {"content-type": "application/json"}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    state["s"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
                else:
                    await state["s"].close()
                await send({"type": msg["type"] + ".complete"})
                if msg["type"] == "lifespan.shutdown":
                    return
        chunks, more = [], True
        while more:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            more = msg.get("more_body", False)
        async with state["s"].post(upstream, data=b"".join(chunks), headers=headers) as r:
            data, status = await r.read(), r.status
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": data})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                loop="uvloop", http="httptools", lifespan="on")


def start_bare_proxy(tmp: Path, upstream_url: str) -> Server:
    port = free_port()
    log = tmp / "bare-proxy.log"
    p = spawn([sys.executable, __file__, "--serve-bare-proxy", str(port), "--upstream",
               upstream_url], log)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    wait_post(url, p, 30, f"bare proxy (log: {log})")
    return Server("bare proxy", p, url, log)


def start_upstream(tmp: Path) -> Server:
    port = free_port()
    log = tmp / "upstream.log"
    p = spawn([sys.executable, str(BENCH / "fake_upstream.py"), "--port", str(port)], log)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    wait_post(url, p, 30, f"fake upstream (log: {log})")  # it answers any path
    return Server("direct", p, url, log)


def start_flagman(tmp: Path, upstream_port: int, src: str | None) -> Server:
    port = free_port()
    cfg = tmp / "flagman.yaml"
    cfg.write_text(
        "server:\n  reload_interval: 3600\n"
        f"log:\n  path: {tmp / 'flagman-log.db'}\n"
        f"models:\n  - name: {MODEL}\n    provider: openai\n"
        f"    base_url: http://127.0.0.1:{upstream_port}/v1\n    auth: none\n"
    )
    log = tmp / "flagman.log"
    p = spawn([sys.executable, "-m", "flagman", "serve", "--config", str(cfg), "--host",
               "127.0.0.1", "--port", str(port), "--log-level", "warning"], log, cwd=ROOT,
              env={**os.environ, "PYTHONPATH": src} if src else None)
    wait_http(f"http://127.0.0.1:{port}/healthz", p, 60, f"flagman (log: {log})")
    return Server("flagman", p, f"http://127.0.0.1:{port}/v1/chat/completions", log)


def litellm_bin(args: argparse.Namespace) -> Path | None:
    if args.skip_litellm or "litellm" not in args.targets:
        return None
    if args.litellm_bin:
        found = shutil.which(args.litellm_bin)
        b = Path(found or args.litellm_bin).absolute()  # LiteLLM runs with cwd = a temp dir
        if not b.exists():
            sys.exit(f"--litellm-bin {b} does not exist")
        return b
    b = DEFAULT_VENV / "bin" / "litellm"
    if b.exists():
        return b
    print(f"LiteLLM is not installed yet: creating {DEFAULT_VENV} with pip install "
          f"'{LITELLM_SPEC}' (one time, about 1-2 minutes; it needs PyPI). "
          "It is kept out of flagman's .venv because its pins clash with flagman's. "
          "Use --skip-litellm to run without it.", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(DEFAULT_VENV)], check=True)
    subprocess.run([str(DEFAULT_VENV / "bin" / "python"), "-m", "pip", "install", "-q",
                    LITELLM_SPEC], check=True)
    return b


def flagman_source(src: str | None) -> str:
    if src:
        return f"from {src}"

    def git(*a: str) -> str:
        r = subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True)
        return r.stdout.strip()
    rev = git("rev-parse", "--short", "HEAD") or "?"
    dirty = " + uncommitted changes in src/" if git("status", "--porcelain", "src") else ""
    return f"{importlib.metadata.version('flagman')} (git {rev}{dirty})"


def litellm_version(b: Path) -> str:
    py = b.parent / "python"
    if not py.exists():
        return "?"
    r = subprocess.run([str(py), "-c", "import importlib.metadata as m;print(m.version('litellm'))"],
                       capture_output=True, text=True)
    return r.stdout.strip() or "?"


def start_litellm(tmp: Path, upstream_port: int, b: Path) -> Server:
    port = free_port()
    cfg = tmp / "litellm.yaml"
    cfg.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n    litellm_params:\n      model: openai/{MODEL}\n"
        f"      api_base: http://127.0.0.1:{upstream_port}/v1\n      api_key: sk-bench\n"
        "litellm_settings:\n  telemetry: false\n"
    )
    logcfg = tmp / "litellm-logging.json"
    logcfg.write_text(json.dumps(LITELLM_LOG_CONFIG))
    env = {k: v for k, v in os.environ.items() if k not in LITELLM_ENV_DROP}
    env.update(LITELLM_ENV)
    log = tmp / "litellm.log"
    p = spawn([str(b), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port),
               "--num_workers", "1", "--log_config", str(logcfg)], log, env=env, cwd=tmp)
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", p, 180, f"LiteLLM (log: {log})")
    s = Server("LiteLLM", p, f"http://127.0.0.1:{port}/v1/chat/completions", log)
    status, _ = post_once(s.url)
    if status != 200:
        raise RuntimeError(f"LiteLLM answered {status}, see {log}")
    return s


# -- measuring ---------------------------------------------------------------------------------

@dataclass
class Run:
    conns: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    errors: int
    client_cpu: float  # cores used by wrk
    server_cpu: float  # cores used by the measured server (upstream excluded)
    other_cpu: float  # cores used by everything else on the machine
    load1: float
    p50_range: tuple[float, float] | None = None  # 1 connection: lowest, highest sub-run p50


def combine(runs: list[Run]) -> Run:
    """Several short 1-connection runs -> medians of their percentiles (and the p50 spread).

    On 2 cores the 1-connection p50 moves by +-0.15 ms from one wrk run to the next (where
    the scheduler puts wrk, gateway and upstream); interleaved short runs and their median
    are steadier than one long run."""
    med = statistics.median
    n = sum(r.rps for r in runs) / len(runs)
    return Run(conns=runs[0].conns, rps=n, p50_ms=med(r.p50_ms for r in runs),
               p90_ms=med(r.p90_ms for r in runs), p99_ms=med(r.p99_ms for r in runs),
               mean_ms=med(r.mean_ms for r in runs), errors=sum(r.errors for r in runs),
               client_cpu=med(r.client_cpu for r in runs),
               server_cpu=med(r.server_cpu for r in runs),
               other_cpu=med(r.other_cpu for r in runs), load1=max(r.load1 for r in runs),
               p50_range=(min(r.p50_ms for r in runs), max(r.p50_ms for r in runs)))


def wrk(url: str, conns: int, seconds: float, script: Path,
        env: dict[str, str] | None = None) -> tuple[dict[str, Any], float]:
    """Run wrk with one thread; return its JSON line and the CPU it used (cores)."""
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
           "-s", str(script), url]
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                             env={**os.environ, **(env or {})})
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read().decode(errors="replace")
    for line in text.splitlines():
        if line.startswith("WRKJSON "):
            data: dict[str, Any] = json.loads(line[8:])
            data["wall_s"] = wall
            return data, (ru.ru_utime + ru.ru_stime) / wall
    raise RuntimeError(f"wrk failed ({p.returncode}): {' '.join(cmd)}\n{text}")


def measure(srv: Server, upstream: Server, conns: int, seconds: float, warmup: float,
            script: Path) -> Run:
    if warmup > 0:
        wrk(srv.url, conns, warmup, script)
    mine = srv.pids
    others = upstream.pids if srv is not upstream else []
    sys0, srv0, up0, t0 = system_busy_ticks(), cpu_ticks(mine), cpu_ticks(others), time.time()
    data, client_cpu = wrk(srv.url, conns, seconds, script)
    sys1, srv1, up1, t1 = system_busy_ticks(), cpu_ticks(mine), cpu_ticks(others), time.time()
    if data["sock_errors"] + data["non2xx"]:
        diagnose(srv)
    dt = t1 - t0
    server_cpu = (srv1 - srv0) / TICK / dt
    up_cpu = (up1 - up0) / TICK / dt
    other = max(0.0, (sys1 - sys0) / TICK / dt - server_cpu - up_cpu - client_cpu)
    return Run(
        conns=conns, rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000, mean_ms=data["mean_us"] / 1000,
        errors=data["sock_errors"] + data["non2xx"], client_cpu=client_cpu,
        server_cpu=server_cpu, other_cpu=other, load1=loadavg()[0],
    )


def scrape(url: str) -> dict[str, float]:
    base = url.split("/v1/", 1)[0]
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out: Counter[str] = Counter()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name.split("{", 1)[0]] += float(value)
    return dict(out)


@dataclass
class Round:
    index: int
    load_before: tuple[float, float, float]
    runs: dict[str, dict[int, Run]] = field(default_factory=dict)
    flagman_self_overhead_ms: float | None = None  # mean of x-flagman-overhead-ms at 1 conn

    @property
    def other_cpu(self) -> float:
        rs = [r for by in self.runs.values() for r in by.values()]
        return sum(r.other_cpu for r in rs) / len(rs) if rs else 0.0


def wait_quiet(limit: float, max_wait: float) -> None:
    waited = 0.0
    while loadavg()[0] > limit and waited < max_wait:
        if waited == 0:
            print(f"  load average {loadavg()[0]:.2f} > {limit}: waiting up to {max_wait:.0f}s "
                  "for the machine to quieten", flush=True)
        time.sleep(5)
        waited += 5
    if waited:
        print(f"  waited {waited:.0f}s, load average now {loadavg()[0]:.2f}", flush=True)


def run_round(i: int, servers: dict[str, Server], upstream: Server, args: argparse.Namespace,
              post: Path) -> Round:
    wait_quiet(args.quiet_load, args.max_wait)
    rnd = Round(i, loadavg())
    print(f"round {i + 1}/{args.rounds}: load average {fmt_load(rnd.load_before)}", flush=True)
    for name, srv in servers.items():
        by: dict[int, Run] = {}
        for c in (16, 64):
            by[c] = measure(srv, upstream, c, args.duration, args.warmup, post)
            print(f"  {name:<8} {c:>2} conns: {by[c].rps:>9,.0f} req/s  p50 {by[c].p50_ms:7.3f} ms"
                  f"  wrk {by[c].client_cpu:.2f} cores, server {by[c].server_cpu:.2f}, "
                  f"others {by[c].other_cpu:.2f}", flush=True)
        rnd.runs[name] = by
    # 1 connection: short runs, interleaved across the targets, summarized by their medians
    before = scrape(servers["flagman"].url) if "flagman" in servers else None
    k = max(1, args.latency_runs)
    per = max(1.0, args.latency_duration / k)
    subs: dict[str, list[Run]] = {name: [] for name in servers}
    for j in range(k):
        for name, srv in servers.items():
            subs[name].append(measure(srv, upstream, 1, per, args.warmup if j == 0 else 0, post))
    if before is not None:
        time.sleep(0.6)  # the log writer feeds the metrics every flush_interval
        after = scrape(servers["flagman"].url)
        n = after["flagman_overhead_seconds_count"] - before["flagman_overhead_seconds_count"]
        t = after["flagman_overhead_seconds_sum"] - before["flagman_overhead_seconds_sum"]
        rnd.flagman_self_overhead_ms = t / n * 1000 if n else None
    for name in servers:
        r = rnd.runs[name][1] = combine(subs[name])
        lo, hi = r.p50_range or (r.p50_ms, r.p50_ms)
        print(f"  {name:<8}  1 conn : {r.rps:>9,.0f} req/s  p50 {r.p50_ms:7.3f} ms "
              f"({lo:.3f}-{hi:.3f} over {k} runs)  p99 {r.p99_ms:7.3f} ms  "
              f"others {r.other_cpu:.2f}", flush=True)
    return rnd


@dataclass
class RSS:
    requests: int
    idle: float
    before: float
    after: float
    rps: float
    logged: float | None

    @property
    def growth(self) -> float:
        return self.after - self.before


def measure_rss(srv: Server, n: int, warm: int, count: Path) -> RSS:
    """RSS on a fresh flagman: idle, after a warm-up (pools, lazy imports), after n more."""
    pid = srv.proc.pid
    time.sleep(1)
    idle = rss_mb(pid)
    wrk(srv.url, 16, 900, count, env={"WRK_LIMIT": str(warm)})
    time.sleep(1)
    before = rss_mb(pid)
    t0 = time.perf_counter()
    data, _ = wrk(srv.url, 16, 900, count, env={"WRK_LIMIT": str(n)})
    rps = n / (time.perf_counter() - t0)
    if data["non2xx"]:
        print(f"  warning: {data['non2xx']} non-200 answers during the RSS run")
        diagnose(srv)
    time.sleep(2)  # let the writer drain its queue into SQLite and the metrics
    after = rss_mb(pid)
    logged = scrape(srv.url).get("flagman_requests_total")
    return RSS(n, idle, before, after, rps, logged)


# -- profiling -----------------------------------------------------------------------------------

def profile(srv: Server, seconds: float, post: Path, out: Path) -> str:
    """Sample flagman with py-spy under 16-connection load; summarize its own frames."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return "py-spy not found: `.venv/bin/pip install py-spy` to profile"
    rec = subprocess.Popen([spy, "record", "--pid", str(srv.proc.pid), "--duration",
                            str(round(seconds)), "--rate", "200", "--format", "raw", "--output",
                            str(out), "--nonblocking"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    time.sleep(1)
    wrk(srv.url, 16, seconds + 2, post)
    rec.wait(60)
    return summarize_stacks(out)


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (flagman/x.py)" / "func (pkg/x.py)"
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def summarize_stacks(path: Path, top: int = 20) -> str:
    total = 0
    pkg: Counter[str] = Counter()
    self_t: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        cnt = int(n)
        frames = [_short(f) for f in stack.split(";") if f]
        total += cnt
        if frames:
            self_t[frames[-1]] += cnt
            where = frames[-1].rpartition(" (")[2]
            pkg[where.split("/", 1)[0] if "/" in where else where.rstrip(")")] += cnt
        for f in set(frames):
            incl[f] += cnt
    if not total:
        return "no samples"
    lines = [f"{total} samples; self time by package:"]
    lines += [f"  {c / total:6.1%}  {p}" for p, c in pkg.most_common(12)]
    lines.append(f"self time by function, top {top}:")
    lines += [f"  {c / total:6.1%}  {f}" for f, c in self_t.most_common(top)]
    lines.append(f"inclusive time of flagman's own functions, top {top}:")
    own = [(f, c) for f, c in incl.most_common() if "(flagman/" in f][:top]
    lines += [f"  {c / total:6.1%}  {f}" for f, c in own]
    return "\n".join(lines)


# -- reporting -----------------------------------------------------------------------------------

def fmt_load(la: tuple[float, float, float]) -> str:
    return f"{la[0]:.2f} {la[1]:.2f} {la[2]:.2f} (1/5/15 min)"


def ok(b: bool) -> str:
    return "PASS" if b else "FAIL"


def md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def report(args: argparse.Namespace, cmdline: str, rounds: list[Round], rss: RSS | None,
           versions: dict[str, str], started: str, prof: str | None) -> str:
    best = min(rounds, key=lambda r: r.other_cpu) if rounds else None
    lines = [
        "# Gateway overhead: direct vs flagman vs LiteLLM",
        "",
        f"Command: `{cmdline}`  ",
        f"Started {started}; {os.cpu_count()} cores "
        f"({_cpu_model()}); " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        "",
        "One fake upstream (`bench/fake_upstream.py`, raw ASGI under uvicorn, its own process); "
        "*bare proxy* = raw ASGI under uvicorn forwarding with one aiohttp session and nothing "
        "else (the floor of flagman's stack); one flagman process (`flagman serve`, one `openai` "
        "deployment); one LiteLLM proxy worker (offline, access log off like flagman's). "
        "Load from `wrk -t1` (one thread: the client itself uses up to one of the 2 cores, "
        "shown below). Latencies are wrk's per-request distributions; *added* = the gateway's "
        "percentile minus the direct percentile, at 1 connection. *Server CPU* counts the "
        "gateway process only (not the upstream, not wrk).",
        "",
    ]
    if best is not None:
        lines += [
            f"Reported: round {best.index + 1} of {len(rounds)}, the one in which other processes "
            f"used the least CPU (mean {best.other_cpu:.2f} cores of {os.cpu_count()}); load "
            f"average at its start {fmt_load(best.load_before)}.",
            "",
            _main_table(best),
            "",
        ]
        if best.flagman_self_overhead_ms is not None:
            lines += [f"flagman's own overhead figure (mean `x-flagman-overhead-ms` at 1 "
                      f"connection, from `/metrics`): {best.flagman_self_overhead_ms:.3f} ms.", ""]
    if rss is not None:
        lines += [
            f"flagman RSS (VmRSS), fresh process, {rss.requests:,} requests at 16 connections "
            f"({rss.rps:,.0f} req/s; flagman_requests_total afterwards: "
            f"{rss.logged:,.0f}):" if rss.logged is not None else "flagman RSS (VmRSS):",
            "",
            md_table(["idle after start", "after 2,000 warm-up requests",
                      f"after {rss.requests:,} more", "growth"],
                     [[f"{rss.idle:.1f} MB", f"{rss.before:.1f} MB", f"{rss.after:.1f} MB",
                       f"{rss.growth:+.1f} MB"]]),
            "",
        ]
    lines += ["## Targets", "", md_table(["target", "measured", "result"], targets(best, rss)), ""]
    if len(rounds) > 1:
        rows = []
        for r in rounds:
            row = [str(r.index + 1), fmt_load(r.load_before), f"{r.other_cpu:.2f}"]
            for name in ("direct", "bare proxy", "flagman", "LiteLLM"):
                by = r.runs.get(name)
                row.append(f"{by[16].rps:,.0f}" if by else "-")
            f, d = r.runs.get("flagman"), r.runs.get("direct")
            row.append(f"{f[1].p50_ms - d[1].p50_ms:.3f}" if f and d else "-")
            rows.append(row)
        lines += ["## All rounds", "", md_table(
            ["round", "load average at start", "others' CPU (cores)", "direct req/s @16",
             "bare proxy req/s @16", "flagman req/s @16", "LiteLLM req/s @16",
             "flagman added p50 (ms)"], rows), ""]
    if prof:
        lines += ["## py-spy profile of flagman at 16 connections", "", "```", prof, "```", ""]
    return "\n".join(lines)


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def _main_table(r: Round) -> str:
    names = [n for n in ("direct", "bare proxy", "flagman", "LiteLLM") if n in r.runs]
    d = r.runs.get("direct")

    def cell(n: str, fn: Any) -> str:
        try:
            return str(fn(r.runs[n]))
        except (KeyError, TypeError):
            return "-"

    rows = [
        ["requests/s, 16 connections"] + [cell(n, lambda b: f"{b[16].rps:,.0f}") for n in names],
        ["requests/s, 64 connections"] + [cell(n, lambda b: f"{b[64].rps:,.0f}") for n in names],
        ["latency p50, 1 connection (ms)"] + [cell(n, lambda b: f"{b[1].p50_ms:.3f}")
                                              for n in names],
        ["  p50 range over the short runs (ms)"] + [
            cell(n, lambda b: "{:.3f}-{:.3f}".format(*b[1].p50_range)) for n in names],
        ["latency p99, 1 connection (ms)"] + [cell(n, lambda b: f"{b[1].p99_ms:.3f}")
                                              for n in names],
        ["added p50 vs direct (ms)"] + [
            "-" if n == "direct" or d is None else f"{r.runs[n][1].p50_ms - d[1].p50_ms:+.3f}"
            for n in names],
        ["added p99 vs direct (ms)"] + [
            "-" if n == "direct" or d is None else f"{r.runs[n][1].p99_ms - d[1].p99_ms:+.3f}"
            for n in names],
        ["requests/s, 1 connection"] + [cell(n, lambda b: f"{b[1].rps:,.0f}") for n in names],
        ["server CPU per request at 16 / 64 conns (µs)"] + [
            cell(n, lambda b: f"{b[16].server_cpu / b[16].rps * 1e6:.0f} / "
                              f"{b[64].server_cpu / b[64].rps * 1e6:.0f}") for n in names],
        ["wrk client CPU at 16 / 64 conns (cores)"] + [
            cell(n, lambda b: f"{b[16].client_cpu:.2f} / {b[64].client_cpu:.2f}") for n in names],
        ["server CPU at 16 / 64 conns (cores)"] + [
            cell(n, lambda b: f"{b[16].server_cpu:.2f} / {b[64].server_cpu:.2f}") for n in names],
        ["other processes' CPU, 16 / 64 / 1 conn (cores)"] + [
            cell(n, lambda b: f"{b[16].other_cpu:.2f} / {b[64].other_cpu:.2f} / "
                              f"{b[1].other_cpu:.2f}") for n in names],
        ["errors (socket + non-2xx)"] + [
            cell(n, lambda b: str(sum(x.errors for x in b.values()))) for n in names],
    ]
    return md_table(["", *names], rows)


def targets(best: Round | None, rss: RSS | None) -> list[list[str]]:
    rows = []
    runs = best.runs if best else {}
    f, d, ll = runs.get("flagman"), runs.get("direct"), runs.get("LiteLLM")
    if f and d:
        added = f[1].p50_ms - d[1].p50_ms
        rows.append([f"flagman added p50 at 1 connection <= {TARGET_ADDED_P50_MS} ms",
                     f"{added:.3f} ms", ok(added <= TARGET_ADDED_P50_MS)])
    if f and ll:
        for c in (16, 64):
            ratio = f[c].rps / ll[c].rps
            rows.append([f"flagman >= {TARGET_RPS_RATIO:.0f}x LiteLLM requests/s ({c} conns)",
                         f"{ratio:.1f}x ({f[c].rps:,.0f} vs {ll[c].rps:,.0f})",
                         ok(ratio >= TARGET_RPS_RATIO)])
    if rss is not None:
        rows.append([f"flagman RSS growth over {rss.requests:,} requests < "
                     f"{TARGET_RSS_GROWTH_MB:.0f} MB", f"{rss.growth:+.1f} MB",
                     ok(rss.growth < TARGET_RSS_GROWTH_MB)])
    return rows or [["(nothing measured)", "-", "-"]]


# -- main --------------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="short run: 3 s measurements, 1 round, 20,000 RSS requests, no waiting")
    ap.add_argument("--duration", type=float, help="seconds per throughput run (8; quick 3)")
    ap.add_argument("--latency-duration", type=float,
                    help="seconds of the 1-connection run (8; quick 3)")
    ap.add_argument("--latency-runs", type=int,
                    help="split the 1-connection time into this many interleaved runs (4; quick 2)")
    ap.add_argument("--warmup", type=float, help="seconds of warm-up before each run (2; quick 1)")
    ap.add_argument("--rounds", type=int, help="repeat the set, report the quietest (2; quick 1)")
    ap.add_argument("--rss-requests", type=int,
                    help="requests between the two RSS readings (100000; quick 20000; 0 = skip)")
    ap.add_argument("--targets", default="direct,bare,flagman,litellm",
                    help="comma list of direct, bare (uvicorn + aiohttp pass-through: the floor "
                         "of flagman's stack), flagman, litellm")
    ap.add_argument("--skip-litellm", action="store_true", help="do not run the LiteLLM proxy")
    ap.add_argument("--litellm-bin", help=f"a `litellm` executable (default: {DEFAULT_VENV}/bin/"
                                          "litellm, created when missing)")
    ap.add_argument("--quiet-load", type=float, default=1.5,
                    help="before each round, wait while the 1-min load average is above this")
    ap.add_argument("--max-wait", type=float, help="longest wait per round, seconds (60; quick 0)")
    ap.add_argument("--profile", type=float, default=0.0, metavar="SECONDS",
                    help="also sample flagman with py-spy for this long at 16 connections")
    ap.add_argument("--flagman-src", help="run flagman from this source folder (the one holding "
                                          "flagman/, e.g. a `git archive` of another commit) "
                                          "instead of the installed tree")
    ap.add_argument("--out", default=str(BENCH / "results" / "overhead.md"),
                    help="markdown results file ('' to skip)")
    ap.add_argument("--serve-bare-proxy", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--upstream", help=argparse.SUPPRESS)
    a = ap.parse_args()
    q = a.quick
    defaults = {"duration": (8.0, 3.0), "latency_duration": (8.0, 3.0), "warmup": (2.0, 1.0),
                "rounds": (2, 1), "latency_runs": (4, 2), "rss_requests": (100_000, 20_000), "max_wait": (60.0, 0.0)}
    for k, (full, quick) in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, quick if q else full)
    a.targets = [t.strip().lower() for t in a.targets.split(",") if t.strip()]
    return a


@contextlib.contextmanager
def servers_running(args: argparse.Namespace, tmp: Path, ll_bin: Path | None
                    ) -> Iterator[tuple[Server, dict[str, Server]]]:
    started: list[Server] = []
    try:
        up = start_upstream(tmp)
        started.append(up)
        port = int(up.url.split(":")[2].split("/")[0])
        srvs: dict[str, Server] = {}
        if "direct" in args.targets:
            srvs["direct"] = up
        if "bare" in args.targets:
            srvs["bare proxy"] = start_bare_proxy(tmp, up.url)
            started.append(srvs["bare proxy"])
        if "flagman" in args.targets:
            srvs["flagman"] = start_flagman(tmp, port, args.flagman_src)
            started.append(srvs["flagman"])
        if ll_bin is not None:
            print("starting LiteLLM (it takes several seconds to import)", flush=True)
            srvs["LiteLLM"] = start_litellm(tmp, port, ll_bin)
            started.append(srvs["LiteLLM"])
        yield up, srvs
    finally:
        for s in reversed(started):
            s.stop()


def main() -> None:
    args = parse_args()
    if args.serve_bare_proxy:
        serve_bare_proxy(args.serve_bare_proxy, args.upstream)
        return
    cmdline = shlex.join([Path(sys.executable).as_posix(), *sys.argv])
    print(f"$ {cmdline}", flush=True)
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get update && apt-get install -y wrk")
    ll_bin = litellm_bin(args)
    versions = {"flagman": flagman_source(args.flagman_src),
                "uvicorn": importlib.metadata.version("uvicorn"),
                "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True
                                      ).stdout.split(" [")[0].removeprefix("wrk ")}
    if ll_bin is not None:
        versions["litellm"] = litellm_version(ll_bin)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"load average {fmt_load(loadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="flagman-overhead-") as td:
        tmp = Path(td)
        post, count = tmp / "post.lua", tmp / "count.lua"
        post.write_text(LUA_POST)
        count.write_text(LUA_COUNT)
        with servers_running(args, tmp, ll_bin) as (up, srvs):
            rss = None
            if "flagman" in srvs and args.rss_requests > 0:
                print(f"flagman RSS: {args.rss_requests:,} requests at 16 connections", flush=True)
                rss = measure_rss(srvs["flagman"], args.rss_requests, 2000, count)
                print(f"  idle {rss.idle:.1f} MB, before {rss.before:.1f} MB, after "
                      f"{rss.after:.1f} MB ({rss.growth:+.1f} MB, {rss.rps:,.0f} req/s)",
                      flush=True)
            rounds = [run_round(i, srvs, up, args, post) for i in range(args.rounds)]
            prof = None
            if args.profile > 0 and "flagman" in srvs:
                print(f"profiling flagman for {args.profile:.0f}s", flush=True)
                prof = profile(srvs["flagman"], args.profile, post, tmp / "flagman.pyspy.txt")
    text = report(args, cmdline, rounds, rss, versions, started, prof)
    print()
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
