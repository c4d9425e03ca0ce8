"""Two classifiers, the small one first: MiniLM's answer stands when it is sure either way, and only the
messages it is unsure about pay for all-mpnet-base-v2 (about 5x MiniLM's time per message).

The rule and the measurements behind it are in docs/intents.md ("The cascade")."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from agents.intents.classifier import IntentClassifier, Ranking
from memory.embedder import Embedder


# how far from the acting threshold (INTENT_THRESHOLD) the small model's confidence must be for its answer to stand
# alone. On the operator dev messages the large model changed no answer the small one gave above the threshold, and
# lifted right ones from 0.28-0.31 over it; it moved a message's confidence by up to 0.1 either way, so the margins
# are that and more (docs/intents.md, "The cascade")
SURE_MARGIN = 0.08
UNSURE_MARGIN = 0.17


@dataclass(frozen=True)
class CascadeRule:
    """The small classifier decides alone when its confidence is at least `act_at` (it acts) or below
    `ask_below` (it asks: nothing it knows is close); in between, the large classifier decides."""

    act_at: float = 0.32 + SURE_MARGIN
    ask_below: float = 0.32 - UNSURE_MARGIN

    @classmethod
    def around(cls, threshold: float) -> "CascadeRule":
        """The rule for an acting threshold (INTENT_THRESHOLD)."""
        return cls(act_at=threshold + SURE_MARGIN, ask_below=threshold - UNSURE_MARGIN)

    def decides(self, small: Ranking) -> bool:
        return small.confidence >= self.act_at or small.confidence < self.ask_below


@dataclass(eq=False)
class Cascade:
    """`small` reads `small_features` (MiniLM); `large` reads them beside `large_features` (all-mpnet-base-v2),
    joined by `join`. The large model is only run, and so only loaded, for a message the small one is unsure of."""

    small: IntentClassifier
    small_features: Embedder
    large: IntentClassifier | None = None
    large_features: Embedder | None = None
    rule: CascadeRule = CascadeRule()

    def rank(self, text: str, top: int = 3) -> Ranking:
        vectors = self.small_features.embed([text])
        first = replace(self.small.rank(text, top, vectors), model="small")
        if self.large is None or self.large_features is None or self.rule.decides(first):
            return first
        both = join([vectors, self.large_features.embed([text])])
        return replace(self.large.rank(text, top, both), model="large")


def join(blocks: list[np.ndarray]) -> np.ndarray:
    """Feature blocks of unit length side by side, scaled so a dot product is the mean of the blocks' own."""
    if len(blocks) == 1:
        return blocks[0]
    return (np.hstack(blocks) / np.float32(np.sqrt(len(blocks)))).astype(np.float32)
