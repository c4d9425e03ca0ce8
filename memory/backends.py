"""Opening the configured semantic memory backend: Weaviate, or the embedded SQLite file."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from memory.embeddings import Embedder
from memory.sqlite_store import SqliteStore
from memory.weaviate_store import COLLECTION, WeaviateStore

Backend = Literal["sqlite", "weaviate"]


def backend_for(weaviate_url: str | None) -> Backend:
    """Weaviate when a URL is configured, else the embedded store."""
    return "weaviate" if weaviate_url else "sqlite"


def open_store(kind: Backend, embedder: Embedder, *, path: Path | str | None = None, weaviate_url: str | None = None,
               weaviate_api_key: str | None = None, weaviate_grpc_port: int = 50051, weaviate_grpc_host: str | None = None,
               weaviate_collection: str = COLLECTION) -> SqliteStore | WeaviateStore:
    """The store of `kind`; each kind needs its own arguments (a file path, or a Weaviate URL)."""
    if kind == "sqlite":
        if path is None:
            raise ValueError("the embedded memory store needs a file path (MEMORY_PATH, or DATA_DIR/memory.sqlite3)")
        return SqliteStore(path, embedder)
    if kind == "weaviate":
        if not weaviate_url:
            raise ValueError("the Weaviate memory store needs WEAVIATE_URL, e.g. http://127.0.0.1:8080")
        return WeaviateStore.open(weaviate_url, embedder, weaviate_api_key, weaviate_grpc_port, weaviate_grpc_host,
                                  weaviate_collection)
    raise ValueError(f"unknown memory backend {kind!r}: use one of sqlite, weaviate")
