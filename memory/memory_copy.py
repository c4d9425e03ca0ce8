"""The embedded memory file in a backup: a consistent copy of one workspace's memories, and putting one back.

Copies go through SQLite's backup API, never a file copy: a worker may be writing, and the write-ahead log holds
what the main file does not have yet."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import apsw
import numpy as np

from memory.archive import Refused
from memory.schema import memory_file_info
from memory.sqlite_store import SqliteStore


@dataclass(frozen=True)
class _Named:
    """The file's own embedding model, by name only: a copy is trimmed and counted, never searched or added to."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        raise RuntimeError("a backup's copy of the memory file is not searched")


def copy_out(source: Path, dest: Path, workspace: str) -> int:
    """Copy SOURCE to DEST, then leave in DEST only WORKSPACE's memories; how many there are."""
    _backup(source, dest)
    info = memory_file_info(dest)
    if not info:
        return 0
    with SqliteStore(dest, _Named(info["model"], int(info["dim"]))) as store:
        others = [w for w in store.workspaces() if w != workspace]
        for other in others:
            store.delete(other, [memory.id for memory in store.matching(other, lambda _: True)])
        if others:
            store.compact()  # no page of their text left in the copy
        count = store.count(workspace)
    _one_file(dest)
    return count


def check_in(target: Path, workspace: str, force: bool) -> None:
    """Refused when putting a backup's file at TARGET would lose memories: another workspace's (always), or this
    workspace's without `force`."""
    held = workspaces_in(target)
    others = sorted(set(held) - {workspace})
    if others:
        raise Refused(f"the memory file {target} also holds the memories of workspace(s) {', '.join(others)}; restore "
                      "into another DATA_DIR (or MEMORY_PATH) so that they are kept")
    if workspace in held and not force:
        raise Refused(f"the memory file {target} already holds {held[workspace]} memories of workspace '{workspace}'; "
                      "restore onto a fresh DATA_DIR, or add --force to replace them")


def copy_in(source: Path, target: Path) -> None:
    """Put the backup's file SOURCE at TARGET (check_in first), replacing what TARGET held."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _backup(source, target)


def workspaces_in(path: Path) -> dict[str, int]:
    """Workspace → memories held in the file at PATH (empty when there is none)."""
    if not path.exists():
        return {}
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT workspace, items FROM counts WHERE items > 0").fetchall())
    except sqlite3.OperationalError:
        return {}  # no tables yet
    finally:
        db.close()


def _one_file(path: Path) -> None:
    """Leave the copy as one self-contained file, without a write-ahead log beside it (the store turns WAL back on
    when it opens the restored file)."""
    db = apsw.Connection(str(path))
    try:
        db.execute("PRAGMA journal_mode=DELETE")
    finally:
        db.close()


def _backup(source: Path, dest: Path) -> None:
    source_db = apsw.Connection(str(source))
    source_db.set_busy_timeout(15_000)
    dest_db = apsw.Connection(str(dest))
    try:
        with dest_db.backup("main", source_db, "main") as backup:
            backup.step()  # every page, in one step: a writer cannot change the file half-way through
    finally:
        dest_db.close()
        source_db.close()
