"""The trained intent model and the watcher that retrains it when the operator's file changes (or reads
it back from the store when it was trained before)."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
from scipy import sparse

from agents.intents.cascade import Cascade, CascadeRule
from agents.intents.classifier import IntentClassifier, Params, Ranking
from agents.intents.features import TWO_MODELS, IntentFeatures, JoinedFeatures, MemoEmbedder
from agents.intents.registry import IntentRegistry, RegistryError, load_registry
from agents.intents.store import ClassifierStore, Saved, classifier_key
from memory.embedder import Embedder

log = logging.getLogger("deputy.intents")


class Ranker(Protocol):
    def rank(self, text: str, top: int = 3) -> Ranking: ...


@dataclass(frozen=True)
class TrainedIntents:
    registry: IntentRegistry
    classifier: Ranker
    digest: str
    # seconds to train, or to read back a saved classifier (`read_back`)
    train_s: float
    read_back: bool = False
    # where it is saved (None: nowhere could be written, or no store)
    path: Path | None = None


class IntentModels:
    """The sentence models intents are read with: MiniLM (`small`) and, where wanted, all-mpnet-base-v2
    beside it (`large`), each with a memo of the example phrases it has embedded."""

    def __init__(self, small: Embedder | None, large: Embedder | None = None) -> None:
        self.small = IntentFeatures(small) if small is not None else None
        self.large = IntentFeatures(large) if small is not None and large is not None else None
        self.memos = [MemoEmbedder(f) for f in (self.small, self.large) if f is not None]
        self.name = " + ".join(f.name for f in (self.small, self.large) if f is not None) or "TF-IDF only"
        # phrases and vectors of the classifier read back, until a retrain wants them
        self._known: tuple[list[str], list[str], dict[str, IntentClassifier]] | None = None

    def params(self) -> tuple[Params, Params]:
        """The small classifier's and the large one's (classifier_params)."""
        return Params(), TWO_MODELS

    def key(self, registry: IntentRegistry) -> str:
        small, large = self.params()
        identities = [f.fingerprint for f in (self.small, self.large) if f is not None]
        return classifier_key(registry.digest(), identities, {"small": small, "large": large})

    def train(self, registry: IntentRegistry, rule: CascadeRule) -> tuple[Ranker, dict[str, IntentClassifier]]:
        texts, labels = registry.training_data()
        examples = [(t, label) for t, label in zip(texts, labels) if label in registry]
        negatives = [t for t, label in zip(texts, labels) if label not in registry]
        phrases, names = [t for t, _ in examples], [label for _, label in examples]
        small_params, large_params = self.params()
        self._seed()
        small = IntentClassifier(self.memos[0] if self.memos else None, small_params).fit(phrases, names, negatives)
        parts = {"small": small}
        if len(self.memos) == 2:
            parts["large"] = IntentClassifier(JoinedFeatures(self.memos), large_params).fit(phrases, names, negatives)
        return self.ranker(parts, rule), parts

    def ranker(self, parts: dict[str, IntentClassifier], rule: CascadeRule) -> Ranker:
        if self.small is None:
            return parts["small"]
        return Cascade(parts["small"], self.small, parts.get("large"), self.large if "large" in parts else None, rule)

    def restore(self, saved: Saved, rule: CascadeRule) -> Ranker:
        """The saved classifier; its example vectors seed the memos when a retrain comes (it then embeds only new phrases)."""
        parts = {}
        for name in ("small", "large")[:max(1, len(self.memos))]:
            arrays = {k.split(".", 1)[1]: v for k, v in saved.arrays.items() if k.startswith(f"{name}.")}
            parts[name] = IntentClassifier.from_state(arrays, saved.meta[name])
        self._known = (saved.meta["phrases"], saved.meta["negatives"], parts)
        return self.ranker(parts, rule)

    def _seed(self) -> None:
        if self._known is None:
            return
        phrases, negatives, parts = self._known
        self._known = None
        width = self.memos[0].dim if self.memos else 0
        for memo, part in zip(self.memos, ("small", "large")):
            examples, known_negatives = parts[part].vectors
            for texts, rows in ((phrases, examples), (negatives, known_negatives)):
                if rows is None or sparse.issparse(rows) or len(texts) != rows.shape[0]:
                    continue
                memo.seed(texts, rows if part == "small" else np.asarray(rows[:, width:]) * np.float32(np.sqrt(2)))


def state_of(parts: dict[str, IntentClassifier], registry: IntentRegistry) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays: dict[str, np.ndarray] = {}
    texts, labels = registry.training_data()
    meta: dict[str, Any] = {"phrases": [t for t, label in zip(texts, labels) if label in registry],
                            "negatives": [t for t, label in zip(texts, labels) if label not in registry]}
    for name, part in parts.items():
        part_arrays, meta[name] = part.state()
        arrays.update({f"{name}.{k}": v for k, v in part_arrays.items()})
    return arrays, meta


class IntentWatcher:
    """The current trained intents. Re-reads the operator's file when it changes (checked at most every
    `check_every_s`) and retrains, or reads back what `store` saved for the same intents, models and code;
    a broken file keeps the last good model and reports why."""

    def __init__(self, operator_file: Path | None, embedder: Embedder | None, check_every_s: float = 2.0,
                 extra: Embedder | None = None, clock: Callable[[], float] = time.monotonic,
                 store: ClassifierStore | None = None, rule: CascadeRule = CascadeRule()) -> None:
        self.operator_file = operator_file
        self.models = IntentModels(embedder, extra)
        self.store = store
        self.rule = rule
        self.check_every_s = check_every_s
        self.clock = clock
        self.last_error = ""
        self._trained: TrainedIntents | None = None
        self._stamp: tuple[float, int] | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def current(self) -> TrainedIntents:
        trained = self._current(train=True)
        assert trained is not None
        return trained

    def read_back(self) -> bool:
        """Take the saved classifier for the current intents if there is one, without training (a worker
        pool's parent does, so its workers share it; training is left to them). False when none is saved."""
        return self._current(train=False) is not None

    def _current(self, train: bool) -> TrainedIntents | None:
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
                obtained = self._obtain(registry, train)
                if obtained is None:
                    self._checked_at = 0.0  # nothing taken: the next call looks again
                    return None
                self._trained = obtained
            self._stamp = stamp
            return self._trained

    def _obtain(self, registry: IntentRegistry, train: bool = True) -> TrainedIntents | None:
        if self.store is None:
            return self._train(registry, None) if train else None
        key = self.models.key(registry)
        if not train:
            return self._read(registry, key)
        with self.store.building(key):
            return self._read(registry, key) or self._train(registry, key)

    def _read(self, registry: IntentRegistry, key: str) -> TrainedIntents | None:
        assert self.store is not None
        started = time.perf_counter()
        saved = self.store.load(key)
        if saved is None:
            return None
        try:
            ranker = self.models.restore(saved, self.rule)
        except (ValueError, KeyError, TypeError, IndexError) as err:
            log.warning("the saved intent classifier in %s does not fit (%s); training it again", saved.path, err)
            self.store.discard(saved.path)
            return None
        read_s = time.perf_counter() - started
        log.info("intents read back: %d intents in %.2f s from %s", len(registry), read_s, saved.path)
        return TrainedIntents(registry, ranker, registry.digest(), read_s, read_back=True, path=saved.path)

    def _train(self, registry: IntentRegistry, key: str | None) -> TrainedIntents:
        started = time.perf_counter()
        ranker, parts = self.models.train(registry, self.rule)
        train_s = time.perf_counter() - started
        log.info("intents trained: %d intents in %.2f s", len(registry), train_s)
        path = self.store.save(key, *state_of(parts, registry)) if self.store is not None and key is not None else None
        return TrainedIntents(registry, ranker, registry.digest(), train_s, path=path)

    def _file_stamp(self) -> tuple[float, int] | None:
        if self.operator_file is None:
            return None
        try:
            stat = self.operator_file.stat()
        except OSError:
            return None
        return stat.st_mtime, stat.st_size
