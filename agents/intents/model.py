"""The trained intent model and the watcher that retrains it when the operator's file changes."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from agents.intents.classifier import IntentClassifier, Params
from agents.intents.registry import IntentRegistry, RegistryError, load_registry
from memory.embedder import Embedder

log = logging.getLogger("deputy.intents")


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

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        blocks = [m.embed_layers(texts, self.layers) if hasattr(m, "embed_layers") else m.embed(texts)  # type: ignore[attr-defined]
                  for m in self.models]
        if len(blocks) == 1:
            return blocks[0]
        return (np.hstack(blocks) / np.float32(np.sqrt(len(blocks)))).astype(np.float32)


def classifier_params(features: IntentFeatures | None) -> Params:
    """With two sentence models the embedding expert is the stronger one, so the TF-IDF expert's vote
    counts less: weight 1.5, not 2.5 (HWU64 folds 1-8 .9306 against .9268; docs/intents.md)."""
    if features is not None and len(features.models) > 1:
        return Params(tfidf_weight=1.5)
    return Params()


class MemoEmbedder:
    """Embeds each distinct text once: a retrain after one new intent only embeds its examples."""

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


@dataclass(frozen=True)
class TrainedIntents:
    registry: IntentRegistry
    classifier: IntentClassifier
    digest: str
    train_s: float


def train(registry: IntentRegistry, embedder: Embedder | None, params: Params | None = None) -> TrainedIntents:
    started = time.perf_counter()
    texts, labels = registry.training_data()
    examples = [(t, label) for t, label in zip(texts, labels) if label in registry]
    negatives = [t for t, label in zip(texts, labels) if label not in registry]
    classifier = IntentClassifier(embedder, params).fit([t for t, _ in examples], [label for _, label in examples], negatives)
    return TrainedIntents(registry, classifier, registry.digest(), time.perf_counter() - started)


class IntentWatcher:
    """The current trained intents. Re-reads the operator's file when it changes (checked at most every
    `check_every_s`) and retrains; a broken file keeps the last good model and reports why."""

    def __init__(self, operator_file: Path | None, embedder: Embedder | None, check_every_s: float = 2.0,
                 extra: Embedder | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.operator_file = operator_file
        features = IntentFeatures(embedder, extra=extra) if embedder is not None else None
        self.embedder = MemoEmbedder(features) if features is not None else None
        self.params = classifier_params(features)
        self.check_every_s = check_every_s
        self.clock = clock
        self.last_error = ""
        self._trained: TrainedIntents | None = None
        self._stamp: tuple[float, int] | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def current(self) -> TrainedIntents:
        with self._lock:
            now = self.clock()
            if self._trained is not None and now - self._checked_at < self.check_every_s:
                return self._trained
            self._checked_at = now
            stamp = self._file_stamp()
            if self._trained is not None and stamp == self._stamp:
                return self._trained
            try:
                registry = load_registry(self.operator_file)
            except RegistryError as err:
                self.last_error = str(err)
                log.error("intents file not loaded, keeping the previous intents: %s", err)
                if self._trained is None:
                    registry = load_registry(None)
                else:
                    self._stamp = stamp
                    return self._trained
            else:
                self.last_error = ""
            if self._trained is None or registry.digest() != self._trained.digest:
                self._trained = train(registry, self.embedder, self.params)
                log.info("intents trained: %d intents in %.2f s", len(registry), self._trained.train_s)
            self._stamp = stamp
            return self._trained

    def _file_stamp(self) -> tuple[float, int] | None:
        if self.operator_file is None:
            return None
        try:
            stat = self.operator_file.stat()
        except OSError:
            return None
        return stat.st_mtime, stat.st_size
