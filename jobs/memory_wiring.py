"""Builds semantic memory from settings: the embedder, the embedded store and Weaviate when configured."""
from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from kernel.settings import Settings
from memory.embeddings import Embedder, build_embedder
from memory.sqlite_store import SqliteStore
from memory.store import MemoryStore

log = logging.getLogger("deputy.memory")
# MiniLM puts unrelated short texts at cosine 0-0.2 and paraphrases well above 0.3
MIN_SIMILARITY = 0.25


@dataclass
class Memory:
    """Where memories are written and searched (`store`), and every backend `forget` must reach."""

    store: MemoryStore
    embedder: Embedder
    backends: dict[str, MemoryStore] = field(default_factory=dict)

    def close(self) -> None:
        """Close every backend and the embedder's cache, each even if another fails to close."""
        with ExitStack() as stack:
            for part in (self.embedder, *self.backends.values()):
                close = getattr(part, "close", None)
                if close is not None:
                    stack.callback(close)


def memory_path(settings: Settings) -> Path:
    return settings.memory.path or settings.data_dir / "memory.sqlite3"


def open_memory(settings: Settings) -> Memory:
    """The embedded store always (it is the default, and may hold memories from before Weaviate);
    Weaviate in front of it when WEAVIATE_URL is set."""
    path = memory_path(settings)
    key = settings.openai.api_key.get_secret_value() if settings.openai.api_key else None
    embedder = build_embedder(settings.memory.embeddings, base_url=settings.openai.base_url, api_key=key,
                              model=settings.memory.embedding_model, dim=settings.memory.embedding_dim,
                              cache_path=path.with_name(path.stem + ".vectors.sqlite3"))
    embedded = SqliteStore(path, embedder, min_similarity=MIN_SIMILARITY)
    backends: dict[str, MemoryStore] = {"sqlite": embedded}
    store: MemoryStore = embedded
    weaviate = settings.weaviate
    if weaviate.url:
        from memory.weaviate_store import WeaviateStore, WeaviateUnavailable

        key = weaviate.api_key.get_secret_value() if weaviate.api_key else None
        try:
            store = backends["weaviate"] = WeaviateStore.open(weaviate.url, embedder, key, weaviate.grpc_port,
                                                              weaviate.grpc_host, weaviate.collection)
        except WeaviateUnavailable as err:
            log.error("semantic memory stays in %s: %s", path, err)
    return Memory(store=store, embedder=embedder, backends=backends)
