from __future__ import annotations

import pytest

from agents.intents.features import MemoEmbedder
from agents.intents.model import IntentWatcher
from agents.intents.recognizers import classifier_store
from kernel.settings import Settings
from memory.embeddings import MiniLmEmbedder
from memory.mpnet import MpnetEmbedder, mpnet_installed


@pytest.fixture(scope="session")
def embedder() -> MemoEmbedder:
    """One MiniLM for the session; example phrases are embedded once, not per test."""
    return MemoEmbedder(MiniLmEmbedder())


@pytest.fixture(scope="session")
def builtin(embedder: MemoEmbedder) -> IntentWatcher:
    watcher = IntentWatcher(None, embedder)
    watcher.current()
    return watcher


@pytest.fixture(scope="session")
def both(tmp_path_factory: pytest.TempPathFactory, embedder: MemoEmbedder) -> IntentWatcher:
    """The built-in intents learned from MiniLM and all-mpnet-base-v2 together (the product default)."""
    if not mpnet_installed():
        pytest.skip("all-mpnet-base-v2 is not installed (scripts/test installs it)")
    # the prepared model files and the classifier `deputy prepare` saved (scripts/test runs it): a fresh folder would
    # unpack and convert 440 MB, and training embeds a thousand phrases with both models
    settings = Settings()
    watcher = IntentWatcher(None, embedder.inner, extra=MpnetEmbedder(settings.intent.model_cache_dir),
                            store=classifier_store(settings))
    watcher.current()
    return watcher


@pytest.fixture(params=["minilm", "both"])
def trained(request: pytest.FixtureRequest) -> IntentWatcher:
    """Each way the built-in intents are learned: MiniLM only (INTENT_MPNET=false), and both models."""
    return request.getfixturevalue("builtin" if request.param == "minilm" else "both")
