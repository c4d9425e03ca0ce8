from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from memory.embeddings import MiniLmEmbedder
from memory.keyword_search import bounded_query
from memory.sqlite_store import SqliteStore, StoreMismatch, keyword_query
from memory.store import MemoryItem, SearchFilter
from tests.memory.test_weaviate_store import WordEmbedder
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


class TestSqliteLargeWorkspaceContract(MemoryStoreContract):
    """The same contract when both sides take their large-workspace paths: sign-bit candidates, and
    keyword candidates limited to the rarest words (a budget of one row)."""

    @pytest.fixture
    def store(self, embedder: MiniLmEmbedder, tmp_path: Path):  # type: ignore[no-untyped-def]
        with SqliteStore(tmp_path / "memory.sqlite3", embedder, exact_below=0, keyword_budget=1) as store:
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
        print("adding", n, flush=True)
        store.add([MemoryItem(id=f"k{n}-{i}", workspace="acme", text=f"note {n} {i} about crates", created_at=time.time())
                   for i in range(50)])
        n += 1
        print("added", n, flush=True)
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
        said = [child.stdout.readline().split() for _ in range(7)]
        assert said == [["adding", "0"], ["added", "1"], ["adding", "1"], ["added", "2"], ["adding", "2"], ["added", "3"],
                        ["adding", "3"]], "the writer died before writing"
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


# --- large workspaces: bounded keyword side, sign-bit index kept up with writes


def test_bounded_query_keeps_the_plain_query_under_budget_and_requires_rare_words_over_it() -> None:
    words = ["invoice", "zephyr", "due"]
    frequency = {"invoice": 900, "zephyr": 3, "due": 400}
    assert bounded_query(words, frequency, budget=2_000) == '"invoice" OR "zephyr" OR "due"'
    assert bounded_query(words, frequency, budget=500) == '("zephyr" OR "due") AND ("zephyr" OR "due" OR "invoice")'
    # the rarest word is kept even when it alone is over the budget
    assert bounded_query(words, frequency, budget=1) == '("zephyr") AND ("zephyr" OR "due" OR "invoice")'
    # words found nowhere cannot narrow anything
    assert bounded_query(["nowhere", "invoice"], {"invoice": 900}, budget=10) == '"invoice"'


def test_common_words_do_not_bury_the_note_that_names_the_client(embedder: MiniLmEmbedder, tmp_path: Path) -> None:
    filler = [item(f"f{i}", f"Invoice {i} is due for the design work") for i in range(100)]
    filler += [item(f"g{i}", f"Garden note {i}: water the tomatoes") for i in range(200)]
    wanted = item("zephyr", "Invoice for Zephyr Labs is due on Friday")
    other = item("zephyr-lunch", "Lunch with the Zephyr Labs founder")
    with SqliteStore(tmp_path / "m.sqlite3", embedder, keyword_budget=50) as store:
        store.add([*filler, wanted, other])
        assert store.keywords.frequencies(["invoice", "zephyr", "invoices"]) == {"invoice": 101, "zephyr": 2, "invoices": 101}
        hits = store.search("acme", "when is the Zephyr invoice due", limit=5, mode="keyword")
        # candidates come from the rare word only, and the common words still rank the right one first
        assert ids(hits) == ["zephyr", "zephyr-lunch"]
        assert ids(store.search("acme", "when is the Zephyr invoice due", limit=3))[0] == "zephyr"


def test_a_large_workspace_sees_what_another_process_writes_and_forgets(embedder: MiniLmEmbedder, tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    with SqliteStore(path, embedder, exact_below=0) as reader, SqliteStore(path, embedder, exact_below=0) as writer:
        writer.add(NOTES)
        assert ids(reader.search("acme", "VAT accountant", limit=1, mode="vector")) == ["n3"]
        writer.add([item("new", "The delivery van needs new winter tyres")])
        assert ids(reader.search("acme", "snow tires for the truck", limit=1, mode="vector")) == ["new"]
        writer.delete("acme", ids=["new", "n3"])
        assert not {"new", "n3"} & set(ids(reader.search("acme", "tyres for the van, or the accountant", limit=10)))
        # replaced elsewhere: the reader finds the new text, once
        writer.add([item("n1", "Anna from Globex now prefers email, never calls")])
        hits = reader.search("acme", "how does Anna want to be contacted", limit=10, mode="vector")
        assert ids(hits).count("n1") == 1 and "email" in next(h.item.text for h in hits if h.item.id == "n1")
        # and its own deletes and replacements
        reader.delete("acme", ids=["n2"])
        reader.add([item("n4", "The trade fair in Berlin is cancelled")])
        found = reader.search("acme", "server password rotation or Berlin fair", limit=10, mode="vector")
        assert "n2" not in ids(found) and [h.item.text for h in found if h.item.id == "n4"] == ["The trade fair in Berlin is cancelled"]


@pytest.mark.parametrize("layout", ["1", "2"])
def test_a_file_of_an_older_layout_is_upgraded_and_searches(embedder: MiniLmEmbedder, tmp_path: Path, layout: str) -> None:
    path = tmp_path / "m.sqlite3"
    with SqliteStore(path, embedder) as store:
        store.add(NOTES)
        # what layout 2 had: sign bits in vec0, none in item_bits; layout 1 had no item_vectors either
        store.db.execute("DROP TABLE item_bits")
        store.db.execute("CREATE VIRTUAL TABLE vector_bits USING vec0(workspace text partition key, embedding bit[384])")
        if layout == "1":
            store.db.execute("DROP TABLE item_vectors")
        store.db.execute("UPDATE info SET value = ? WHERE key = 'schema'", (layout,))
    with SqliteStore(path, embedder, exact_below=0) as store:
        tables = {name for (name,) in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"item_bits", "item_vectors"} <= tables and "vector_bits" not in tables
        assert store.db.execute("SELECT count(*) FROM item_bits").fetchone()[0] == len(NOTES)
        assert store.db.execute("SELECT count(*) FROM item_vectors").fetchone()[0] == len(NOTES)
        assert ids(store.search("acme", "who is our accountant for the VAT return", limit=1, mode="vector")) == ["n3"]
        assert store.delete("acme", ids=["n3"]) == 1
        assert "n3" not in ids(store.search("acme", "who is our accountant for the VAT return", limit=3))


def test_many_threads_searching_one_store_get_their_own_answers(embedder: MiniLmEmbedder, tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "m.sqlite3", embedder, exact_below=0) as store:
        store.add(NOTES)
        questions = {"VAT accountant Priya": "n3", "Globex phone calls afternoon": "n1", "nightly database backup": "n6"}
        answers: list[tuple[str, str]] = []

        def ask(question: str) -> None:
            for _ in range(5):
                answers.append((question, ids(store.search("acme", question, limit=1))[0]))

        threads = [threading.Thread(target=ask, args=(q,)) for q in questions for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(answers) == 30 and all(questions[q] == got for q, got in answers)


def test_two_processes_writing_at_once_both_succeed(tmp_path):
    """Two workers remembering at the same moment: the second waits for the write lock instead of
    failing with "database is locked" (a deferred transaction that read first cannot upgrade in WAL)."""
    import multiprocessing as mp

    path = tmp_path / "shared.sqlite3"
    SqliteStore(path, WordEmbedder()).close()
    ctx = mp.get_context("fork")
    done = ctx.Queue()
    procs = [ctx.Process(target=_write_many, args=(str(path), n, done)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    results = [done.get(timeout=5) for _ in procs]
    assert results == ["ok"] * 3
    with SqliteStore(path, WordEmbedder()) as store:
        assert store.count("ws") == 3 * 40


def _write_many(path: str, n: int, done) -> None:  # type: ignore[no-untyped-def]
    try:
        with SqliteStore(path, WordEmbedder()) as store:
            for i in range(40):
                store.search("ws", f"note {i}", limit=3)  # a read first, as /remember does before it writes
                store.add([MemoryItem(id=f"{n}-{i}", workspace="ws", text=f"note {n} {i} about invoices", created_at=1.0)])
        done.put("ok")
    except Exception as err:  # reported to the parent, which asserts
        done.put(repr(err))
