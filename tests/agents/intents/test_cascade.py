"""The small model decides when it is sure either way; only the messages it is unsure of reach the large one."""
from __future__ import annotations

import numpy as np
import pytest

from agents.intents.cascade import Cascade, CascadeRule
from agents.intents.classifier import Ranking


class Features:
    def __init__(self, dim: int) -> None:
        self.name, self.dim, self.texts = f"features-{dim}", dim, []

    def embed(self, texts):  # type: ignore[no-untyped-def]
        self.texts += texts
        return np.full((len(texts), self.dim), 1 / np.sqrt(self.dim), dtype=np.float32)


class Scripted:
    """A classifier whose confidence is given per text; records the vectors it was handed."""

    def __init__(self, intent: str, confidence: dict[str, float]) -> None:
        self.intent, self.confidence, self.seen = intent, confidence, []

    def rank(self, text, top=3, vectors=None):  # type: ignore[no-untyped-def]
        self.seen.append(vectors)
        return Ranking(top=((self.intent, 0.9),), confidence=self.confidence[text])


RULE = CascadeRule(act_at=0.5, ask_below=0.1)
SMALL = {"sure": 0.7, "at the line": 0.5, "unsure": 0.3, "nothing close": 0.05}


@pytest.fixture
def cascade() -> Cascade:
    return Cascade(Scripted("small_says", SMALL), Features(2), Scripted("large_says", dict.fromkeys(SMALL, 0.4)), Features(3), RULE)


@pytest.mark.parametrize("text", ["sure", "at the line", "nothing close"])
def test_the_small_model_decides_when_it_is_sure_either_way(cascade: Cascade, text: str):
    ranking = cascade.rank(text)
    assert (ranking.best, ranking.model) == ("small_says", "small")
    assert cascade.large_features.texts == [] and cascade.large.seen == []  # the large model never ran


def test_an_unsure_message_is_decided_by_the_large_model_over_both_models_features(cascade: Cascade):
    ranking = cascade.rank("unsure")
    assert (ranking.best, ranking.confidence, ranking.model) == ("large_says", 0.4, "large")
    assert cascade.small_features.texts == ["unsure"] and cascade.large_features.texts == ["unsure"]  # each embeds once
    [both] = cascade.large.seen
    assert both.shape == (1, 5) and np.linalg.norm(both) == pytest.approx(1.0)


def test_without_a_large_model_the_small_one_always_decides():
    alone = Cascade(Scripted("small_says", SMALL), Features(2), rule=RULE)
    assert alone.rank("unsure").model == "small"
