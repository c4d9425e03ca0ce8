"""The contract every MemoryStore backend passes.

Use it by subclassing `MemoryStoreContract` in a test module and providing a `store` fixture that
returns a fresh, empty store (the real MiniLM embedder is at hand as the `embedder` fixture):

    class TestMyStore(MemoryStoreContract):
        @pytest.fixture
        def store(self, embedder, tmp_path):
            return MyStore(..., embedder)
"""
from __future__ import annotations

import time
from typing import Any

import pytest

from memory.embeddings import MiniLmEmbedder
from memory.store import MemoryItem, MemoryStore, SearchFilter

DAY = 86_400.0
NOW = time.time()


def item(id: str, text: str, workspace: str = "acme", **fields: Any) -> MemoryItem:
    fields.setdefault("created_at", NOW)
    return MemoryItem(id=id, workspace=workspace, text=text, **fields)


NOTES = [
    item("n1", "Anna from Globex prefers phone calls in the afternoon, never on Fridays", project="sales", source="remember"),
    item("n2", "The staging server password rotates on the first Monday of each month", project="ops", source="remember"),
    item("n3", "Quarterly VAT return is due on the 7th; the accountant is Priya Shah", project="finance", source="email", trust="untrusted"),
    item("n4", "Ship the mobile app redesign before the Berlin trade fair", project="product", source="file:roadmap.md"),
    item("n5", "Globex asked for a discount on the annual licence renewal", project="sales", source="email", trust="untrusted"),
    item("n6", "Back up the customer database every night at 2am", project="ops", source="file:runbook.md"),
]


def ids(hits: list[Any]) -> list[str]:
    return [h.item.id for h in hits]


class MemoryStoreContract:
    """Behaviour a user relies on, whichever backend holds the memories."""

    @pytest.fixture(scope="class")
    @classmethod
    def embedder(cls) -> MiniLmEmbedder:
        return MiniLmEmbedder()

    @pytest.fixture
    def store(self) -> MemoryStore:
        raise NotImplementedError("a backend's test class provides the store fixture")

    @pytest.fixture
    def filled(self, store: MemoryStore) -> MemoryStore:
        store.add(NOTES)
        return store

    # --- add / count / search

    def test_added_items_are_counted_and_found_by_meaning(self, filled: MemoryStore) -> None:
        assert filled.count("acme") == len(NOTES)
        hits = filled.search("acme", "when is the best time to ring the Globex contact?", limit=3)
        assert ids(hits)[0] == "n1"
        assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))

    def test_hits_carry_their_source_and_trust(self, filled: MemoryStore) -> None:
        hit = filled.search("acme", "who is our accountant for the VAT return", limit=1)[0]
        assert hit.item.id == "n3"
        assert (hit.item.source, hit.item.trust, hit.item.project) == ("email", "untrusted", "finance")
        assert hit.item.created_at == pytest.approx(NOW)

    def test_meta_and_author_round_trip(self, store: MemoryStore) -> None:
        store.add([item("m1", "Call the landlord about the lease", author="U123", meta={"thread": "t-9", "page": "2"})])
        got = store.search("acme", "landlord lease", limit=1)[0].item
        assert (got.author, got.meta) == ("U123", {"thread": "t-9", "page": "2"})

    def test_limit_is_respected(self, filled: MemoryStore) -> None:
        assert len(filled.search("acme", "globex", limit=2)) <= 2
        assert filled.search("acme", "globex", limit=0) == []

    def test_adding_the_same_id_replaces_the_item(self, filled: MemoryStore) -> None:
        filled.add([item("n2", "The staging server is being retired in June", project="ops")])
        assert filled.count("acme") == len(NOTES)
        top = filled.search("acme", "when is the staging server retired", limit=1)[0]
        assert top.item.id == "n2" and "retired" in top.item.text
        assert all("password" not in h.item.text for h in filled.search("acme", "staging password rotation", limit=10))

    def test_unknown_workspace_is_empty(self, filled: MemoryStore) -> None:
        assert filled.search("nobody", "Globex", limit=5) == []
        assert filled.count("nobody") == 0

    # --- hybrid

    def test_hybrid_finds_both_the_exact_code_and_the_paraphrase(self, store: MemoryStore) -> None:
        store.add([
            # only the keyword side knows this code; the text means little
            item("code", "Parking permit XQ-7731 is for the blue delivery van"),
            # only the vector side links this to the question: no word in common
            item("meaning", "The electricity bill went unpaid last month"),
            # distractors close in meaning to the question but without the code
            item("d1", "Utility costs are planned in the yearly budget"),
            item("d2", "Electrical outages are expected next week in the office"),
            item("d3", "Payment reminders go out automatically"),
            item("d4", "Random unrelated note about gardening and tomatoes"),
        ])
        hits = store.search("acme", "XQ-7731 overdue power invoice", limit=3)
        assert {"code", "meaning"} <= set(ids(hits))

    # --- filters

    def test_filter_by_project(self, filled: MemoryStore) -> None:
        hits = filled.search("acme", "globex", limit=10, where=SearchFilter(projects=["sales"]))
        assert hits and {h.item.project for h in hits} == {"sales"}
        assert filled.count("acme", SearchFilter(projects=["sales", "ops"])) == 4

    def test_filter_by_source(self, filled: MemoryStore) -> None:
        hits = filled.search("acme", "discount or accountant", limit=10, where=SearchFilter(sources=["email"]))
        assert set(ids(hits)) == {"n3", "n5"}

    def test_filter_by_time(self, store: MemoryStore) -> None:
        store.add([
            item("old", "Budget meeting with the bank", created_at=NOW - 30 * DAY),
            item("mid", "Budget meeting with investors", created_at=NOW - 10 * DAY),
            item("new", "Budget meeting with the team", created_at=NOW),
        ])
        recent = store.search("acme", "budget meeting", limit=10, where=SearchFilter(since=NOW - 15 * DAY))
        assert set(ids(recent)) == {"mid", "new"}
        window = store.search("acme", "budget meeting", limit=10, where=SearchFilter(since=NOW - 40 * DAY, until=NOW - 5 * DAY))
        assert set(ids(window)) == {"old", "mid"}
        assert store.count("acme", SearchFilter(until=NOW - 20 * DAY)) == 1

    def test_empty_allow_lists_admit_nothing(self, filled: MemoryStore) -> None:
        assert filled.search("acme", "globex", where=SearchFilter(projects=[])) == []
        assert filled.count("acme", SearchFilter(sources=[])) == 0
        assert filled.delete("acme", where=SearchFilter(projects=[])) == 0
        assert filled.count("acme") == len(NOTES)

    # --- workspaces

    def test_workspace_a_never_sees_workspace_b(self, store: MemoryStore) -> None:
        store.add([item("a1", "Secret pricing for the Initech deal is 40k", workspace="alpha", project="sales")])
        store.add([item("b1", "Initech deal pricing draft", workspace="beta", project="sales"),
                   item("b2", "Lunch menu for Friday", workspace="beta")])
        for query in ("Initech secret pricing 40k", "what is the price of the deal", "lunch"):
            assert {h.item.workspace for h in store.search("beta", query, limit=10)} <= {"beta"}
            assert {h.item.workspace for h in store.search("alpha", query, limit=10)} <= {"alpha"}
        assert store.count("alpha") == 1 and store.count("beta") == 2
        # ids and filters from the wrong workspace delete nothing there
        assert store.delete("beta", ids=["a1"]) == 0
        assert store.delete("beta", where=SearchFilter(projects=["sales"])) == 1
        assert store.count("alpha") == 1
        assert ids(store.search("alpha", "Initech pricing", limit=5)) == ["a1"]

    def test_same_id_in_two_workspaces_are_two_items(self, store: MemoryStore) -> None:
        store.add([item("same", "alpha's version", workspace="alpha"), item("same", "beta's version", workspace="beta")])
        assert store.search("alpha", "version", limit=5)[0].item.text == "alpha's version"
        store.delete("alpha", ids=["same"])
        assert store.search("beta", "version", limit=5)[0].item.text == "beta's version"

    # --- delete

    def test_delete_by_id(self, filled: MemoryStore) -> None:
        assert filled.delete("acme", ids=["n1", "n1", "missing"]) == 1
        assert filled.count("acme") == len(NOTES) - 1
        assert "n1" not in ids(filled.search("acme", "Globex phone calls afternoon", limit=10))

    def test_delete_by_source(self, filled: MemoryStore) -> None:
        assert filled.delete("acme", where=SearchFilter(sources=["email"])) == 2
        assert not {"n3", "n5"} & set(ids(filled.search("acme", "accountant discount", limit=10)))
        assert filled.count("acme") == len(NOTES) - 2

    def test_delete_by_project(self, filled: MemoryStore) -> None:
        assert filled.delete("acme", where=SearchFilter(projects=["ops"])) == 2
        assert filled.count("acme", SearchFilter(projects=["ops"])) == 0
        assert filled.count("acme") == len(NOTES) - 2

    def test_delete_by_ids_and_filter_needs_both(self, filled: MemoryStore) -> None:
        assert filled.delete("acme", ids=["n1", "n2"], where=SearchFilter(projects=["sales"])) == 1
        assert set(ids(filled.search("acme", "staging server password", limit=10))) >= {"n2"}

    def test_delete_without_ids_or_filter_deletes_nothing(self, filled: MemoryStore) -> None:
        assert filled.delete("acme") == 0
        assert filled.delete("acme", where=SearchFilter()) == 0
        assert filled.count("acme") == len(NOTES)

    def test_delete_by_time(self, store: MemoryStore) -> None:
        store.add([item("old", "Old note about taxes", created_at=NOW - 100 * DAY), item("new", "New note about taxes")])
        assert store.delete("acme", where=SearchFilter(until=NOW - 50 * DAY)) == 1
        assert ids(store.search("acme", "taxes", limit=5)) == ["new"]
