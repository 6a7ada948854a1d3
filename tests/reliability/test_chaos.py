"""Scenario: 30% random faults of every kind on the primary, a healthy backup, heavy load.

Real fault-injecting upstreams on loopback, a real flagman server, `FLAGMAN_CHAOS_REQUESTS`
requests (default 10,000) at concurrency 50.  Every request must be answered with a success
or a well-formed error, at least 99.9% must succeed, each must be logged exactly once, and
file descriptors and asyncio tasks must come back to where they were.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter

from tests.fakes.openai_upstream import FAULTS, FakeOpenAIUpstream
from tests.reliability.helpers import MakeGateway, wait_until
from tests.reliability.load import drive

N = int(os.environ.get("FLAGMAN_CHAOS_REQUESTS", "10000"))
CONCURRENCY = 50


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def chaos_config(primary: FakeOpenAIUpstream, backup: FakeOpenAIUpstream) -> dict[str, object]:
    """Short timeouts keep hang faults cheap; the backup gets room for a busy machine.

    The breaker is kept from opening, so the primary takes every first attempt and every
    fault must be survived by failover: the hardest case.  With the default breaker the
    primary sits out most of the run (5 failures in a row come every ~600 requests) and
    faults cost less; breakers have their own tests.
    """
    return {
        "models": [
            {"name": "m", "id": "primary", "base_url": primary.url, "timeout": 0.3,
             "ttft_timeout": 0.2},
            {"name": "m", "id": "backup", "base_url": backup.url, "timeout": 10},
        ],
        "groups": {"m": {"strategy": "ordered"}},
        "reliability": {"breaker": {"consecutive_failures": 1_000_000,
                                    "min_requests": 1_000_000}},
    }


async def _count_tasks() -> int:
    return len(asyncio.all_tasks())


async def test_thirty_percent_faults_every_request_answered(
    make_gateway: MakeGateway,
) -> None:
    with FakeOpenAIUpstream(name="primary", seed=7, keepalive_timeout=2) as primary, \
            FakeOpenAIUpstream(name="backup", seed=8, keepalive_timeout=2) as backup:
        primary.fault_rate, primary.hang_seconds = 0.3, 1.0
        gw = make_gateway(chaos_config(primary, backup))
        logged: Counter[str] = Counter()
        gw.gateway.writer.sinks.append(lambda batch: logged.update(r.id for r in batch))
        fds0, tasks0 = fd_count(), gw.call(_count_tasks)

        t0 = time.perf_counter()
        outcomes = await drive(gw.url, N, CONCURRENCY)
        elapsed = time.perf_counter() - t0

        assert len(outcomes) == N
        malformed = [o for o in outcomes if not o.well_formed]
        assert not malformed, malformed[:5]
        ok = sum(o.success for o in outcomes)
        failed = Counter((o.status, o.attempts) for o in outcomes if not o.success)
        assert ok / N >= 0.999, (ok, failed.most_common(10), gw.get("/readyz").json())
        # the faults really happened, of every kind, and were failed over
        assert set(primary.injected) == set(FAULTS), primary.injected
        assert len(primary.requests) >= 0.98 * N  # first attempts all go to the faulty primary
        assert sum(primary.injected.values()) >= 0.25 * N
        assert any(o.attempts and "primary:" in o.attempts for o in outcomes)

        # each request is logged exactly once, under the id its response carried
        ids = [o.request_id for o in outcomes]
        gw.flush_log()
        assert len(set(ids)) == N and None not in ids
        assert logged == Counter({i: 1 for i in ids if i is not None})
        rows = gw.rows()
        assert {r["id"] for r in rows} == set(ids)

        # nothing leaked: sockets close once the fakes drop idle keep-alives, tasks finish
        assert wait_until(lambda: fd_count() <= fds0 + 2, 15), (fd_count(), fds0)
        assert wait_until(lambda: gw.call(_count_tasks) <= tasks0, 5)
        print(f"\nchaos: {N} requests in {elapsed:.1f}s, {ok} ok, "
              f"primary {len(primary.requests)} backup {len(backup.requests)} failed {failed}")
