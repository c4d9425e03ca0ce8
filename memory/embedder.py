"""The Embedder protocol every store, cache and classifier takes, and the normalisation its rows share.

Its own module so the embedders (local, OpenAI-compatible, cached) and build_embedder depend on it, never on each other."""
from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 rows of shape (len(texts), dim)."""

    dim: int
    # part of every cache key: vectors of different models never mix
    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def normalize(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)
