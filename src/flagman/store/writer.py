"""A batching writer that keeps the request log and metrics off the request path.

Handlers call `submit(record)` (a non-blocking queue put).  One background
task drains the queue in batches and hands each batch to a worker thread,
where the sinks (metrics) and then the store's `write` run, so neither SQLite
nor building metric samples runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from flagman.store.base import LogStore, RequestRecord

log = logging.getLogger("flagman.log")

Sink = Callable[[list[RequestRecord]], None]


class BatchWriter:
    def __init__(
        self,
        store: LogStore,
        *,
        batch_size: int = 1000,  # = LogConfig.batch_size
        flush_interval: float = 0.2,
        sinks: list[Sink] | None = None,
        max_queue: int = 100_000,
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.sinks = sinks or []
        self._queue: asyncio.Queue[RequestRecord] = asyncio.Queue(max_queue)
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.dropped = 0
        self.written = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="flagman-log-writer")

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def submit(self, record: RequestRecord) -> None:
        try:
            self._queue.put_nowait(record)
            self._idle.clear()
        except asyncio.QueueFull:
            # Dropping a log row beats blocking a request; the count is shown on /readyz.
            self.dropped += 1

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self._queue.qsize() < self.batch_size - 1:
                # Let a batch gather instead of waking per row: one sleep per batch, not a
                # wait_for (a task and a timer) per row.  With a backlog, no sleep at all:
                # the writer must be able to outrun the request rate.
                await asyncio.sleep(self.flush_interval)
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            await self._write(batch)
            if self._queue.empty():
                self._idle.set()

    async def _write(self, batch: list[RequestRecord]) -> None:
        # Sinks (metrics) run in the writer thread too: prometheus_client is thread-safe,
        # and ~5 µs a record on the event loop showed up as p99 spikes at every flush.
        await asyncio.to_thread(self._write_sync, batch)

    def _write_sync(self, batch: list[RequestRecord]) -> None:
        for sink in self.sinks:
            try:
                sink(batch)
            except Exception:  # a broken sink must not stop the log
                log.exception("log sink failed")
        try:
            self.store.write(batch)
            self.written += len(batch)
        except Exception:
            log.exception("writing %d log rows failed", len(batch))

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything submitted so far is written."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    async def close(self) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
