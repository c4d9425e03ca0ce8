"""The TF-IDF expert's features: word 1-2-grams and character 2-5-grams, each block weighted by IDF
(sublinear term frequency) and of unit length, side by side.

sklearn's TfidfVectorizer learns them. Reading messages reuses its analyzers (how text becomes
n-grams) but not its `transform`, whose input checks cost about 1 ms per call and per block here, a
tenth of a message's whole time with MiniLM; `transform` below gives the same matrix
(tests/agents/intents/test_classifier.py compares them)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer


def vectorizers(min_df: int = 1) -> list[TfidfVectorizer]:
    return [TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=min_df)]


class WordFeatures:
    """Fitted TF-IDF blocks: each one's vocabulary (n-gram → column) and IDF weights."""

    def __init__(self, vocabularies: list[dict[str, int]], idf: list[np.ndarray]) -> None:
        self.vocabularies = vocabularies
        self.idf = [np.asarray(weights, dtype=np.float64) for weights in idf]
        self._analyzers: list[Callable[[str], list[str]]] = [v.build_analyzer() for v in vectorizers()]
        self._offsets = np.cumsum([0] + [len(v) for v in vocabularies])
        self.width = int(self._offsets[-1])
        for vocabulary, weights in zip(vocabularies, self.idf, strict=True):
            if len(weights) != len(vocabulary) or (vocabulary and max(vocabulary.values()) >= len(weights)):
                raise ValueError("a TF-IDF vocabulary and its weights differ in size")

    @classmethod
    def fit(cls, texts: Sequence[str]) -> tuple["WordFeatures", sparse.csr_matrix]:
        """Learn the vocabularies from `texts`; also their features, as sklearn computes them."""
        fitted = vectorizers(min_df=2 if len(texts) > 1000 else 1)
        matrix = sparse.hstack([v.fit_transform(texts) for v in fitted]).tocsr()
        return cls([{term: int(i) for term, i in v.vocabulary_.items()} for v in fitted], [v.idf_ for v in fitted]), matrix

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        indptr, indices, data = [0], [], []
        filled = 0
        for text in texts:
            for offset, analyze, vocabulary, idf in zip(self._offsets, self._analyzers, self.vocabularies, self.idf):
                counts: dict[int, int] = {}
                for gram in analyze(text):
                    column = vocabulary.get(gram)
                    if column is not None:
                        counts[column] = counts.get(column, 0) + 1
                if not counts:
                    continue
                columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
                values = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) * idf[columns]
                values /= np.sqrt(values @ values)
                indices.append(columns + offset)
                data.append(values)
                filled += len(columns)
            indptr.append(filled)
        return sparse.csr_matrix((np.concatenate(data) if data else np.zeros(0), np.concatenate(indices) if indices else
                                  np.zeros(0, dtype=np.int64), indptr), shape=(len(texts), self.width))

    def state(self) -> tuple[np.ndarray, list[dict[str, Any]]]:
        return np.concatenate(self.idf), self.vocabularies

    @classmethod
    def restore(cls, idf: np.ndarray, vocabularies: list[dict[str, int]]) -> "WordFeatures":
        if len(idf) != sum(len(v) for v in vocabularies):
            raise ValueError("the TF-IDF weights do not match the vocabularies")
        bounds = np.cumsum([0] + [len(v) for v in vocabularies])
        return cls(vocabularies, [idf[a:b] for a, b in zip(bounds[:-1], bounds[1:])])
