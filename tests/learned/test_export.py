"""`data export`: request log + feedback → outcomes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from flagman.learned.datasets import DataError
from flagman.learned.export import export_outcomes


def make_log(path: Path, with_prompt: bool = True) -> None:
    con = sqlite3.connect(path)
    prompt = ", prompt TEXT" if with_prompt else ""
    con.execute(f"CREATE TABLE requests (id TEXT PRIMARY KEY, requested_model TEXT, "
                f"deployment TEXT, group_name TEXT{prompt})")
    con.execute("CREATE TABLE feedback (request_id TEXT, score REAL, created REAL)")
    rows = [("r1", "auto", "d1", "big", "hard question"),
            ("r2", "auto", "d2", "small", "hard question"),
            ("r3", "auto", "d2", "small", None),  # prompt not stored
            ("r4", "auto", "d2", "small", "easy"),  # no feedback
            ("r5", "auto", "d1", "big", "hard question")]
    for r in rows:
        con.execute(f"INSERT INTO requests VALUES (?, ?, ?, ?{', ?' if with_prompt else ''})",
                    r if with_prompt else r[:4])
    con.executemany("INSERT INTO feedback VALUES (?, ?, ?)",
                    [("r1", 1.0, 1.0), ("r2", 0.0, 2.0), ("r3", 1.0, 3.0), ("r5", 0.0, 4.0),
                     ("r1", 1.0, 5.0)])
    con.commit()
    con.close()


def test_export_merges_by_prompt_and_skips_missing(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    make_log(db)
    rows, st = export_outcomes(db)
    assert st.requests == 5 and st.with_feedback == 4 and st.no_prompt == 1
    assert len(rows) == 1
    # big: r1 (mean 1.0) and r5 (0.0) → 0.5; small: r2 → 0.0
    assert rows[0].prompt == "hard question"
    assert rows[0].scores == {"big": 0.5, "small": 0.0}


def test_export_tolerates_log_without_prompt_column(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    make_log(db, with_prompt=False)
    rows, st = export_outcomes(db)
    assert rows == [] and st.no_prompt == 4


def test_export_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such request log"):
        export_outcomes(tmp_path / "none.db")
    db = tmp_path / "empty.db"
    sqlite3.connect(db).close()
    with pytest.raises(DataError, match="no 'requests' table"):
        export_outcomes(db)
