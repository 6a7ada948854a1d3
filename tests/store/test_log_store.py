"""The request log: migrations from a blank database, batching writer throughput and flush."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from flagman.store.base import RequestRecord
from flagman.store.migrations import MIGRATIONS, migrate
from flagman.store.sqlite import SQLiteLogStore
from flagman.store.writer import BatchWriter


def rec(i: int) -> RequestRecord:
    return RequestRecord(id=f"r{i}", created=time.time(), endpoint="chat", requested_model="m",
                         group_name="m", deployment="m", decision={"group": "m"},
                         attempts=[{"deployment": "m", "error_class": None}])


def test_migrations_apply_once_from_blank() -> None:
    db = sqlite3.connect(":memory:")
    assert migrate(db) == [name for name, _ in MIGRATIONS]
    assert migrate(db) == []
    cols = {r[1] for r in db.execute("PRAGMA table_info(requests)")}
    assert {"id", "decision", "attempts", "overhead_ms", "ttft_ms", "cost_usd"} <= cols


async def test_writer_outruns_a_backlog(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = SQLiteLogStore(tmp_path / "log.db")
    writes: list[int] = []
    writer = BatchWriter(store, batch_size=500, flush_interval=0.2,
                         sinks=[lambda b: writes.append(len(b))])
    writer.start()
    for i in range(5000):
        writer.submit(rec(i))
    t = time.perf_counter()
    await writer.flush()
    elapsed = time.perf_counter() - t
    await writer.close()
    assert store.count() == 5000
    assert max(writes) == 500 and sum(writes) == 5000
    # with a backlog the writer must not sleep between batches (10 sleeps would be 2 s)
    assert elapsed < 1.5, elapsed


async def test_feedback_only_for_logged_requests(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = SQLiteLogStore(tmp_path / "log.db")
    store.write([rec(1)])
    assert store.add_feedback("r1", 0.5, "ok") is True
    assert store.add_feedback("nope", 1.0, None) is False
    await asyncio.sleep(0)
