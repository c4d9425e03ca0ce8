"""The local intent classifier: sentence embeddings + TF-IDF, with a confidence that knows when it
does not know.

Two linear experts vote in log space: logistic regression on MiniLM features (meaning; see IntentFeatures)
and a linear SVM on TF-IDF word and character n-grams (wording, typos). The confidence adds how
close the text is to the nearest examples of the winning class and subtracts how close it is to
known out-of-scope phrases; docs/intents.md has the measurements behind each choice."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from agents.intents.tfidf import WordFeatures
from memory.embedder import Embedder


@dataclass(frozen=True)
class Params:
    # inverse regularisation of the embedding model and the TF-IDF SVM
    embedding_c: float = 10.0
    tfidf_c: float = 0.5
    # how much the SVM's margins count next to the embedding model's log-probabilities
    tfidf_weight: float = 2.5
    # confidence = (p_max + knn_weight * sim_to_class - oos_weight * sim_to_out_of_scope) / (1 + knn_weight)
    knn: int = 3
    knn_weight: float = 2.0
    oos_weight: float = 2.0


@dataclass(frozen=True)
class Ranking:
    """The classifier's view of one text: intents best first with probabilities, and a confidence in [0, 1]."""

    top: tuple[tuple[str, float], ...]
    confidence: float
    # which features decided, where a cascade chose between them (agents/intents/cascade.py): "small" or "large"
    model: str = ""

    @property
    def best(self) -> str:
        return self.top[0][0]


@dataclass(frozen=True)
class Scores:
    """Batch output, for evaluation: the predicted label and confidence of each text."""

    labels: np.ndarray
    confidence: np.ndarray
    probabilities: np.ndarray


class IntentClassifier:
    """Fit on example phrases; `rank` one text or `scores` many. Without an embedder, TF-IDF only.

    sklearn fits; what a fitted classifier keeps is plain arrays (`state`), so scoring is a few matrix
    products and a trained classifier can be written to disk and read back without pickle."""

    def __init__(self, embedder: Embedder | None = None, params: Params | None = None) -> None:
        self.embedder = embedder
        self.params = params or Params()
        self.classes: np.ndarray = np.array([])
        self._words: WordFeatures | None = None
        # (weights (features x classes), intercepts) of the TF-IDF SVM and of the embedding model's logistic regression
        self._svm: tuple[np.ndarray, np.ndarray] | None = None
        self._head: tuple[np.ndarray, np.ndarray] | None = None
        self._examples: np.ndarray | sparse.csr_matrix | None = None
        self._example_labels: np.ndarray = np.array([], dtype=np.int64)
        self._class_rows: list[np.ndarray] = []
        self._negatives: np.ndarray | sparse.csr_matrix | None = None

    def fit(self, texts: Sequence[str], labels: Sequence[str], negatives: Sequence[str] = ()) -> "IntentClassifier":
        """Learn intents from (text, label) examples; `negatives` are phrases that belong to no intent."""
        if len(set(labels)) < 2:
            raise ValueError("the classifier needs at least two intents with examples")
        p = self.params
        y = np.asarray(labels)
        self._words, words = WordFeatures.fit(list(texts))
        # a fixed seed for its coordinate order: the same phrases give the same model, retrained or read back
        svm = LinearSVC(C=p.tfidf_c, random_state=0).fit(words, y)
        self.classes = svm.classes_
        self._svm = _linear(svm.coef_, svm.intercept_)
        if self.embedder is not None:
            vectors = self.embedder.embed(list(texts))
            head = LogisticRegression(C=p.embedding_c, max_iter=1000).fit(vectors, y)
            self._head = _linear(head.coef_, head.intercept_)
            self._examples = vectors
            self._negatives = self.embedder.embed(list(negatives)) if negatives else None
        else:
            self._examples = _rows_normalised(words)
            self._negatives = _rows_normalised(self._words.transform(list(negatives))) if negatives else None
        self._set_labels(np.searchsorted(self.classes, y))
        return self

    @property
    def fitted(self) -> bool:
        return self._svm is not None

    @property
    def vectors(self) -> tuple[np.ndarray | sparse.csr_matrix | None, np.ndarray | sparse.csr_matrix | None]:
        """The examples' and the out-of-scope phrases' features, in the order they were fitted."""
        return self._examples, self._negatives

    def scores(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> Scores:
        """`vectors`: the texts' features when the caller has them already (a cascade shares the small model's)."""
        if self._svm is None or self._words is None:
            raise RuntimeError("fit the classifier before using it")
        p = self.params
        words = self._words.transform(list(texts))
        margins = _decision(words, *self._svm)
        if margins.shape[1] == 1:  # two classes: one column, as sklearn's decision_function gives
            margins = np.column_stack([-margins[:, 0], margins[:, 0]])
        logits = p.tfidf_weight * margins
        if self._head is not None:
            if vectors is None:
                if self.embedder is None:
                    raise RuntimeError("this classifier reads sentence vectors: pass them, or give it an embedder")
                vectors = self.embedder.embed(list(texts))
            query: np.ndarray | sparse.csr_matrix = vectors
            logits = logits + _log_probabilities(_decision(vectors, *self._head))
        else:
            query = _rows_normalised(words)
        probs = _softmax(logits)
        best = probs.argmax(axis=1)
        class_sim = self._class_similarity(query, best)
        confidence = probs[np.arange(len(best)), best] + p.knn_weight * class_sim
        if self._negatives is not None:
            confidence = confidence - p.oos_weight * _top_k_mean(_dot(query, self._negatives), p.knn)
        confidence = np.clip(confidence / (1.0 + p.knn_weight), 0.0, 1.0)
        return Scores(labels=self.classes[best], confidence=confidence, probabilities=probs)

    def rank(self, text: str, top: int = 3, vectors: np.ndarray | None = None) -> Ranking:
        """One text: the `top` intents with probabilities, and the confidence in the best one."""
        scores = self.scores([text], vectors)
        probs = scores.probabilities[0]
        order = np.argsort(-probs)[:top]
        return Ranking(top=tuple((str(self.classes[i]), float(probs[i])) for i in order), confidence=float(scores.confidence[0]))

    def _set_labels(self, labels: np.ndarray) -> None:
        self._example_labels = labels
        self._class_rows = [np.flatnonzero(labels == index) for index in range(len(self.classes))]

    def _class_similarity(self, query: np.ndarray | sparse.csr_matrix, best: np.ndarray) -> np.ndarray:
        """Mean similarity to the k nearest examples of each text's predicted class (only that class's examples
        are read: reading all of them costs a few ms per message with two models' features)."""
        assert self._examples is not None
        out = np.zeros(len(best), dtype=np.float64)
        for index in np.unique(best):
            rows = np.flatnonzero(best == index)
            out[rows] = _top_k_mean(_dot(query[rows], self._examples[self._class_rows[index]]), self.params.knn)
        return out

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """What the fitted classifier is: arrays, and JSON-able facts (classes, vocabularies, params)."""
        if self._svm is None or self._words is None or self._examples is None:
            raise RuntimeError("fit the classifier before saving it")
        idf, vocabularies = self._words.state()
        arrays = {"svm_weights": self._svm[0], "svm_intercept": self._svm[1], "idf": idf,
                  "example_labels": self._example_labels.astype(np.int32)}
        arrays.update(_matrix("examples", self._examples))
        if self._negatives is not None:
            arrays.update(_matrix("negatives", self._negatives))
        if self._head is not None:
            arrays.update(head_weights=self._head[0], head_intercept=self._head[1])
        meta = {"classes": [str(c) for c in self.classes], "params": asdict(self.params), "vocabularies": vocabularies}
        return arrays, meta

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], embedder: Embedder | None = None) -> "IntentClassifier":
        """A classifier as `state` described it; ValueError when the parts do not fit together."""
        model = cls(embedder, Params(**meta["params"]))
        model.classes = np.asarray(meta["classes"])
        model._words = WordFeatures.restore(arrays["idf"], meta["vocabularies"])
        model._svm = (arrays["svm_weights"], arrays["svm_intercept"])
        if "head_weights" in arrays:
            model._head = (arrays["head_weights"], arrays["head_intercept"])
        model._examples = _unmatrix("examples", arrays)
        model._negatives = _unmatrix("negatives", arrays) if any(k.startswith("negatives") for k in arrays) else None
        labels = np.asarray(arrays["example_labels"], dtype=np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= len(model.classes)):
            raise ValueError("example labels outside the classes")
        model._set_labels(labels)
        _check_shapes(model)
        return model


def _linear(coef: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A linear model's weights as (features x classes), contiguous: x @ weights reads them in order."""
    return np.ascontiguousarray(coef.T), np.asarray(intercept)


def _check_shapes(model: IntentClassifier) -> None:
    assert model._svm is not None and model._examples is not None and model._words is not None
    rows = 1 if len(model.classes) == 2 else len(model.classes)
    if model._svm[0].shape != (model._words.width, rows) or model._svm[1].shape != (rows,):
        raise ValueError(f"TF-IDF model of shape {model._svm[0].shape}, expected {(model._words.width, rows)}")
    if model._examples.shape[0] != len(model._example_labels):
        raise ValueError("examples and their labels differ in number")
    width = model._examples.shape[1]
    if model._head is not None and (model._head[0].shape != (width, rows) or model._head[1].shape != (rows,)):
        raise ValueError(f"embedding model of shape {model._head[0].shape}, expected {(width, rows)}")
    if model._negatives is not None and model._negatives.shape[1] != width:
        raise ValueError("out-of-scope phrases and examples differ in width")


def _matrix(name: str, matrix: np.ndarray | sparse.csr_matrix) -> dict[str, np.ndarray]:
    if not sparse.issparse(matrix):
        return {name: np.asarray(matrix)}
    csr = sparse.csr_matrix(matrix)
    return {f"{name}_data": csr.data, f"{name}_indices": csr.indices, f"{name}_indptr": csr.indptr,
            f"{name}_shape": np.asarray(csr.shape, dtype=np.int64)}


def _unmatrix(name: str, arrays: dict[str, np.ndarray]) -> np.ndarray | sparse.csr_matrix:
    if name in arrays:
        return arrays[name]
    shape = tuple(int(n) for n in arrays[f"{name}_shape"])
    return sparse.csr_matrix((arrays[f"{name}_data"], arrays[f"{name}_indices"], arrays[f"{name}_indptr"]), shape=shape)


def _decision(x: np.ndarray | sparse.csr_matrix, weights: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """A linear model's scores, as sklearn's decision_function gives them."""
    return np.asarray(x @ weights) + intercept


def _log_probabilities(decision: np.ndarray) -> np.ndarray:
    """Logistic regression's log-probabilities: a softmax over classes, or the sigmoid of one column for two."""
    if decision.shape[1] == 1:
        decision = np.column_stack([np.zeros(len(decision)), decision[:, 0]])
    shifted = decision - decision.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _dot(a: np.ndarray | sparse.csr_matrix, b: np.ndarray | sparse.csr_matrix | None) -> np.ndarray:
    product = a @ b.T
    return product.toarray() if sparse.issparse(product) else np.asarray(product)


def _top_k_mean(sims: np.ndarray, k: int) -> np.ndarray:
    k = min(k, sims.shape[1])
    return np.sort(sims, axis=1)[:, -k:].mean(axis=1)


def _rows_normalised(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1))).ravel()
    return sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ matrix


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
