"""Sign bits of one workspace's vectors, held in memory, for the embedded store's candidate scan.

One bit per dimension (set where the value is positive), 48 bytes per MiniLM vector: 100k items
take under 6 MB, and a Hamming scan over all of them is a few milliseconds of numpy. The scan
only proposes candidates; the store re-ranks them by exact cosine from the file and re-checks
the workspace and filter there, so an index that lags a write never returns a wrong item."""
from __future__ import annotations

from typing import Iterable

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
        self.codes = np.zeros((0, words), dtype=np.uint64)
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
        self.codes = np.concatenate([self.codes, np.frombuffer(blob, dtype=np.uint64).reshape(len(rows), self.words)])

    def remove(self, rowids: Iterable[int]) -> None:
        gone = np.fromiter(rowids, dtype=np.int64)
        if not len(gone) or not len(self.rowids):
            return
        keep = ~np.isin(self.rowids, gone)
        self.rowids, self.codes, self.created = self.rowids[keep], self.codes[keep], self.created[keep]
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
        query = np.ascontiguousarray(query_bits).view(np.uint64).reshape(1, self.words)
        distance = np.bitwise_count(self.codes ^ query).sum(axis=1, dtype=np.int32)
        mask = self._mask(where)
        rowids = self.rowids
        if mask is not None:
            distance, rowids = distance[mask], rowids[mask]
        if len(distance) > pool:
            chosen = np.argpartition(distance, pool - 1)[:pool]
            rowids = rowids[chosen]
        return rowids.tolist()
