"""A content-hash cache in front of any Embedder: the same text is never embedded twice.

Vectors live in a small SQLite file beside the memory store, not in Redis: they are large (1.5 KB
each for MiniLM), worth keeping across restarts, and only ever needed on the machine that
embeds, so RAM-resident shared storage would cost much and buy nothing."""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from memory.embedder import Embedder

SCHEMA = "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL) WITHOUT ROWID"
# SQLite's default limit on bound parameters is far above this; batches keep statements small
LOOKUP_BATCH = 500


def content_key(model: str, text: str) -> bytes:
    return hashlib.sha256(f"{model}\n{text}".encode()).digest()


class CachedEmbedder:
    """Wraps an Embedder; `path` None keeps the cache in memory for this process only."""

    def __init__(self, inner: Embedder, path: Path | str | None = None) -> None:
        import apsw

        self.inner = inner
        self.name = inner.name
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = apsw.Connection(str(path) if path is not None else ":memory:")
        self._db.set_busy_timeout(10_000)
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(SCHEMA)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        keys = [content_key(self.name, t) for t in texts]
        found = self._lookup(set(keys))
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts):
            if key not in found and key not in missing:
                missing[key] = text
        if missing:
            fresh = self.inner.embed(list(missing.values()))
            new = dict(zip(missing, fresh))
            self._store(new)
            found.update(new)
        with self._lock:
            self.misses += len(missing)
            self.hits += len(texts) - len(missing)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def _lookup(self, keys: set[bytes]) -> dict[bytes, np.ndarray]:
        wanted = list(keys)
        out: dict[bytes, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(wanted), LOOKUP_BATCH):
                batch = wanted[start:start + LOOKUP_BATCH]
                marks = ",".join("?" * len(batch))
                for key, blob in self._db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", batch):
                    out[bytes(key)] = np.frombuffer(blob, dtype=np.float32)
        return out

    def _store(self, vectors: dict[bytes, np.ndarray]) -> None:
        rows = [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in vectors.items()]
        with self._lock, self._db:
            self._db.executemany("INSERT OR IGNORE INTO vectors (key, vector) VALUES (?, ?)", rows)

    def close(self) -> None:
        self._db.close()
