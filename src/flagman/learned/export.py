"""Request log + feedback → outcomes, so a router can be retrained on real traffic.

Reads the SQLite request log (table `requests`: id, requested_model,
deployment, group_name, prompt — the prompt is stored only when configured)
and `feedback(request_id, score, created)`.  Requests without a stored prompt
or without feedback cannot teach a router and are counted, not exported.
Several requests with the same prompt become one outcome with one score per
model group (the mean of its feedback scores).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from flagman.learned.datasets import DataError, Outcome


@dataclass
class ExportStats:
    requests: int = 0
    with_feedback: int = 0
    no_prompt: int = 0
    outcomes: int = 0


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in con.execute(f"PRAGMA table_info({table})")}


def export_outcomes(db: str | Path) -> tuple[list[Outcome], ExportStats]:
    """Outcomes from the log; scores are clipped to [0, 1]."""
    path = Path(db)
    if not path.exists():
        raise DataError(f"{path}: no such request log")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cols = _columns(con, "requests")
        if not cols:
            raise DataError(f"{path}: no 'requests' table")
        if not _columns(con, "feedback"):
            raise DataError(f"{path}: no 'feedback' table")
        prompt_col = "r.prompt" if "prompt" in cols else "NULL"
        model_col = "COALESCE(r.group_name, r.requested_model)" if "group_name" in cols \
            else "r.requested_model"
        stats = ExportStats(requests=con.execute("SELECT COUNT(*) FROM requests").fetchone()[0])
        rows = con.execute(
            f"SELECT r.id, {prompt_col}, {model_col}, AVG(f.score) "
            "FROM requests r JOIN feedback f ON f.request_id = r.id "
            "GROUP BY r.id ORDER BY MIN(f.created)").fetchall()
    except sqlite3.Error as exc:
        raise DataError(f"{path}: cannot read the request log: {exc}") from None
    finally:
        con.close()
    merged: dict[str, tuple[str, dict[str, list[float]]]] = {}
    for rid, prompt, model, score in rows:
        stats.with_feedback += 1
        if not prompt or not model:
            stats.no_prompt += 1
            continue
        _, per_model = merged.setdefault(prompt, (str(rid), {}))
        per_model.setdefault(str(model), []).append(min(1.0, max(0.0, float(score))))
    out = [Outcome(prompt=p, id=rid, scores={m: sum(v) / len(v) for m, v in pm.items()})
           for p, (rid, pm) in merged.items()]
    stats.outcomes = len(out)
    return out, stats
