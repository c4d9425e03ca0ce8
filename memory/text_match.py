"""What the operator asked to forget, as a test on any stored text."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from memory.notes import terms

REDACTED = "[forgotten]"


@dataclass(frozen=True)
class Matcher:
    """A text matches when it holds the phrase (any case) or every word of it that is not a stop word."""

    phrase: str

    def __post_init__(self) -> None:
        if not self.phrase.strip():
            raise ValueError("say what to forget, e.g. /forget Bob's wine")

    @property
    def words(self) -> frozenset[str]:
        return frozenset(terms(self.phrase))

    def matches(self, text: str) -> bool:
        if self.phrase.strip().lower() in text.lower():
            return True
        return bool(self.words) and self.words <= set(terms(text))


@dataclass
class Copies:
    """The exact texts to wipe wherever they were copied: the phrase and every matched record's text."""

    matcher: Matcher
    texts: set[str] = field(default_factory=set)

    def pattern(self) -> re.Pattern[str]:
        wanted = {self.matcher.phrase.strip(), *(t.strip() for t in self.texts)} - {""}
        # also as written inside JSON (quotes and newlines escaped), longest first
        forms = wanted | {json.dumps(t, ensure_ascii=False)[1:-1] for t in wanted}
        return re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)), re.IGNORECASE)
