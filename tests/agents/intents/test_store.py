"""A trained classifier is saved and read back by the next worker, trained again when what it learned
from changed, rebuilt when its files are damaged, and trained once when two workers start together."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from agents.intents.classifier import IntentClassifier
from agents.intents.model import IntentWatcher
from agents.intents.store import ClassifierStore, classifier_key

INVOICE = """\
intents:
  - name: invoice_status
    description: Check whether an invoice was paid
    playbook: invoice_status
    examples:
      - has acme paid invoice 42
      - is the march invoice paid yet
      - did the client pay the last invoice
"""
TEXTS = ["add a task to renew the domain", "has bob paid invoice 7 yet", "what's the capital of peru"]


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many classifiers were fitted (each watcher fits one: TF-IDF only, no sentence model)."""
    calls: list[int] = []
    fit = IntentClassifier.fit

    def counted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(IntentClassifier, "fit", counted)
    return calls


def watcher(intents: Path, store: ClassifierStore) -> IntentWatcher:
    return IntentWatcher(intents, None, check_every_s=0, store=store)


def rankings(w: IntentWatcher) -> list[tuple[str, float]]:
    classifier = w.current().classifier
    return [(r.best, round(r.confidence, 6)) for r in map(classifier.rank, TEXTS)]


def test_the_next_worker_reads_the_classifier_back_instead_of_training(tmp_path: Path, fits: list[int]):
    intents, store = tmp_path / "intents.yaml", ClassifierStore([tmp_path / "cache"])
    intents.write_text(INVOICE)
    first = watcher(intents, store)
    trained = first.current()
    assert not trained.read_back and trained.path is not None and trained.path.parent == tmp_path / "cache"
    second = watcher(intents, store)
    again = second.current()
    assert again.read_back and again.path == trained.path and len(fits) == 1
    assert rankings(second) == rankings(first) and rankings(second)[1][0] == "invoice_status"


def test_changed_intents_train_again_and_the_old_entry_still_serves_the_old_file(tmp_path: Path, fits: list[int]):
    intents, store = tmp_path / "intents.yaml", ClassifierStore([tmp_path / "cache"])
    intents.write_text(INVOICE)
    watcher(intents, store).current()
    intents.write_text(INVOICE.replace("did the client pay the last invoice", "was the invoice for bob settled"))
    changed = watcher(intents, store).current()
    assert not changed.read_back and len(fits) == 2
    intents.write_text(INVOICE)
    assert watcher(intents, store).current().read_back and len(fits) == 2


def test_the_key_follows_the_intents_the_models_and_the_settings():
    base = classifier_key("intents-1", ["minilm@a"], {"tfidf_weight": 2.5})
    assert classifier_key("intents-1", ["minilm@a"], {"tfidf_weight": 2.5}) == base
    assert classifier_key("intents-2", ["minilm@a"], {"tfidf_weight": 2.5}) != base
    assert classifier_key("intents-1", ["minilm@b"], {"tfidf_weight": 2.5}) != base  # other weights or runtime
    assert classifier_key("intents-1", ["minilm@a", "mpnet@a"], {"tfidf_weight": 2.5}) != base
    assert classifier_key("intents-1", ["minilm@a"], {"tfidf_weight": 1.5}) != base


@pytest.mark.parametrize("damage", ["truncated array", "meta not json", "meta of another key", "array missing"])
def test_a_damaged_entry_is_set_aside_and_trained_again(tmp_path: Path, fits: list[int], damage: str, caplog):  # type: ignore[no-untyped-def]
    intents, store = tmp_path / "intents.yaml", ClassifierStore([tmp_path / "cache"])
    intents.write_text(INVOICE)
    good = watcher(intents, store)
    path = good.current().path
    assert path is not None
    coef = path / "small.svm_weights.npy"
    if damage == "truncated array":
        coef.write_bytes(coef.read_bytes()[:200])
    elif damage == "meta not json":
        (path / "meta.json").write_text("{not json")
    elif damage == "meta of another key":
        (path / "meta.json").write_text((path / "meta.json").read_text().replace(path.name, "0" * len(path.name)))
    else:
        coef.unlink()
    rebuilt = watcher(intents, store)
    assert not rebuilt.current().read_back and len(fits) == 2
    assert "training it again" in caplog.text
    assert rankings(rebuilt) == rankings(good)
    assert watcher(intents, store).current().read_back


def test_two_workers_starting_together_train_once(tmp_path: Path, fits: list[int]):
    intents, store = tmp_path / "intents.yaml", ClassifierStore([tmp_path / "cache"])
    intents.write_text(INVOICE)
    results = []
    workers = [threading.Thread(target=lambda: results.append(watcher(intents, store).current())) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(fits) == 1 and sorted(r.read_back for r in results) == [False, True]


def test_an_unwritable_cache_falls_back_to_the_next_folder(tmp_path: Path, fits: list[int]):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    intents, store = tmp_path / "intents.yaml", ClassifierStore([blocked / "intents", tmp_path / "data"])
    intents.write_text(INVOICE)
    trained = watcher(intents, store).current()
    assert trained.path is not None and trained.path.parent == tmp_path / "data"
    assert watcher(intents, store).current().read_back


def test_old_entries_are_pruned(tmp_path: Path, fits: list[int]):
    intents, store = tmp_path / "intents.yaml", ClassifierStore([tmp_path / "cache"], keep=2)
    for n in range(4):
        intents.write_text(INVOICE + f"      - is invoice {n} paid\n")
        watcher(intents, store).current()
    assert len([p for p in (tmp_path / "cache").iterdir() if p.is_dir() and not p.name.startswith(".")]) == 2


def test_a_saved_classifier_scores_as_the_fitted_one():
    texts = ["add a task", "new to-do", "put it on my list", "show tasks", "what's on my list", "list my to-dos"]
    labels = ["add", "add", "add", "show", "show", "show"]
    vectors = np.random.default_rng(1).normal(size=(6, 8)).astype(np.float32)

    class Fixed:
        name, dim = "fixed", 8

        def embed(self, batch):  # type: ignore[no-untyped-def]
            return np.stack([vectors[texts.index(t)] if t in texts else vectors[0] for t in batch])

    fitted = IntentClassifier(Fixed()).fit(texts, labels, ["the weather"])
    restored = IntentClassifier.from_state(*fitted.state(), embedder=Fixed())
    for text in ["add a task", "show tasks", "something else"]:
        assert restored.rank(text) == fitted.rank(text)
