"""The memory file in a backup: a copy holds only the workspace backed up, read while a writer holds the file open;
putting it back never loses another workspace's memories, nor this one's without being told to."""
from __future__ import annotations

from pathlib import Path

import pytest

from memory.archive import Refused
from memory.memory_copy import check_in, copy_in, copy_out, workspaces_in
from memory.sqlite_store import SqliteStore
from tests.memory.test_weaviate_store import WordEmbedder, item


def test_a_copy_holds_only_its_workspace_and_finds_what_it_held(tmp_path: Path) -> None:
    source = tmp_path / "memory.sqlite3"
    with SqliteStore(source, WordEmbedder()) as live:
        live.add([item("n1", "Ana prefers calls after 10am", workspace="studio"),
                  item("n2", "the launch code is 0000", workspace="other")])
        # the live store stays open (a running worker): the copy still has what it wrote
        assert copy_out(source, tmp_path / "copy.sqlite3", "studio") == 1
    assert workspaces_in(tmp_path / "copy.sqlite3") == {"studio": 1}
    assert b"launch code" not in (tmp_path / "copy.sqlite3").read_bytes()

    target = tmp_path / "new" / "memory.sqlite3"
    check_in(target, "studio", force=False)
    copy_in(tmp_path / "copy.sqlite3", target)
    with SqliteStore(target, WordEmbedder()) as restored:
        [hit] = restored.search("studio", "when does Ana prefer calls", limit=1)
    assert hit.item.id == "n1"


def test_putting_a_copy_back_refuses_to_lose_memories(tmp_path: Path) -> None:
    target = tmp_path / "memory.sqlite3"
    with SqliteStore(target, WordEmbedder()) as store:
        store.add([item("n1", "kept", workspace="studio")])
    with pytest.raises(Refused, match="already holds 1 memories of workspace 'studio'.*--force"):
        check_in(target, "studio", force=False)
    check_in(target, "studio", force=True)
    with pytest.raises(Refused, match="also holds the memories of workspace\\(s\\) studio"):
        check_in(target, "other", force=True)
