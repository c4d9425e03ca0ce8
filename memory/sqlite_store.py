"""The embedded MemoryStore: one local SQLite file with sqlite-vec (vectors) and FTS5 (keywords).

Search runs both sides and fuses their rankings; the keyword side runs on a second connection
while the caller embeds the query and scans vectors. WAL mode lets a reader search while a worker
writes; every add or delete is one transaction, so a crash mid-write leaves the file as it was
before that write. See docs/memory.md for the design and the measurements."""
from __future__ import annotations

import json
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np

from memory import sqlite_schema
from memory.bit_index import BitIndexes, sign_bits
from memory.embedder import Embedder
from memory.fusion import Ranking, relative_score, rrf
from memory.keyword_search import KeywordSearch, keyword_query
from memory.sql_filter import conditions as _conditions
from memory.sql_filter import matches_nothing as _matches_nothing
from memory.sqlite_schema import writing
from memory.store import Closing, Hit, MemoryItem, SearchFilter

__all__ = ["SqliteStore", "StoreMismatch", "keyword_query", "rrf", "relative_score"]

Mode = Literal["hybrid", "vector", "keyword"]
Fusion = Literal["rrf", "relative"]


class StoreMismatch(RuntimeError):
    """The file was built with another embedding model or dimension."""


class SqliteStore(Closing):
    """MemoryStore in one SQLite file. Give it the file path and the Embedder (":memory:" for tests)."""

    def __init__(
        self, path: Path | str, embedder: Embedder, *, vector_weight: float = 1.0, keyword_weight: float = 3.0,
        exact_below: int = 20_000, candidates: int = 50, rrf_k: float = 60.0, busy_timeout_ms: int = 15_000,
        min_similarity: float = -1.0, fusion: Fusion = "relative", rerank_pool: int = 200, keyword_budget: int = 6_000,
    ) -> None:
        import apsw
        import sqlite_vec

        self.path = str(path)
        self.embedder = embedder
        self.vector_weight = vector_weight
        self.keyword_weight = keyword_weight
        # up to this many items in a workspace, vector search is exact; past it, a sign-bit scan
        # picks `rerank_pool` candidates that are re-ranked with the full vectors (docs/memory.md)
        self.exact_below = exact_below
        self.rerank_pool = rerank_pool
        self.candidates = candidates
        self.rrf_k = rrf_k
        # vector neighbours less similar than this (cosine) are not hits: an unrelated question
        # then finds nothing instead of the least unrelated memory
        self.min_similarity = min_similarity
        self.fusion = fusion
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = apsw.Connection(self.path)
        self.db.set_busy_timeout(busy_timeout_ms)
        self.db.enable_load_extension(True)
        self.db.load_extension(sqlite_vec.loadable_path())
        self.db.enable_load_extension(False)
        # apsw connections may be shared by threads; statements on one are kept in sequence here
        self._lock = threading.RLock()
        self.dim = 0
        self._open()
        self._bits = BitIndexes(self.dim)
        # the keyword side gets its own connection (a second one cannot see a ":memory:" file)
        self._keyword_db = self.db
        self._keyword_lock = self._lock
        self._pool: ThreadPoolExecutor | None = None
        if self.path != ":memory:":
            self._keyword_db = apsw.Connection(self.path)
            self._keyword_db.set_busy_timeout(busy_timeout_ms)
            self._keyword_lock = threading.RLock()
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memory-keywords")
        # a forked child has the pool but not its thread: it searches on its own thread
        self._pid = os.getpid()
        for pragma in sqlite_schema.PRAGMAS:
            self._keyword_db.execute(pragma)
        self.keywords = KeywordSearch(self._keyword_db, keyword_budget)

    # --- schema

    def _open(self) -> None:
        with self._lock:
            if self.path != ":memory:":
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
            for pragma in sqlite_schema.PRAGMAS:
                self.db.execute(pragma)
            with self.db:
                self.db.execute("CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                info = dict(self.db.execute("SELECT key, value FROM info").fetchall())
            if info:
                self.dim = int(info["dim"])
                if info.get("model") != self.embedder.name:
                    raise StoreMismatch(
                        f"{self.path} holds vectors of {info.get('model')!r}, but the embedder is {self.embedder.name!r}; "
                        "set EMBEDDINGS back, or move the file aside and run `deputy ingest` again"
                    )
                if int(info.get("schema", 0)) > int(sqlite_schema.VERSION):
                    raise StoreMismatch(f"{self.path} has layout {info['schema']}, written by a newer Deputy (this one reads up "
                                        f"to {sqlite_schema.VERSION}); run the newer Deputy or restore a backup this one made")
                if info.get("schema") != sqlite_schema.VERSION:
                    with self.db:
                        sqlite_schema.upgrade(self.db)
                return
            self.dim = int(self.embedder.dim)
            with self.db:
                sqlite_schema.create(self.db, self.dim, self.embedder.name)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        with self._keyword_lock:
            if self._keyword_db is not self.db:
                self._keyword_db.close()
        with self._lock:
            self.db.close()

    # --- MemoryStore

    def add(self, items: Sequence[MemoryItem]) -> list[str]:
        """Store items (an item whose workspace and id exist replaces it); embeds before locking the file."""
        latest = list({(i.workspace, i.id): i for i in items}.values())
        if not latest:
            return []
        vectors = self.embedder.embed([i.text for i in latest])
        if vectors.shape != (len(latest), self.dim):
            raise StoreMismatch(f"the embedder returned {vectors.shape}, the store holds {self.dim} dimensions")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        bits = sign_bits(vectors)
        with self._lock:
            removed: list[tuple[str, int]] = []
            try:
                with writing(self.db):
                    for item, vector, code in zip(latest, vectors, bits):
                        removed += self._delete_rows(self._rowids_by_id(item.workspace, [item.id]))
                        self._insert(item, vector, code)
            except BaseException:
                self._bits.clear()
                raise
            self._bits.forget(removed)
        return [i.id for i in items]

    def _insert(self, item: MemoryItem, vector: np.ndarray, bits: np.ndarray) -> None:
        row = (
            item.workspace, item.id, item.project, item.source, item.author, float(item.created_at), item.trust,
            json.dumps(item.meta, ensure_ascii=False, sort_keys=True), item.text,
        )
        self.db.execute(
            "INSERT INTO items (workspace, id, project, source, author, created_at, trust, meta, text) VALUES (?,?,?,?,?,?,?,?,?)", row
        )
        rowid = self.db.last_insert_rowid()
        self.db.execute("INSERT INTO items_fts (rowid, text) VALUES (?, ?)", (rowid, item.text))
        blob = vector.tobytes()
        self.db.execute(
            "INSERT INTO vectors (rowid, workspace, embedding, project, source, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (rowid, item.workspace, blob, item.project, item.source, float(item.created_at)),
        )
        self.db.execute("INSERT INTO item_vectors (rowid, vector) VALUES (?, ?)", (rowid, blob))
        self.db.execute("INSERT INTO item_bits (rowid, bits) VALUES (?, ?)", (rowid, bits.tobytes()))
        self.db.execute(
            "INSERT INTO counts (workspace, items) VALUES (?, 1) ON CONFLICT (workspace) DO UPDATE SET items = items + 1",
            (item.workspace,),
        )

    def search(
        self, workspace: str, query: str, limit: int = 10, where: SearchFilter | None = None, mode: Mode = "hybrid",
    ) -> list[Hit]:
        if limit <= 0 or not query.strip() or _matches_nothing(where):
            return []
        depth = max(limit * 2, self.candidates)
        keyword: Future[Ranking] | None = None
        if mode in ("hybrid", "keyword") and self._pool is not None and os.getpid() == self._pid:
            # starts now, and runs while this thread embeds the query and scans the vectors
            keyword = self._pool.submit(self._keyword_rows, workspace, query, depth, where)
        rankings: list[tuple[Ranking, float]] = []
        if mode in ("hybrid", "vector"):
            vector = np.ascontiguousarray(self.embedder.embed([query])[0], dtype=np.float32)
            with self._lock:
                rankings.append((self._vector_rows(workspace, vector, depth, where), self.vector_weight))
        if mode in ("hybrid", "keyword"):
            rows = keyword.result() if keyword is not None else self._keyword_rows(workspace, query, depth, where)
            rankings.append((rows, self.keyword_weight))
        fused = rrf(rankings, self.rrf_k) if self.fusion == "rrf" else relative_score(rankings)
        best = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        with self._lock:
            items = self._items([row for row, _ in best])
        # the keyword side may skip its workspace check (a file of one workspace); this is the check
        return [Hit(item=items[row], score=score) for row, score in best if row in items and items[row].workspace == workspace]

    def vector_search(self, workspace: str, vector: np.ndarray, limit: int = 10, where: SearchFilter | None = None) -> list[Hit]:
        """Nearest items to an already-embedded query (no keyword side)."""
        if limit <= 0 or _matches_nothing(where):
            return []
        with self._lock:
            rows = self._vector_rows(workspace, np.ascontiguousarray(vector, dtype=np.float32), limit, where)
            items = self._items([r for r, _ in rows])
        return [Hit(item=items[r], score=similarity) for r, similarity in rows if r in items and items[r].workspace == workspace]

    def delete(self, workspace: str, ids: Sequence[str] | None = None, where: SearchFilter | None = None) -> int:
        """Delete by ids, by filter, or both (an item must match both); neither deletes nothing."""
        if _matches_nothing(where) or (ids is None and (where is None or not _conditions(where)[0])):
            return 0
        cond, args = _conditions(where)
        with self._lock:
            try:
                with writing(self.db):
                    if ids is not None:
                        rowids = self._rowids_by_id(workspace, ids, cond, args)
                    else:
                        rowids = [r for (r,) in self.db.execute(f"SELECT rowid FROM items WHERE workspace = ?{cond}", [workspace, *args])]
                    removed = self._delete_rows(rowids)
            except BaseException:
                self._bits.clear()
                raise
            self._bits.forget(removed)
            return len(removed)

    def count(self, workspace: str, where: SearchFilter | None = None) -> int:
        if _matches_nothing(where):
            return 0
        cond, args = _conditions(where)
        with self._lock:
            if not cond:
                return self._total(workspace)
            return int(self.db.execute(f"SELECT count(*) FROM items WHERE workspace = ?{cond}", [workspace, *args]).fetchone()[0])

    def workspaces(self) -> list[str]:
        with self._lock:
            return [w for (w,) in self.db.execute("SELECT workspace FROM counts WHERE items > 0 ORDER BY workspace")]

    def get(self, workspace: str, ids: Sequence[str]) -> list[MemoryItem]:
        with self._lock:
            rowids = self._rowids_by_id(workspace, ids)
            items = self._items(rowids)
        return [items[r] for r in rowids if r in items]

    def matching(self, workspace: str, test: Callable[[str], bool]) -> list[MemoryItem]:
        """Every item of the workspace whose text passes `test` (a full scan: for forgetting)."""
        with self._lock:
            rows = [r for r, text in self.db.execute("SELECT rowid, text FROM items WHERE workspace = ?", (workspace,)) if test(text)]
            items = self._items(rows)
        return [items[r] for r in rows if r in items]

    def compact(self) -> None:
        """Leave no copy of deleted text in the file: merge the keyword index (dropping what was
        deleted from it), rebuild the file without free pages, and empty the write-ahead log."""
        with self._lock, self._keyword_lock:
            with writing(self.db):
                self.db.execute("INSERT INTO items_fts (items_fts) VALUES ('optimize')")
            if self.path != ":memory:":
                self.db.execute("VACUUM")
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # --- internals (callers hold self._lock, except for the keyword side)

    def _total(self, workspace: str) -> int:
        row = self.db.execute("SELECT items FROM counts WHERE workspace = ?", (workspace,)).fetchone()
        return int(row[0]) if row else 0

    def _keyword_rows(self, workspace: str, query: str, k: int, where: SearchFilter | None) -> Ranking:
        with self._keyword_lock:
            only = self._only_workspace(self._keyword_db, workspace)
            return self.keywords.rows(workspace, query, k, where, only_workspace=only)

    @staticmethod
    def _only_workspace(db: Any, workspace: str) -> bool:
        """The file holds no other workspace's items (so rows need no workspace check in SQL; the
        hits are still checked before they are returned)."""
        return db.execute("SELECT 1 FROM counts WHERE workspace != ? AND items > 0 LIMIT 1", (workspace,)).fetchone() is None

    def _vector_rows(self, workspace: str, vector: np.ndarray, k: int, where: SearchFilter | None) -> Ranking:
        total = self._total(workspace)
        if not total:
            return []
        k = min(k, total)
        if total <= self.exact_below:
            cond, args = _conditions(where)
            sql = f"SELECT rowid, distance FROM vectors WHERE embedding MATCH ? AND k = ? AND workspace = ?{cond} ORDER BY distance"
            rows = [(r, 1.0 - d) for r, d in self.db.execute(sql, [vector.tobytes(), k, workspace, *args])]
            return [(r, sim) for r, sim in rows if sim >= self.min_similarity]
        # sign-bit scan in memory for candidates (Hamming distance), then exact cosine from the file
        candidates = self._bits.get(self.db, workspace, total).nearest(sign_bits(vector)[0], max(k, self.rerank_pool), where)
        if not candidates:
            return []
        cond, args = _conditions(where, "i.")
        marks = ",".join("?" * len(candidates))
        if not cond and self._only_workspace(self.db, workspace):
            rows = self.db.execute(f"SELECT rowid, vector FROM item_vectors WHERE rowid IN ({marks})", candidates).fetchall()
        else:
            # the index may lag another process's writes: the file has the last word on workspace and filter
            sql = (f"SELECT v.rowid, v.vector FROM item_vectors v JOIN items i ON i.rowid = v.rowid "
                   f"WHERE v.rowid IN ({marks}) AND +i.workspace = ?{cond}")
            rows = self.db.execute(sql, [*candidates, workspace, *args]).fetchall()
        if not rows:
            return []
        ids = np.fromiter((r for r, _ in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32).reshape(len(rows), self.dim)
        similarity = matrix @ vector
        order = np.argsort(-similarity, kind="stable")[:k]
        return [(int(ids[i]), float(similarity[i])) for i in order if similarity[i] >= self.min_similarity]

    def _rowids_by_id(self, workspace: str, ids: Sequence[str], cond: str = "", args: Sequence[Any] = ()) -> list[int]:
        out: list[int] = []
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):
            batch = unique[start:start + 500]
            marks = ",".join("?" * len(batch))
            sql = f"SELECT rowid FROM items WHERE workspace = ? AND id IN ({marks}){cond}"
            out += [r for (r,) in self.db.execute(sql, [workspace, *batch, *args])]
        return out

    def _delete_rows(self, rowids: Sequence[int]) -> list[tuple[str, int]]:
        deleted: list[tuple[str, int]] = []
        for rowid in rowids:
            row = self.db.execute("SELECT workspace, text FROM items WHERE rowid = ?", (rowid,)).fetchone()
            if row is None:
                continue
            workspace, text = row
            # external-content FTS5 forgets a row only when told its old text
            self.db.execute("INSERT INTO items_fts (items_fts, rowid, text) VALUES ('delete', ?, ?)", (rowid, text))
            self.db.execute("DELETE FROM vectors WHERE rowid = ?", (rowid,))
            self.db.execute("DELETE FROM item_vectors WHERE rowid = ?", (rowid,))
            self.db.execute("DELETE FROM item_bits WHERE rowid = ?", (rowid,))
            self.db.execute("DELETE FROM items WHERE rowid = ?", (rowid,))
            self.db.execute("UPDATE counts SET items = items - 1 WHERE workspace = ?", (workspace,))
            deleted.append((workspace, rowid))
        return deleted

    def _items(self, rowids: Sequence[int]) -> dict[int, MemoryItem]:
        out: dict[int, MemoryItem] = {}
        for start in range(0, len(rowids), 500):
            batch = list(rowids[start:start + 500])
            marks = ",".join("?" * len(batch))
            sql = (
                "SELECT rowid, workspace, id, project, source, author, created_at, trust, meta, text "
                f"FROM items WHERE rowid IN ({marks})"
            )
            for rowid, ws, item_id, project, source, author, created_at, trust, meta, text in self.db.execute(sql, batch):
                out[rowid] = MemoryItem(
                    id=item_id, workspace=ws, project=project, source=source, author=author,
                    created_at=created_at, trust=trust, meta=json.loads(meta), text=text,
                )
        return out
