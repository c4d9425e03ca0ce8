from __future__ import annotations

from pathlib import Path

import pytest

from memory.backends import backend_for, open_store
from memory.sqlite_store import SqliteStore
from memory.store import MemoryItem
from memory.weaviate_store import WeaviateStore
from tests.fakes.weaviate_server import FakeWeaviate
from tests.memory.test_weaviate_store import WordEmbedder


def note(id: str, text: str) -> MemoryItem:
    return MemoryItem(id=id, workspace="acme", text=text, created_at=1_750_000_000.0)


def test_a_weaviate_url_picks_weaviate_and_nothing_picks_the_embedded_file() -> None:
    assert backend_for("http://127.0.0.1:8080") == "weaviate"
    assert backend_for(None) == "sqlite" and backend_for("") == "sqlite"


def test_the_weaviate_backend_opens_against_the_configured_server() -> None:
    server = FakeWeaviate(api_key="k").start()
    try:
        with open_store("weaviate", WordEmbedder(), weaviate_url=server.url, weaviate_api_key="k",
                        weaviate_grpc_port=server.grpc_port, weaviate_collection="AcmeMemory") as store:
            assert isinstance(store, WeaviateStore)
            store.add([note("w1", "the office alarm code changed")])
            assert [h.item.id for h in store.search("acme", "alarm code")] == ["w1"]
        assert set(server.classes) == {"AcmeMemory"}
    finally:
        server.stop()


def test_the_embedded_backend_opens_its_file(tmp_path: Path) -> None:
    with open_store("sqlite", WordEmbedder(), path=tmp_path / "memory.sqlite3") as store:
        assert isinstance(store, SqliteStore)
        store.add([note("s1", "renew the passport in April")])
        assert store.count("acme") == 1
    assert (tmp_path / "memory.sqlite3").exists()


def test_missing_settings_say_what_to_set() -> None:
    with pytest.raises(ValueError, match="WEAVIATE_URL"):
        open_store("weaviate", WordEmbedder())
    with pytest.raises(ValueError, match="MEMORY_PATH"):
        open_store("sqlite", WordEmbedder())
    with pytest.raises(ValueError, match="sqlite, weaviate"):
        open_store("qdrant", WordEmbedder())  # type: ignore[arg-type]
