"""Sign bits of one workspace's vectors, held in memory, for the embedded store's candidate scan.

One bit per dimension (set where the value is positive), 48 bytes per MiniLM vector: 100k items
take under 6 MB, and a Hamming scan over all of them is a few milliseconds of numpy. The scan
only proposes candidates; the store re-ranks them by exact cosine from the file and re-checks
the workspace and filter there, so an index that lags a write never returns a wrong item."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from memory.store import SearchFilter

# one row as loaded from the file: rowid, project, source, created_at, sign bits
BitRow = tuple[int, str, str, float, bytes]


def sign_bits(vectors: np.ndarray) -> np.ndarray:
    """Rows of packed sign bits, padded to whole 64-bit words (uint8, one row per vector)."""
    matrix = np.atleast_2d(np.asarray(vectors))
    packed = np.packbits(matrix > 0, axis=1)
    pad = (-packed.shape[1]) % 8
    return np.pad(packed, ((0, 0), (0, pad))) if pad else packed


class BitIndex:
    """The sign bits and filterable fields of one workspace's items, by rowid."""

    def __init__(self, words: int) -> None:
        self.words = words
        self.rowids = np.zeros(0, dtype=np.int64)
        # one row per 64-bit word, one column per item: the scan runs over long contiguous rows
        self.codes = np.zeros((words, 0), dtype=np.uint64)
        self.created = np.zeros(0, dtype=np.float64)
        self.project = np.zeros(0, dtype=np.int32)
        self.source = np.zeros(0, dtype=np.int32)
        # projects and sources as small integers, so filters are integer comparisons
        self._projects: dict[str, int] = {}
        self._sources: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.rowids)

    @property
    def last_rowid(self) -> int:
        return int(self.rowids.max()) if len(self.rowids) else 0

    def extend(self, rows: Iterable[BitRow]) -> None:
        rows = list(rows)
        if not rows:
            return
        code = lambda names, name: names.setdefault(name, len(names))  # noqa: E731
        blob = b"".join(bits for *_, bits in rows)
        self.rowids = np.concatenate([self.rowids, np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))])
        self.project = np.concatenate([self.project, np.fromiter((code(self._projects, r[1]) for r in rows), dtype=np.int32, count=len(rows))])
        self.source = np.concatenate([self.source, np.fromiter((code(self._sources, r[2]) for r in rows), dtype=np.int32, count=len(rows))])
        self.created = np.concatenate([self.created, np.fromiter((r[3] for r in rows), dtype=np.float64, count=len(rows))])
        self.codes = np.concatenate([self.codes, np.frombuffer(blob, dtype=np.uint64).reshape(len(rows), self.words).T], axis=1)

    def remove(self, rowids: Iterable[int]) -> None:
        gone = np.fromiter(rowids, dtype=np.int64)
        if not len(gone) or not len(self.rowids):
            return
        keep = ~np.isin(self.rowids, gone)
        self.rowids, self.codes, self.created = self.rowids[keep], np.ascontiguousarray(self.codes[:, keep]), self.created[keep]
        self.project, self.source = self.project[keep], self.source[keep]

    def _mask(self, where: SearchFilter | None) -> np.ndarray | None:
        if where is None:
            return None
        mask = np.ones(len(self.rowids), dtype=bool)
        if where.projects is not None:
            wanted = [self._projects[p] for p in where.projects if p in self._projects]
            mask &= np.isin(self.project, wanted)
        if where.sources is not None:
            wanted = [self._sources[s] for s in where.sources if s in self._sources]
            mask &= np.isin(self.source, wanted)
        if where.since is not None:
            mask &= self.created >= float(where.since)
        if where.until is not None:
            mask &= self.created < float(where.until)
        return mask

    def nearest(self, query_bits: np.ndarray, pool: int, where: SearchFilter | None = None) -> list[int]:
        """Rowids of up to `pool` items closest in Hamming distance to `query_bits` (a sign_bits row)."""
        if not len(self.rowids) or pool <= 0:
            return []
        query = np.ascontiguousarray(query_bits).view(np.uint64)
        distance = np.zeros(len(self.rowids), dtype=np.uint16)
        word = np.empty(len(self.rowids), dtype=np.uint64)
        ones = np.empty(len(self.rowids), dtype=np.uint8)
        for row, bits in zip(self.codes, query):
            np.bitwise_xor(row, bits, out=word)
            np.bitwise_count(word, out=ones)
            distance += ones
        rowids = self.rowids
        mask = self._mask(where)
        if mask is not None:
            distance, rowids = distance[mask], rowids[mask]
        if len(distance) <= pool:
            return rowids.tolist()
        # distances are small integers: a histogram finds the cut faster than a partition
        cut = int(np.searchsorted(np.cumsum(np.bincount(distance)), pool))
        closer = np.flatnonzero(distance < cut)
        tied = np.flatnonzero(distance == cut)[:pool - len(closer)]
        return rowids[np.concatenate([closer, tied])].tolist()


ROWS = "SELECT i.rowid, i.project, i.source, i.created_at, b.bits FROM items i JOIN item_bits b ON b.rowid = i.rowid"


class BitIndexes:
    """One connection's BitIndex per workspace, loaded on first use and kept up with every commit.

    The connection's own deletes are applied as they commit (`forget`); new rows, from anywhere,
    have higher rowids and are read on the next search. A row count that disagrees after another
    process wrote means it deleted rows: that workspace is loaded again. (A rowid another process
    freed and reused may keep its old bits: the re-rank reads the real vector and re-checks the
    filter, so only that row's chance of being a candidate can be off.)"""

    def __init__(self, dim: int) -> None:
        self.words = len(sign_bits(np.zeros(dim))[0]) // 8
        self._by_workspace: dict[str, BitIndex] = {}
        self._data_version = -1

    def get(self, db: Any, workspace: str, total: int) -> BitIndex:
        version = int(db.execute("PRAGMA data_version").fetchone()[0])
        changed_elsewhere = version != self._data_version
        self._data_version = version
        index = self._by_workspace.get(workspace)
        if index is not None:
            index.extend(self._rows(db, workspace, after=index.last_rowid))
            if not changed_elsewhere or len(index) == total:
                return index
        index = self._by_workspace[workspace] = BitIndex(self.words)
        index.extend(self._rows(db, workspace))
        return index

    @staticmethod
    def _rows(db: Any, workspace: str, after: int = 0) -> list[BitRow]:
        # "+": by rowid, not by a workspace index (that reads every row of the workspace to find new ones)
        return db.execute(f"{ROWS} WHERE +i.workspace = ? AND i.rowid > ? ORDER BY i.rowid", (workspace, after)).fetchall()

    def forget(self, removed: Iterable[tuple[str, int]]) -> None:
        for workspace, rowid in removed:
            index = self._by_workspace.get(workspace)
            if index is not None:
                index.remove([rowid])

    def clear(self) -> None:
        self._by_workspace.clear()
