"""The embedded MemoryStore: one local SQLite file with sqlite-vec (vectors) and FTS5 (keywords).

Search runs both and fuses their rankings with reciprocal-rank fusion. WAL mode lets a reader
search while a worker writes; every add or delete is one transaction, so a crash mid-write leaves
the file as it was before that write. See docs/memory.md for the design and the measurements."""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import numpy as np

from memory.embeddings import Embedder
from memory.store import Hit, MemoryItem, SearchFilter

Mode = Literal["hybrid", "vector", "keyword"]
Fusion = Literal["rrf", "relative"]
WORD = re.compile(r"\w+", re.UNICODE)
STOP = frozenset(
    "a an the and or but if of to in on at for with by from is are was were be been am do does did what which who "
    "whom when where why how i me my we our you your it its this that these those there their they them he she his "
    "her about as into than then so not no can could should would will shall may might must have has had any some".split()
)
SCHEMA_VERSION = "2"


class StoreMismatch(RuntimeError):
    """The file was built with another embedding model or dimension."""


def keyword_query(text: str) -> str:
    """An FTS5 query matching any meaningful word of `text` (each quoted: no query syntax leaks in)."""
    words = [w.lower() for w in WORD.findall(text)]
    kept = [w for w in words if w not in STOP] or words
    unique = list(dict.fromkeys(kept))[:32]
    return " OR ".join(f'"{w}"' for w in unique)


def _matches_nothing(where: SearchFilter | None) -> bool:
    # an empty allow-list admits nothing
    return where is not None and (where.projects == [] or where.sources == [])


def _conditions(where: SearchFilter | None, prefix: str = "") -> tuple[str, list[Any]]:
    """SQL conditions (joined with AND, each led by AND) for a filter on columns of `prefix`."""
    sql: list[str] = []
    args: list[Any] = []
    if where is None:
        return "", args
    if where.projects:
        sql.append(f"{prefix}project IN ({','.join('?' * len(where.projects))})")
        args += where.projects
    if where.sources:
        sql.append(f"{prefix}source IN ({','.join('?' * len(where.sources))})")
        args += where.sources
    if where.since is not None:
        sql.append(f"{prefix}created_at >= ?")
        args.append(float(where.since))
    if where.until is not None:
        sql.append(f"{prefix}created_at < ?")
        args.append(float(where.until))
    return "".join(f" AND {c}" for c in sql), args


Ranking = list[tuple[int, float]]


def rrf(rankings: Iterable[tuple[Ranking, float]], k: float = 60.0) -> dict[int, float]:
    """Reciprocal-rank fusion: each ranking adds weight / (k + rank) to the rows it ranks."""
    fused: dict[int, float] = {}
    for rows, weight in rankings:
        for rank, (row, _) in enumerate(rows, start=1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    return fused


def relative_score(rankings: Iterable[tuple[Ranking, float]]) -> dict[int, float]:
    """Relative-score fusion: each ranking's scores divided by its best (so the best is 1), weighted
    and summed. Dividing by the best rather than min-max scaling keeps a close second close: with
    two keyword matches, min-max would score the second 0 whatever its text."""
    fused: dict[int, float] = {}
    for rows, weight in rankings:
        best = max((score for _, score in rows), default=0.0)
        if best <= 0:
            continue
        for row, score in rows:
            fused[row] = fused.get(row, 0.0) + weight * max(score, 0.0) / best
    return fused


class SqliteStore:
    """MemoryStore in one SQLite file. Give it the file path and the Embedder (":memory:" for tests)."""

    def __init__(
        self, path: Path | str, embedder: Embedder, *, vector_weight: float = 1.0, keyword_weight: float = 3.0,
        exact_below: int = 20_000, candidates: int = 50, rrf_k: float = 60.0, busy_timeout_ms: int = 15_000,
        min_similarity: float = -1.0, fusion: Fusion = "relative",
    ) -> None:
        import apsw
        import sqlite_vec

        self.path = str(path)
        self.embedder = embedder
        self.vector_weight = vector_weight
        self.keyword_weight = keyword_weight
        # up to this many items in a workspace, vector search is exact; past it, a binary-quantised
        # scan picks candidates that are re-ranked with the full vectors (docs/memory.md)
        self.exact_below = exact_below
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

    # --- schema

    def _open(self) -> None:
        with self._lock:
            if self.path != ":memory:":
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
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
                return
            self.dim = int(self.embedder.dim)
            with self.db:
                self._create(self.dim)

    def _create(self, dim: int) -> None:
        self.db.execute(
            """
            CREATE TABLE items (
                rowid INTEGER PRIMARY KEY, workspace TEXT NOT NULL, id TEXT NOT NULL, project TEXT NOT NULL,
                source TEXT NOT NULL, author TEXT NOT NULL, created_at REAL NOT NULL, trust TEXT NOT NULL,
                meta TEXT NOT NULL, text TEXT NOT NULL, UNIQUE (workspace, id));
            CREATE INDEX items_project ON items (workspace, project);
            CREATE INDEX items_source ON items (workspace, source);
            CREATE INDEX items_time ON items (workspace, created_at);
            CREATE TABLE counts (workspace TEXT PRIMARY KEY, items INTEGER NOT NULL);
            -- full vectors by rowid for the re-rank: point reads from vec0 cost ~0.5 ms each
            CREATE TABLE item_vectors (rowid INTEGER PRIMARY KEY, vector BLOB NOT NULL);
            CREATE VIRTUAL TABLE items_fts USING fts5(
                text, content='items', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2');
            """
        )
        meta = "project text, source text, created_at float"
        self.db.execute(f"CREATE VIRTUAL TABLE vectors USING vec0(workspace text partition key, embedding float[{dim}] distance_metric=cosine, {meta})")
        self.db.execute(f"CREATE VIRTUAL TABLE vector_bits USING vec0(workspace text partition key, embedding bit[{dim}], {meta})")
        self.db.executemany(
            "INSERT INTO info (key, value) VALUES (?, ?)",
            [("dim", str(dim)), ("model", self.embedder.name), ("schema", SCHEMA_VERSION)],
        )

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> "SqliteStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        with self._lock, self.db:
            for item, vector in zip(latest, vectors):
                self._delete_rows(self._rowids_by_id(item.workspace, [item.id]))
                self._insert(item, vector)
        return [i.id for i in items]

    def _insert(self, item: MemoryItem, vector: np.ndarray) -> None:
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
        meta = (item.project, item.source, float(item.created_at))
        self.db.execute(
            "INSERT INTO vectors (rowid, workspace, embedding, project, source, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (rowid, item.workspace, blob, *meta),
        )
        self.db.execute("INSERT INTO item_vectors (rowid, vector) VALUES (?, ?)", (rowid, blob))
        self.db.execute(
            "INSERT INTO vector_bits (rowid, workspace, embedding, project, source, created_at) "
            "VALUES (?, ?, vec_quantize_binary(?), ?, ?, ?)",
            (rowid, item.workspace, blob, *meta),
        )
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
        rankings: list[tuple[Ranking, float]] = []
        if mode in ("hybrid", "vector"):
            vector = np.ascontiguousarray(self.embedder.embed([query])[0], dtype=np.float32)
            with self._lock:
                rankings.append((self._vector_rows(workspace, vector, depth, where), self.vector_weight))
        if mode in ("hybrid", "keyword"):
            with self._lock:
                rankings.append((self._keyword_rows(workspace, query, depth, where), self.keyword_weight))
        fused = rrf(rankings, self.rrf_k) if self.fusion == "rrf" else relative_score(rankings)
        best = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        with self._lock:
            items = self._items([row for row, _ in best])
        return [Hit(item=items[row], score=score) for row, score in best if row in items]

    def vector_search(self, workspace: str, vector: np.ndarray, limit: int = 10, where: SearchFilter | None = None) -> list[Hit]:
        """Nearest items to an already-embedded query (no keyword side)."""
        if limit <= 0 or _matches_nothing(where):
            return []
        with self._lock:
            rows = self._vector_rows(workspace, np.ascontiguousarray(vector, dtype=np.float32), limit, where)
            items = self._items([r for r, _ in rows])
        return [Hit(item=items[r], score=similarity) for r, similarity in rows if r in items]

    def delete(self, workspace: str, ids: Sequence[str] | None = None, where: SearchFilter | None = None) -> int:
        """Delete by ids, by filter, or both (an item must match both); neither deletes nothing."""
        if _matches_nothing(where) or (ids is None and (where is None or not _conditions(where)[0])):
            return 0
        cond, args = _conditions(where)
        with self._lock, self.db:
            if ids is not None:
                rowids = [r for r in self._rowids_by_id(workspace, ids, cond, args)]
            else:
                rowids = [r for (r,) in self.db.execute(f"SELECT rowid FROM items WHERE workspace = ?{cond}", [workspace, *args])]
            return self._delete_rows(rowids)

    def count(self, workspace: str, where: SearchFilter | None = None) -> int:
        if _matches_nothing(where):
            return 0
        cond, args = _conditions(where)
        with self._lock:
            if not cond:
                row = self.db.execute("SELECT items FROM counts WHERE workspace = ?", (workspace,)).fetchone()
                return int(row[0]) if row else 0
            return int(self.db.execute(f"SELECT count(*) FROM items WHERE workspace = ?{cond}", [workspace, *args]).fetchone()[0])

    def workspaces(self) -> list[str]:
        with self._lock:
            return [w for (w,) in self.db.execute("SELECT workspace FROM counts WHERE items > 0 ORDER BY workspace")]

    def get(self, workspace: str, ids: Sequence[str]) -> list[MemoryItem]:
        with self._lock:
            rowids = self._rowids_by_id(workspace, ids)
            items = self._items(rowids)
        return [items[r] for r in rowids if r in items]

    # --- internals (callers hold self._lock)

    def _vector_rows(self, workspace: str, vector: np.ndarray, k: int, where: SearchFilter | None) -> Ranking:
        cond, args = _conditions(where)
        total = self.db.execute("SELECT items FROM counts WHERE workspace = ?", (workspace,)).fetchone()
        if not total or not total[0]:
            return []
        k = min(k, int(total[0]))
        if total[0] <= self.exact_below:
            sql = f"SELECT rowid, distance FROM vectors WHERE embedding MATCH ? AND k = ? AND workspace = ?{cond} ORDER BY distance"
            rows = [(r, 1.0 - d) for r, d in self.db.execute(sql, [vector.tobytes(), k, workspace, *args])]
            return [(r, sim) for r, sim in rows if sim >= self.min_similarity]
        # binary-quantised scan for candidates (sign bits; Hamming distance), then exact cosine
        pool = min(int(total[0]), max(k * 2, 100))
        sql = f"SELECT rowid FROM vector_bits WHERE embedding MATCH vec_quantize_binary(?) AND k = ? AND workspace = ?{cond}"
        candidates = [r for (r,) in self.db.execute(sql, [vector.tobytes(), pool, workspace, *args])]
        if not candidates:
            return []
        marks = ",".join("?" * len(candidates))
        rows = self.db.execute(f"SELECT rowid, vector FROM item_vectors WHERE rowid IN ({marks})", candidates).fetchall()
        ids = np.fromiter((r for r, _ in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32).reshape(len(rows), self.dim)
        similarity = matrix @ vector
        order = np.argsort(-similarity, kind="stable")[:k]
        return [(int(ids[i]), float(similarity[i])) for i in order if similarity[i] >= self.min_similarity]

    def _keyword_rows(self, workspace: str, query: str, k: int, where: SearchFilter | None) -> Ranking:
        match = keyword_query(query)
        if not match:
            return []
        cond, args = _conditions(where, "i.")
        sql = (
            "SELECT f.rowid, bm25(items_fts) AS rank FROM items_fts f JOIN items i ON i.rowid = f.rowid "
            f"WHERE items_fts MATCH ? AND i.workspace = ?{cond} ORDER BY rank LIMIT ?"
        )
        # bm25() is lower for better matches
        return [(r, -score) for r, score in self.db.execute(sql, [match, workspace, *args, k])]

    def _rowids_by_id(self, workspace: str, ids: Sequence[str], cond: str = "", args: Sequence[Any] = ()) -> list[int]:
        out: list[int] = []
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):
            batch = unique[start:start + 500]
            marks = ",".join("?" * len(batch))
            sql = f"SELECT rowid FROM items WHERE workspace = ? AND id IN ({marks}){cond}"
            out += [r for (r,) in self.db.execute(sql, [workspace, *batch, *args])]
        return out

    def _delete_rows(self, rowids: Sequence[int]) -> int:
        deleted = 0
        for rowid in rowids:
            row = self.db.execute("SELECT workspace, text FROM items WHERE rowid = ?", (rowid,)).fetchone()
            if row is None:
                continue
            workspace, text = row
            # external-content FTS5 forgets a row only when told its old text
            self.db.execute("INSERT INTO items_fts (items_fts, rowid, text) VALUES ('delete', ?, ?)", (rowid, text))
            self.db.execute("DELETE FROM vectors WHERE rowid = ?", (rowid,))
            self.db.execute("DELETE FROM vector_bits WHERE rowid = ?", (rowid,))
            self.db.execute("DELETE FROM item_vectors WHERE rowid = ?", (rowid,))
            self.db.execute("DELETE FROM items WHERE rowid = ?", (rowid,))
            self.db.execute("UPDATE counts SET items = items - 1 WHERE workspace = ?", (workspace,))
            deleted += 1
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
