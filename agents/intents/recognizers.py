"""Intent recognition in Deputy's processes: exact commands in the gateway, free text in the worker.

The gateway only parses commands: classifying free text costs ~15-20 ms per message on this class of
machine with MiniLM and ~75 ms with all-mpnet-base-v2 beside it (the embeddings dominate, p99 higher
under load; docs/intents.md has the figures) and a model call costs seconds, so free text travels to
the worker as `unrecognised` and handle_message classifies it there, recording `intent.recognized`
with its confidence and source."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from agents.llm import Llm
from kernel.messages import Intent
from agents.intents.commands import UsageError, parse_command
from kernel.messages import Inbound
from kernel.settings import Settings
from memory.embedder import Embedder
from memory.events import EventLog
from memory.preparation import Prepared

if TYPE_CHECKING:
    from agents.intents.model import IntentWatcher
    from agents.intents.recognition import IntentRecognizer
    from agents.intents.store import ClassifierStore

log = logging.getLogger("deputy.intents")

# free text the gateway passed on without classifying it
UNRECOGNISED = "unrecognised"
# the folder (in MODEL_CACHE_DIR, else DATA_DIR) of saved intent classifiers
CLASSIFIERS = "intent-classifiers"
# what a worker classifies once before it says it is ready
WARM_UP = "remind me to call the bank tomorrow at 9"


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
    """Free text → Intent in a worker. Reads back the classifier saved for these intents and models (or
    trains and saves it) on first use or `warm`, and trains again whenever the intents file changes."""

    def __init__(self, settings: Settings, llm: Llm | None, embedder: Embedder | None = None,
                 watcher: IntentWatcher | None = None) -> None:
        self.settings = settings
        self.llm = llm
        # an embedder passed in (tests, benchmarks) is used alone; otherwise the settings choose
        self._embedder = embedder
        # a watcher passed in: the worker pool's, loaded before it forked this worker (`preload_intents`)
        self._watcher = watcher
        self._engine: IntentRecognizer | None = None
        # a worker warms it in a thread while a job may already want it
        self._lock = threading.Lock()

    def engine(self) -> "IntentRecognizer":
        with self._lock:
            if self._engine is None:
                # sklearn and the models load here, on first use or warm-up, not when the gateway imports this module
                from agents.intents.recognition import IntentRecognizer
                from agents.intents.resolver import LlmResolver

                watcher = self._watcher or intent_watcher(self.settings, self._embedder)
                resolver = LlmResolver(self.llm, self.settings.timezone) if self.llm is not None else None
                self._engine = IntentRecognizer(watcher, self.settings.intent.threshold, self.settings.timezone, resolver)
            return self._engine

    def warm(self) -> float:
        """Make the first free-text message as fast as the next: the classifier read back (or trained and saved),
        the small model and the date parser loaded. Seconds taken."""
        from agents.intents.slots import find_when  # dateparser, like sklearn, stays out of the gateway

        started = time.perf_counter()
        trained = self.engine().watcher.current()
        trained.classifier.rank(WARM_UP)
        find_when(WARM_UP, self.settings.timezone)
        return time.perf_counter() - started

    def recognize(self, text: str, trace_id: str, events: EventLog) -> Intent:
        """Classify `text`, record how (and whether the model helped), and return the intent to carry out."""
        recognition = self.engine().recognize(text)
        events.record(trace_id, "intent.recognized", actor="worker", **recognition.event())
        if recognition.llm in ("unavailable", "invalid"):
            # the operator still gets an answer: the local one, or a question
            events.record(trace_id, f"intent.llm_{recognition.llm}", actor="worker", detail=recognition.llm_detail,
                          fallback=recognition.intent.name)
        return recognition.intent


def intent_watcher(settings: Settings, embedder: Embedder | None = None) -> "IntentWatcher":
    """The intents a worker classifies with: the operator's file over the built-ins, read with the sentence models
    the settings choose (or `embedder` alone), from the classifier saved for them (trained and saved when there is none)."""
    from agents.intents.cascade import CascadeRule  # sklearn: a worker's, not the gateway's
    from agents.intents.model import IntentWatcher

    local = embedder if embedder is not None else local_embedder(settings)
    extra = None if embedder is not None else larger_embedder(settings, local)
    return IntentWatcher(intents_file(settings), local, extra=extra, store=classifier_store(settings),
                         rule=CascadeRule.around(settings.intent.threshold))


def preload_intents(settings: Settings) -> "IntentWatcher | None":
    """What a worker pool loads before it forks its workers, so that they share it rather than each holding a copy
    (the sentence models' weights above all, ~360 MB for the two): the models, the saved classifier when there is
    one (training is left to the workers, which take commands meanwhile), the date parser. None if it failed (logged):
    each worker then loads its own."""
    from agents.intents.slots import find_when  # dateparser, like sklearn, stays out of the gateway

    try:
        watcher = intent_watcher(settings)
        watcher.read_back()
        for features in (watcher.models.small, watcher.models.large):
            if features is not None:
                features.embed([WARM_UP])
        find_when(WARM_UP, settings.timezone)
    except Exception:
        log.exception("the worker pool could not load the intent models; each worker loads its own")
        return None
    return watcher


def prepare_intents(settings: Settings) -> Prepared:
    """`deputy prepare`'s step: the classifier a worker will read back, trained and saved now (install time)."""
    started = time.perf_counter()
    recognizer = WorkerRecognizer(settings, llm=None)
    recognizer.warm()
    trained = recognizer.engine().watcher.current()
    what = f"intent classifier ({len(trained.registry)} intents, {recognizer.engine().watcher.models.name})"
    return Prepared(what, trained.path, time.perf_counter() - started, done_now=not trained.read_back,
                    skipped="" if trained.path else "it could be trained but not saved (see the log)")


def classifier_store(settings: Settings) -> "ClassifierStore":
    """Where trained classifiers are kept: beside the prepared models, else in the data folder."""
    from agents.intents.store import ClassifierStore  # numpy and sklearn: a worker's, not the gateway's

    return ClassifierStore([settings.intent.model_cache_dir / CLASSIFIERS, settings.data_dir / CLASSIFIERS])


def local_embedder(settings: Settings) -> Embedder | None:
    if not settings.intent.embeddings:
        return None
    from memory.embeddings import MiniLmEmbedder, ModelMissing, minilm_dir

    try:
        minilm_dir()
    except ModelMissing as err:
        log.warning("intent classifier runs on TF-IDF only: %s", err)
        return None
    return MiniLmEmbedder(cache_dir=settings.intent.model_cache_dir)


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
