"""The embedded request log: one SQLite file, WAL mode, batched inserts."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from flagman.store.base import RequestRecord
from flagman.store.migrations import migrate

COLUMNS = ["id", "created", "endpoint", "key_id", "requested_model", "group_name", "deployment", "strategy", "decision", "status", "error_class", "attempts", "attempt_count", "stream", "latency_ms", "ttft_ms", "overhead_ms", "prompt_tokens", "completion_tokens", "cost_usd", "prompt", "response"]


def _row(r: RequestRecord) -> tuple[Any, ...]:
    return (
        r.id, r.created, r.endpoint, r.key_id, r.requested_model, r.group_name, r.deployment,
        r.strategy, orjson.dumps(r.decision, default=str).decode() if r.decision else None,
        r.status, r.error_class, orjson.dumps(r.attempts).decode(), len(r.attempts),
        int(r.stream), r.latency_ms, r.ttft_ms, r.overhead_ms, r.prompt_tokens,
        r.completion_tokens, r.cost_usd, r.prompt, r.response,
    )


class SQLiteLogStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the writer thread and readers, guarded by a lock.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.Lock()
        with self._lock:
            migrate(self._db)

    def write(self, records: list[RequestRecord]) -> None:
        sql = f"INSERT OR REPLACE INTO requests ({','.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))})"
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(sql, [_row(r) for r in records])
            self._db.execute("COMMIT")

    def add_feedback(self, request_id: str, score: float, comment: str | None) -> bool:
        with self._lock:
            found = self._db.execute("SELECT 1 FROM requests WHERE id = ?", (request_id,)).fetchone()
            if not found:
                return False
            self._db.execute(
                "INSERT INTO feedback (request_id, score, comment, created) VALUES (?, ?, ?, ?)",
                (request_id, score, comment, time.time()),
            )
        return True

    def latest(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._db.execute(
                f"SELECT {','.join(COLUMNS)} FROM requests ORDER BY created DESC LIMIT ?", (limit,)
            )
            rows = cur.fetchall()
        return [dict(zip(COLUMNS, row, strict=True)) for row in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM requests").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
