"""Telling whether a watched file changed (config files, learned-router artifacts)."""

from __future__ import annotations

from pathlib import Path

Signature = tuple[int, int, int] | None


def file_signature(path: Path) -> Signature:
    """(mtime, size, inode), or None when the file cannot be read.

    mtime alone misses a write that lands in the same clock tick as the
    truncation before it (a watcher may have read the empty or half-written file
    in between), so the size counts too; the inode catches atomic renames.
    """
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino
