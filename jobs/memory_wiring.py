"""Builds semantic memory from settings: the embedder, the embedded store and Weaviate when configured."""
from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

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


@dataclass(frozen=True)
class WeaviateWait:
    """How a worker waits for a Weaviate that does not answer yet: it tries again after 1, 2, 4 … seconds, at most
    `max_pause_s` apart, until it does, telling `on_miss` each time (the worker's heartbeat says why it is not ready)."""

    max_pause_s: float
    on_miss: Callable[[str], None] = lambda reason: None
    sleep: Callable[[float], None] = time.sleep


def open_memory(settings: Settings, wait: WeaviateWait | None = None) -> Memory:
    """The embedded store always (it is the default, and may hold memories from before Weaviate);
    Weaviate in front of it when WEAVIATE_URL is set.

    With WEAVIATE_URL set, memories go to Weaviate or nowhere: writing them to the embedded store while
    Weaviate is away would split them between two stores. A Weaviate that does not answer raises
    WeaviateUnavailable (saying what to check), or is waited for with `wait` (workers, before they take jobs)."""
    path = memory_path(settings)
    key = settings.openai.api_key.get_secret_value() if settings.openai.api_key else None
    embedder = build_embedder(settings.memory.embeddings, base_url=settings.openai.base_url, api_key=key,
                              model=settings.memory.embedding_model, dim=settings.memory.embedding_dim,
                              cache_path=path.with_name(path.stem + ".vectors.sqlite3"),
                              model_cache_dir=settings.intent.model_cache_dir)
    embedded = SqliteStore(path, embedder, min_similarity=MIN_SIMILARITY)
    memory = Memory(store=embedded, embedder=embedder, backends={"sqlite": embedded})
    if settings.weaviate.url:
        try:
            memory.store = memory.backends["weaviate"] = _open_weaviate(settings, embedder, wait)
        except BaseException:
            memory.close()
            raise
    return memory


def _open_weaviate(settings: Settings, embedder: Embedder, wait: WeaviateWait | None) -> MemoryStore:
    # imported here: the Weaviate client (and gRPC) load only where WEAVIATE_URL is set
    from memory.weaviate_store import WeaviateStore, WeaviateUnavailable

    weaviate = settings.weaviate
    key = weaviate.api_key.get_secret_value() if weaviate.api_key else None

    def connect() -> MemoryStore:
        return WeaviateStore.open(weaviate.url or "", embedder, key, weaviate.grpc_port, weaviate.grpc_host, weaviate.collection)

    if wait is None:
        return connect()

    def missed(state: RetryCallState) -> None:
        reason = str(state.outcome.exception()) if state.outcome else "no answer"
        pause = state.next_action.sleep if state.next_action else 0.0
        log.warning("semantic memory waits for Weaviate (try %d; again in %.0f s): %s", state.attempt_number, pause, reason)
        wait.on_miss(reason)

    retrying = Retrying(retry=retry_if_exception_type(WeaviateUnavailable), wait=wait_exponential(multiplier=1, max=wait.max_pause_s),
                        sleep=wait.sleep, before_sleep=missed, reraise=True)
    store: MemoryStore = retrying(connect)
    log.info("semantic memory: Weaviate at %s", weaviate.url)
    return store
