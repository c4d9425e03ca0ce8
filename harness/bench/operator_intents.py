"""`deputy eval intents --operator FILE`: the product's own recogniser on an operator's messages.

It is the worker's recogniser, not a model trained for the eval: the built-in intents
(agents/intents/builtin.yaml), the same features (MiniLM + all-mpnet-base-v2 as the settings choose;
MiniLM alone with --minilm-only; TF-IDF alone with --no-embeddings), INTENT_THRESHOLD and the same
rule for asking instead of acting, offline (no language model). Each line of FILE is
{"text": ..., "intent": ...}; the label `out_of_scope` means Deputy must not act on it."""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.intents.cascade import CascadeRule
from agents.intents.model import IntentWatcher
from agents.intents.recognition import CLARIFY, IntentRecognizer
from agents.intents.recognizers import classifier_store, larger_embedder, local_embedder
from agents.intents.registry import OUT_OF_SCOPE
from kernel.settings import Settings


@dataclass(frozen=True)
class Answer:
    text: str
    gold: str
    # the intent acted on, or "" when Deputy asked instead
    acted: str
    ms: float
    # which classifier decided: "small" (MiniLM), "large" (with all-mpnet-base-v2), "" without a cascade
    model: str = ""


def read_labelled(path: Path) -> list[tuple[str, str]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            rows.append((str(item["text"]), str(item["intent"])))
        except (ValueError, KeyError, TypeError) as err:
            raise SystemExit(f"{path}:{number}: expected a JSON object with \"text\" and \"intent\" ({err})") from err
    if not rows:
        raise SystemExit(f"{path} has no labelled messages")
    return rows


# the large classifier reads every message (as before the cascade): for comparison
EVERY_MESSAGE_LARGE = CascadeRule(act_at=float("inf"), ask_below=float("-inf"))


def worker_recognizer(settings: Settings, minilm_only: bool, no_embeddings: bool,
                      rule: CascadeRule | None = None) -> IntentRecognizer:
    """The recogniser a worker builds (agents/intents/recognizers.py WorkerRecognizer), built-ins only, offline,
    reading back the classifier a worker (or `deputy prepare`) saved."""
    embedder = None if no_embeddings else local_embedder(settings)
    extra = None if minilm_only else larger_embedder(settings, embedder)
    watcher = IntentWatcher(None, embedder, extra=extra, store=classifier_store(settings),
                            rule=rule or CascadeRule.around(settings.intent.threshold))
    return IntentRecognizer(watcher, settings.intent.threshold, settings.timezone, resolver=None)


def load_models(recognizer: IntentRecognizer) -> None:
    """Load the sentence models now, as a worker has before its first message (a classifier read back has not
    needed them yet), so the first unsure message's time is not the large model's loading."""
    models = recognizer.watcher.models
    for features in (models.small, models.large):
        if features is not None:
            features.embed(["a first message"])


def answer_all(recognizer: IntentRecognizer, rows: list[tuple[str, str]]) -> list[Answer]:
    answers = []
    for text, gold in rows:
        started = time.perf_counter()
        recognition = recognizer.recognize(text)
        ms = (time.perf_counter() - started) * 1000
        intent = recognition.intent
        # the recogniser names the skill to run; the intent it matched is in the slots
        acted = "" if intent.name == CLARIFY else str(intent.slots.get("intent", intent.name))
        answers.append(Answer(text, gold, acted, ms, recognition.ranking.model))
    return answers


def figures(answers: list[Answer]) -> dict[str, Any]:
    in_scope = [a for a in answers if a.gold != OUT_OF_SCOPE]
    oos = [a for a in answers if a.gold == OUT_OF_SCOPE]
    labels = sorted({a.gold for a in in_scope} | {a.acted for a in answers if a.acted})
    per_intent = {}
    for label in labels:
        right = sum(1 for a in answers if a.gold == label and a.acted == label)
        acted_as = sum(1 for a in answers if a.acted == label)
        gold = sum(1 for a in answers if a.gold == label)
        per_intent[label] = {"n": gold, "precision": _ratio(right, acted_as), "recall": _ratio(right, gold)}
    confusions = Counter(f"{a.gold} -> {a.acted or CLARIFY}" for a in answers
                         if a.acted != a.gold and not (a.gold == OUT_OF_SCOPE and not a.acted))
    times = np.array([a.ms for a in answers])
    return {
        "n": len(answers),
        "in_scope": len(in_scope),
        "out_of_scope": len(oos),
        "in_scope_accuracy": _percent(sum(a.acted == a.gold for a in in_scope), len(in_scope)),
        "oos_not_acted": _percent(sum(not a.acted for a in oos), len(oos)),
        "clarified": _percent(sum(not a.acted for a in answers), len(answers)),
        "clarified_in_scope": _percent(sum(not a.acted for a in in_scope), len(in_scope)),
        "large_model_share": _percent(sum(a.model == "large" for a in answers), len(answers)),
        "latency_ms_p50": round(float(np.percentile(times, 50)), 2),
        "latency_ms_p99": round(float(np.percentile(times, 99)), 2),
        "per_intent": per_intent,
        "confusions": dict(confusions.most_common()),
    }


def score(settings: Settings, path: Path, minilm_only: bool = False, no_embeddings: bool = False,
          misses: bool = False, no_cascade: bool = False) -> dict[str, Any]:
    rows = read_labelled(path)
    recognizer = worker_recognizer(settings, minilm_only, no_embeddings, EVERY_MESSAGE_LARGE if no_cascade else None)
    started = time.perf_counter()
    recognizer.watcher.current()  # train once (or read back), before the clock per message starts
    train_s = time.perf_counter() - started
    load_models(recognizer)
    answers = answer_all(recognizer, rows)
    result = {"data": str(path), "threshold": settings.intent.threshold, "features": features_name(recognizer),
              "train_s": round(train_s, 2), **figures(answers)}
    if misses:
        result["misses"] = [{"text": a.text, "intent": a.gold, "got": a.acted or CLARIFY}
                            for a in answers if a.acted != a.gold and not (a.gold == OUT_OF_SCOPE and not a.acted)]
    return result


def features_name(recognizer: IntentRecognizer) -> str:
    models = recognizer.watcher.models
    return "TF-IDF only" if models.small is None else f"{models.name} + TF-IDF"


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 3) if whole else 0.0


def _percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 2) if whole else 0.0
