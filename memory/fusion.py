"""Fusing ranked lists (vector side, keyword side) into one ranking of rows."""
from __future__ import annotations

from typing import Iterable

# (row, score) pairs, best first
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
