"""The local classifier on the built-in intents: paraphrases it never saw, and text it should not act on."""
from __future__ import annotations

import numpy as np
import pytest

from agents.intents.classifier import IntentClassifier
from agents.intents.model import IntentWatcher
from agents.intents.registry import load_registry
from kernel.settings_models import IntentSettings

THRESHOLD = IntentSettings().threshold
PARAPHRASES = [
    ("could you remind me to phone the accountant on monday", "remind"),
    ("put renew the insurance on my to-do list", "add_task"),
    ("please make a note that the alarm code is 1234", "remember"),
    ("what have i got left to do", "list_tasks"),
    ("set up a call with maria on thursday at 2pm", "schedule_meeting"),
    ("how much has the ai cost me so far", "check_budget"),
    ("bump the monthly budget to 80 euros", "set_budget"),
    ("why did you answer that way", "trace"),
]
OUT_OF_SCOPE = ["what's the capital of spain", "book a flight to rome", "what's my favourite colour", "how do magnets work",
                "play the new taylor swift album", "is it going to rain tomorrow"]


@pytest.mark.parametrize(("text", "intent"), PARAPHRASES)
def test_paraphrases_are_recognised_confidently(trained: IntentWatcher, text: str, intent: str):
    ranking = trained.current().classifier.rank(text)
    assert ranking.best == intent
    assert ranking.confidence >= THRESHOLD


@pytest.mark.parametrize("text", OUT_OF_SCOPE)
def test_out_of_scope_text_is_below_the_threshold(trained: IntentWatcher, text: str):
    assert trained.current().classifier.rank(text).confidence < THRESHOLD


def test_ranking_offers_alternatives_with_probabilities(builtin: IntentWatcher):
    ranking = builtin.current().classifier.rank("call the bank", top=3)
    assert len(ranking.top) == 3
    assert [p for _, p in ranking.top] == sorted((p for _, p in ranking.top), reverse=True)
    assert 0.0 <= ranking.confidence <= 1.0


def test_without_embeddings_tfidf_still_separates_clear_cases():
    registry = load_registry()
    texts, labels = registry.training_data()
    pairs = [(t, label) for t, label in zip(texts, labels) if label in registry]
    model = IntentClassifier(None).fit([t for t, _ in pairs], [label for _, label in pairs], registry.out_of_scope)
    assert model.rank("remind me to call ana tomorrow").best == "remind"
    assert model.rank("show my open tasks").best == "list_tasks"
    assert model.rank("remind me to call ana tomorrow").confidence > model.rank("what's the capital of peru").confidence


def test_one_intent_is_not_a_classifier():
    with pytest.raises(ValueError, match="at least two intents"):
        IntentClassifier(None).fit(["a b", "c d"], ["x", "x"])


def test_intent_features_use_several_layers_when_the_embedder_has_them_and_its_vector_otherwise():
    from agents.intents.features import IntentFeatures

    class Plain:
        name, dim = "plain", 3

        def embed(self, texts):  # type: ignore[no-untyped-def]
            return np.ones((len(texts), 3), dtype=np.float32)

    class Layered(Plain):
        def embed_layers(self, texts, layers):  # type: ignore[no-untyped-def]
            return np.full((len(texts), 3 * len(layers)), 0.5, dtype=np.float32)

    plain, layered = IntentFeatures(Plain()), IntentFeatures(Layered())
    assert plain.embed(["a"]).shape == (1, 3) and plain.dim == 3 and plain.name == "plain"
    assert layered.embed(["a", "b"]).shape == (2, 12) and layered.dim == 12 and "layers" in layered.name


def test_the_tfidf_features_are_sklearns():
    from scipy import sparse

    from agents.intents.tfidf import WordFeatures, vectorizers

    texts = ["add a task to call the bank", "show my open tasks", "remind me tomorrow at 9", "what's on my calendar"]
    unseen = ["tmrw call w/ ana re: the Q3 invoice!!", "", "zzz", "show tasks tasks tasks"]
    features, matrix = WordFeatures.fit(texts)
    reference = vectorizers()
    for vectorizer in reference:
        vectorizer.fit(texts)
    for batch in (texts, unseen):
        expected = sparse.hstack([v.transform(batch) for v in reference]).toarray()
        assert np.allclose(features.transform(batch).toarray(), expected, atol=1e-12)
    assert np.allclose(matrix.toarray(), features.transform(texts).toarray(), atol=1e-12)
    restored = WordFeatures.restore(*features.state())
    assert np.allclose(restored.transform(unseen).toarray(), features.transform(unseen).toarray())
