"""Numbered, append-only migrations, recorded in `_migrations` (the simonw/llm way).

Never edit a released migration: add a new one.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]


def m001_requests(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE requests (
            id TEXT PRIMARY KEY,
            created REAL NOT NULL,
            endpoint TEXT NOT NULL,
            key_id TEXT,
            requested_model TEXT NOT NULL,
            group_name TEXT,
            deployment TEXT,
            strategy TEXT,
            decision TEXT,
            status INTEGER NOT NULL,
            error_class TEXT,
            attempts TEXT,
            attempt_count INTEGER NOT NULL DEFAULT 0,
            stream INTEGER NOT NULL DEFAULT 0,
            latency_ms REAL,
            ttft_ms REAL,
            overhead_ms REAL,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            cost_usd REAL,
            prompt TEXT,
            response TEXT
        )
        """
    )
    db.execute("CREATE INDEX requests_created ON requests (created)")


def m002_feedback(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE feedback (
            request_id TEXT NOT NULL REFERENCES requests(id),
            score REAL NOT NULL,
            comment TEXT,
            created REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX feedback_request ON feedback (request_id)")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("m001_requests", m001_requests),
    ("m002_feedback", m002_feedback),
]


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations not yet recorded; return their names."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied REAL)")
    done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
    applied = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        with db:
            fn(db)
            db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, time.time()))
        applied.append(name)
    return applied
