"""The embedded store's file layout: tables, connection settings, and upgrades of older files."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from memory.bit_index import sign_bits

VERSION = "3"
# read-mostly file: map it (reads skip a copy), keep hot pages and sort scratch in memory
PRAGMAS = ("PRAGMA mmap_size=268435456", "PRAGMA cache_size=-32000", "PRAGMA temp_store=MEMORY")


def create(db: Any, dim: int, model: str) -> None:
    db.execute(
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
        -- sign bits, loaded into memory for the candidate scan of large workspaces
        CREATE TABLE item_bits (rowid INTEGER PRIMARY KEY, bits BLOB NOT NULL);
        CREATE VIRTUAL TABLE items_fts USING fts5(
            text, content='items', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2');
        """
    )
    meta = "project text, source text, created_at float"
    db.execute(f"CREATE VIRTUAL TABLE vectors USING vec0(workspace text partition key, embedding float[{dim}] distance_metric=cosine, {meta})")
    db.executemany("INSERT INTO info (key, value) VALUES (?, ?)", [("dim", str(dim)), ("model", model), ("schema", VERSION)])


def upgrade(db: Any) -> None:
    """Bring a file of an older layout up to this one (the caller holds a transaction)."""
    # layout 1 read float vectors from vec0 only; layout 2 kept sign bits in a vec0 table, scanned
    # in SQL (25-35 ms at 100k items)
    db.execute("CREATE TABLE IF NOT EXISTS item_vectors (rowid INTEGER PRIMARY KEY, vector BLOB NOT NULL)")
    db.execute("INSERT INTO item_vectors (rowid, vector) SELECT rowid, embedding FROM vectors "
               "WHERE rowid NOT IN (SELECT rowid FROM item_vectors)")
    db.execute("CREATE TABLE IF NOT EXISTS item_bits (rowid INTEGER PRIMARY KEY, bits BLOB NOT NULL)")
    rows = db.execute("SELECT rowid, vector FROM item_vectors WHERE rowid NOT IN (SELECT rowid FROM item_bits)").fetchall()
    for rowid, blob in rows:
        db.execute("INSERT INTO item_bits (rowid, bits) VALUES (?, ?)", (rowid, sign_bits(np.frombuffer(blob, dtype=np.float32))[0].tobytes()))
    db.execute("DROP TABLE IF EXISTS vector_bits")
    db.execute("INSERT OR REPLACE INTO info (key, value) VALUES ('schema', ?)", (VERSION,))


@contextmanager
def writing(db: Any) -> Iterator[None]:
    """A write transaction that takes the write lock up front (BEGIN IMMEDIATE). A deferred one that
    read first fails at once with "database is locked" when another process wrote in between (WAL
    cannot upgrade a stale snapshot, and the busy timeout does not apply); this one waits instead."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
