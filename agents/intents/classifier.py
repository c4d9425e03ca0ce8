"""The local intent classifier: sentence embeddings + TF-IDF, with a confidence that knows when it
does not know.

Two linear experts vote in log space: logistic regression on MiniLM features (meaning; see IntentFeatures)
and a linear SVM on TF-IDF word and character n-grams (wording, typos). The confidence adds how
close the text is to the nearest examples of the winning class and subtracts how close it is to
known out-of-scope phrases; docs/intents.md has the measurements behind each choice."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC

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
    """Fit on example phrases; `rank` one text or `scores` many. Without an embedder, TF-IDF only."""

    def __init__(self, embedder: Embedder | None = None, params: Params | None = None) -> None:
        self.embedder = embedder
        self.params = params or Params()
        self.classes: np.ndarray = np.array([])
        self._tfidf: FeatureUnion | None = None
        self._svm: LinearSVC | None = None
        self._embedding_model: LogisticRegression | None = None
        self._examples: np.ndarray | sparse.csr_matrix | None = None
        self._example_labels: np.ndarray = np.array([])
        self._negatives: np.ndarray | sparse.csr_matrix | None = None

    def fit(self, texts: Sequence[str], labels: Sequence[str], negatives: Sequence[str] = ()) -> "IntentClassifier":
        """Learn intents from (text, label) examples; `negatives` are phrases that belong to no intent."""
        if len(set(labels)) < 2:
            raise ValueError("the classifier needs at least two intents with examples")
        p = self.params
        y = np.asarray(labels)
        self._tfidf = FeatureUnion([
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2 if len(texts) > 1000 else 1)),
        ])
        words = self._tfidf.fit_transform(texts)
        self._svm = LinearSVC(C=p.tfidf_c).fit(words, y)
        self.classes = self._svm.classes_
        if self.embedder is not None:
            vectors = self.embedder.embed(list(texts))
            self._embedding_model = LogisticRegression(C=p.embedding_c, max_iter=1000).fit(vectors, y)
            self._examples = vectors
            self._negatives = self.embedder.embed(list(negatives)) if negatives else None
        else:
            self._examples = _rows_normalised(words)
            self._negatives = _rows_normalised(self._tfidf.transform(list(negatives))) if negatives else None
        self._example_labels = y
        return self

    @property
    def fitted(self) -> bool:
        return self._svm is not None

    def scores(self, texts: Sequence[str]) -> Scores:
        if self._svm is None or self._tfidf is None:
            raise RuntimeError("fit the classifier before using it")
        p = self.params
        words = self._tfidf.transform(list(texts))
        margins = self._svm.decision_function(words)
        if margins.ndim == 1:  # two classes: sklearn returns one column
            margins = np.column_stack([-margins, margins])
        logits = p.tfidf_weight * margins
        if self._embedding_model is not None and self.embedder is not None:
            query = self.embedder.embed(list(texts))
            logits = logits + self._embedding_model.predict_log_proba(query)
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

    def rank(self, text: str, top: int = 3) -> Ranking:
        """One text: the `top` intents with probabilities, and the confidence in the best one."""
        scores = self.scores([text])
        probs = scores.probabilities[0]
        order = np.argsort(-probs)[:top]
        return Ranking(top=tuple((str(self.classes[i]), float(probs[i])) for i in order), confidence=float(scores.confidence[0]))

    def _class_similarity(self, query: np.ndarray | sparse.csr_matrix, best: np.ndarray) -> np.ndarray:
        """Mean similarity to the k nearest examples of each text's predicted class."""
        sims = _dot(query, self._examples)
        out = np.zeros(len(best), dtype=np.float64)
        for index in np.unique(best):
            rows = np.where(best == index)[0]
            columns = np.where(self._example_labels == self.classes[index])[0]
            out[rows] = _top_k_mean(sims[np.ix_(rows, columns)], self.params.knn)
        return out


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
