from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from memory.embeddings import MiniLmEmbedder
from memory.sqlite_store import SqliteStore, StoreMismatch, keyword_query
from memory.store import SearchFilter
from tests.memory.contract import NOTES, MemoryStoreContract, ids, item

ROOT = Path(__file__).resolve().parents[2]


class TestSqliteContract(MemoryStoreContract):
    @pytest.fixture
    def store(self, embedder: MiniLmEmbedder, tmp_path: Path):  # type: ignore[no-untyped-def]
        with SqliteStore(tmp_path / "memory.sqlite3", embedder) as store:
            yield store


class TestSqliteQuantisedContract(MemoryStoreContract):
    """The same contract when every workspace is past the exact-search size (binary scan + re-rank)."""

    @pytest.fixture
    def store(self, embedder: MiniLmEmbedder, tmp_path: Path):  # type: ignore[no-untyped-def]
        with SqliteStore(tmp_path / "memory.sqlite3", embedder, exact_below=0) as store:
            yield store


@pytest.fixture(scope="module")
def embedder() -> MiniLmEmbedder:
    return MiniLmEmbedder()


def test_hybrid_beats_vector_alone_and_keyword_alone(embedder: MiniLmEmbedder, tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "m.sqlite3", embedder) as store:
        store.add([
            item("code", "Parking permit XQ-7731 is for the blue delivery van"),
            item("meaning", "The electricity bill went unpaid last month"),
            item("d1", "Utility costs are planned in the yearly budget"),
            item("d2", "Electrical outages are expected next week in the office"),
            item("d3", "Payment reminders go out automatically"),
            item("d4", "Random unrelated note about gardening and tomatoes"),
        ])
        query = "XQ-7731 overdue power invoice"
        both = {"code", "meaning"}
        assert both <= set(ids(store.search("acme", query, limit=2)))
        assert not both <= set(ids(store.search("acme", query, limit=2, mode="vector")))
        assert not both <= set(ids(store.search("acme", query, limit=2, mode="keyword")))


def test_keyword_query_cannot_inject_fts_syntax() -> None:
    assert keyword_query('NEAR(a b) OR "x" AND text:*') == '"near" OR "b" OR "x" OR "text"'
    assert keyword_query("the of") == '"the" OR "of"'
    assert keyword_query("!!!") == ""


def test_punctuation_only_query_still_searches_by_meaning(embedder: MiniLmEmbedder, tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "m.sqlite3", embedder) as store:
        store.add([item("x", "hello there")])
        assert ids(store.search("acme", "?!", limit=3)) == ["x"]


def test_reopening_keeps_everything(embedder: MiniLmEmbedder, tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    with SqliteStore(path, embedder) as store:
        store.add(NOTES)
    with SqliteStore(path, embedder) as store:
        assert store.count("acme") == len(NOTES)
        assert ids(store.search("acme", "VAT accountant", limit=1)) == ["n3"]


def test_a_file_built_with_another_model_says_how_to_fix(embedder: MiniLmEmbedder, tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    SqliteStore(path, embedder).close()

    class Other:
        name, dim = "other-model", 384

        def embed(self, texts):  # type: ignore[no-untyped-def]
            return embedder.embed(texts)

    with pytest.raises(StoreMismatch, match="EMBEDDINGS"):
        SqliteStore(path, Other())


def test_readers_search_while_a_writer_writes(embedder: MiniLmEmbedder, tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    writer = SqliteStore(path, embedder)
    reader = SqliteStore(path, embedder)
    writer.add(NOTES)
    errors: list[BaseException] = []
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                seen.append(len(reader.search("acme", "Globex phone calls", limit=5)))
        except BaseException as err:  # surfaced below
            errors.append(err)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for batch in range(5):
            writer.add([item(f"w{batch}-{i}", f"Batch {batch} note {i} about shipping crates") for i in range(20)])
    finally:
        done.set()
        thread.join()
    assert not errors and seen and min(seen) >= 1
    assert reader.count("acme") == len(NOTES) + 100
    writer.close()
    reader.close()


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from memory.embeddings import MiniLmEmbedder
    from memory.sqlite_store import SqliteStore
    from memory.store import MemoryItem
    store = SqliteStore(sys.argv[1], MiniLmEmbedder())
    n = 0
    while True:
        store.add([MemoryItem(id=f"k{n}-{i}", workspace="acme", text=f"note {n} {i} about crates", created_at=time.time())
                   for i in range(50)])
        n += 1
        print(n, flush=True)
    """
)


def test_sigkill_mid_ingest_leaves_a_store_that_opens_and_searches(embedder: MiniLmEmbedder, tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    with SqliteStore(path, embedder) as store:
        store.add(NOTES)
    child = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        # a few whole batches are committed, and the next one is under way when the kill lands
        for _ in range(3):
            assert child.stdout.readline().strip(), "the writer died before writing"
        time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
    with SqliteStore(path, embedder) as store:
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        total = store.count("acme")
        # only whole batches: a transaction is all or nothing
        assert total >= len(NOTES) + 150 and (total - len(NOTES)) % 50 == 0
        assert total == store.count("acme", SearchFilter(since=0))
        assert ids(store.search("acme", "VAT accountant Priya", limit=1)) == ["n3"]
        assert len(store.search("acme", "crates", limit=10)) == 10
        store.add([item("after", "Written after the crash")])
        assert store.count("acme") == total + 1
