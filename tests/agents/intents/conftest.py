from __future__ import annotations

import pytest

from agents.intents.model import IntentWatcher, MemoEmbedder
from memory.embeddings import MiniLmEmbedder


@pytest.fixture(scope="session")
def embedder() -> MemoEmbedder:
    """One MiniLM for the session; example phrases are embedded once, not per test."""
    return MemoEmbedder(MiniLmEmbedder())


@pytest.fixture(scope="session")
def builtin(embedder: MemoEmbedder) -> IntentWatcher:
    watcher = IntentWatcher(None, embedder)
    watcher.current()
    return watcher
