"""From free text to an Intent: the local classifier, slot rules, and function calling when a model
is configured. Below the confidence threshold the answer is a clarifying question, never a guess."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from threadpoolctl import ThreadpoolController

from agents.intents.classifier import Ranking
from agents.intents.model import IntentWatcher
from agents.intents.registry import IntentRegistry, IntentSpec
from agents.intents.resolver import LlmResolver, Resolution
from agents.intents.slots import extract_slots
from kernel.messages import Intent

# the intent Deputy answers with a question offering the likeliest intents as buttons
CLARIFY = "clarify"


@dataclass(frozen=True)
class Recognition:
    """The intent to carry out, and how it was reached (for the event log)."""

    intent: Intent
    ranking: Ranking
    # what the model said: "" (not asked), or a resolver status: resolved, declined, invalid, unavailable
    llm: str = ""
    llm_detail: str = ""

    def event(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "intent": self.intent.name,
            "matched": self.intent.slots.get("intent", ""),
            "source": self.intent.source,
            "confidence": round(self.intent.confidence, 3),
            "candidates": [[name, round(p, 3)] for name, p in self.ranking.top],
            "slots": {k: v for k, v in self.intent.slots.items() if k not in ("candidates", "intent")},
        }
        if self.ranking.model:
            data["model"] = self.ranking.model
        if self.llm:
            data.update(llm=self.llm, llm_detail=self.llm_detail)
        return data


@dataclass(eq=False)
class IntentRecognizer:
    """Recognise one free-text message. `resolver` is None offline."""

    watcher: IntentWatcher
    threshold: float
    timezone: str
    resolver: LlmResolver | None = None

    def __post_init__(self) -> None:
        self._blas = ThreadpoolController()

    def recognize(self, text: str, now: datetime | None = None) -> Recognition:
        # one message is too small to split across BLAS threads: with two workers on two cores the threads'
        # hand-offs cost more than the arithmetic (3-10x on the classifier's products, measured; docs/intents.md)
        with self._blas.limit(limits=1, user_api="blas"):
            return self._recognize(text, now)

    def _recognize(self, text: str, now: datetime | None) -> Recognition:
        # one moment per message: the candidates of a question then share one parse of its dates (slots.find_when)
        now = now or datetime.now(ZoneInfo(self.timezone))
        trained = self.watcher.current()
        registry = trained.registry
        ranking = trained.classifier.rank(text, top=3)
        best = registry.get(ranking.best)
        confident = best is not None and ranking.confidence >= self.threshold
        if self.resolver is None:
            if confident and best is not None:
                return Recognition(self._carry_out(best, text, extract_slots(best, text, self.timezone, now), ranking.confidence, "classifier"), ranking)
            return Recognition(self._clarify(registry, ranking, text, now, "low_confidence"), ranking)

        if confident and best is not None:
            if not (best.slots or best.text_slot):
                return Recognition(self._carry_out(best, text, dict(best.defaults), ranking.confidence, "classifier"), ranking)
            # confident about the intent: the model only fills its slots
            answer = self.resolver.resolve(text, registry, only=best.name, now=now)
            if answer.status == "resolved" and answer.slots is not None:
                return self._resolved(best, text, answer, ranking)
            local = self._carry_out(best, text, extract_slots(best, text, self.timezone, now), ranking.confidence, "classifier")
            return Recognition(local, ranking, answer.status, answer.detail)

        answer = self.resolver.resolve(text, registry, now=now)
        chosen = registry.get(answer.intent) if answer.intent else None
        if answer.status == "resolved" and chosen is not None and answer.slots is not None:
            return self._resolved(chosen, text, answer, ranking)
        reason = {"declined": "llm_declined", "invalid": "llm_invalid"}.get(answer.status, "low_confidence")
        return Recognition(self._clarify(registry, ranking, text, now, reason), ranking, answer.status, answer.detail)

    def _resolved(self, spec: IntentSpec, text: str, answer: Resolution, ranking: Ranking) -> Recognition:
        assert answer.slots is not None
        # the model saw the message and chose; the local confidence is kept for the record
        return Recognition(self._carry_out(spec, text, answer.slots, max(ranking.confidence, self.threshold), "llm"), ranking, answer.status)

    @staticmethod
    def _carry_out(spec: IntentSpec, text: str, slots: dict[str, Any], confidence: float, source: str) -> Intent:
        slots = {spec.rename.get(k, k): v for k, v in slots.items()} | {"intent": spec.name}
        if spec.playbook:
            slots["playbook"] = spec.playbook
        if spec.capability:
            slots["capability"] = spec.capability
        return Intent(name=spec.target, text=text, slots=slots, confidence=confidence, source=source)

    def _clarify(self, registry: IntentRegistry, ranking: Ranking, text: str, now: datetime | None, reason: str) -> Intent:
        candidates = []
        for name, probability in ranking.top:
            spec = registry.get(name)
            if spec is None or not spec.suggest:
                continue
            planned = self._carry_out(spec, text, extract_slots(spec, text, self.timezone, now), probability, "clarified")
            candidates.append({"intent": spec.name, "label": spec.label, "probability": round(probability, 3),
                               "skill": planned.name, "slots": planned.slots})
            if len(candidates) == 2:
                break
        return Intent(name=CLARIFY, text=text, slots={"reason": reason, "candidates": candidates},
                      confidence=ranking.confidence, source="classifier")
