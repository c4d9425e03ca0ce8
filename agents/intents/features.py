"""What the intent classifier sees of a text: each sentence model's layers (IntentFeatures), side by
side when there are two, and the memo that embeds each example phrase once across retrains."""
from __future__ import annotations

import threading
import time
from typing import Sequence

import numpy as np

from agents.intents.cascade import join
from agents.intents.classifier import Params
from agents.intents.store import model_identity
from memory.embedder import Embedder


# the classifier reads the last four layers of each sentence model, not only the last: on the dev
# splits this took CLINC150 in-scope accuracy from 96.00 to 96.40 at the same OOS recall, and HWU64
# micro-F1 from .920 to .922 (docs/intents.md). One forward pass either way.
INTENT_LAYERS = (-4, -3, -2, -1)


class IntentFeatures:
    """What the classifier sees of a text: several layers of each local model where it offers them
    (`embed_layers`), else the embedder's own vector (an OpenAI-compatible embedder, say).

    With a second model (`extra`, all-mpnet-base-v2) the two blocks stand side by side, each of unit
    length, so a dot product is the mean of the two models' similarities: two models trained on
    different data err on different texts (HWU64 micro-F1 .922 -> .930, docs/intents.md)."""

    def __init__(self, inner: Embedder, layers: Sequence[int] = INTENT_LAYERS, extra: Embedder | None = None) -> None:
        self.layers = tuple(layers)
        self.models = [m for m in (inner, extra) if m is not None]
        self.dim = sum(self._dim(m) for m in self.models)
        self.name = " + ".join(self._name(m) for m in self.models)

    def _dim(self, model: Embedder) -> int:
        return model.dim * len(self.layers) if hasattr(model, "embed_layers") else model.dim

    def _name(self, model: Embedder) -> str:
        if hasattr(model, "embed_layers"):
            return f"{model.name} (layers {','.join(map(str, self.layers))})"
        return model.name

    @property
    def fingerprint(self) -> str:
        """What these features' vectors depend on (agents/intents/store.py keys saved classifiers by it)."""
        return ";".join(f"{model_identity(m)}@{self.layers if hasattr(m, 'embed_layers') else 'vector'}" for m in self.models)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        blocks = [m.embed_layers(texts, self.layers) if hasattr(m, "embed_layers") else m.embed(texts)  # type: ignore[attr-defined]
                  for m in self.models]
        return join(blocks)


TWO_MODELS = Params(tfidf_weight=1.5)


def classifier_params(features: IntentFeatures | None) -> Params:
    """With two sentence models the embedding expert is the stronger one, so the TF-IDF expert's vote
    counts less: weight 1.5, not 2.5 (HWU64 folds 1-8 .9306 against .9268; docs/intents.md)."""
    if features is not None and len(features.models) > 1:
        return TWO_MODELS
    return Params()



class MemoEmbedder:
    """Embeds each distinct text once: a retrain after one new intent only embeds its examples. For
    training only: the messages classified are not kept (each is new, and would only fill memory)."""

    def __init__(self, inner: Embedder, limit: int = 50_000) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.name = inner.name
        self.limit = limit
        self.seconds = 0.0
        self._memo: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            started = time.perf_counter()
            rows = self.inner.embed(missing)
            with self._lock:
                if len(self._memo) + len(missing) > self.limit:
                    self._memo.clear()
                self._memo.update(zip(missing, rows))
                self.seconds += time.perf_counter() - started
        with self._lock:
            return np.stack([self._memo[t] if t in self._memo else self.inner.embed([t])[0] for t in texts])

    def seed(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Vectors known already (a saved classifier's examples), so a retrain does not embed them again."""
        with self._lock:
            if len(self._memo) + len(texts) <= self.limit:
                self._memo.update(zip(texts, vectors))


class JoinedFeatures:
    """The large classifier's features while training: both models' memoised blocks, side by side."""

    def __init__(self, blocks: list[MemoEmbedder]) -> None:
        self.blocks = blocks
        self.dim = sum(b.dim for b in blocks)
        self.name = " + ".join(b.name for b in blocks)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return join([b.embed(texts) for b in self.blocks])
