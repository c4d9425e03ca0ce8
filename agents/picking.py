"""Which of the operator's items a request means: "task 3", "#3", or the words of its title
("mark the invoice task done" → the task "send the invoice to Acme")."""
from __future__ import annotations

import re
from typing import Callable, Sequence, TypeVar

from kernel.text import STOPWORDS

T = TypeVar("T")

# words that say what to do with an item, not which item
_VERBS = frozenset(
    "mark marked tick ticked off check checked cross crossed done finished finish complete completed close closed "
    "delete remove drop erase scrap cancel stop kill snooze postpone defer push later hide until rename edit change "
    "update retitle call it task tasks todo to-do item list reminder reminders remind me please one thing "
    "as out away number no".split()
)
_NUMBER = re.compile(r"^\s*(?:(?:task|reminder|number|no\.?|item)\s*)?#?\s*(\d+)\s*$", re.I)
_NUMBER_IN = re.compile(r"(?:#|\b(?:task|reminder|number|no\.?|item)\s+#?)(\d+)\b", re.I)


def words(text: str) -> set[str]:
    found = {w.strip("'-") for w in re.findall(r"[\w'-]+", text.lower())}
    return {_stem(w) for w in found if w and w not in STOPWORDS and w not in _VERBS}


def _stem(word: str) -> str:
    # "invoices" finds "invoice", "renewing" finds "renew": enough for titles a person wrote
    for suffix in ("ing", "es", "s", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def number_in(query: str) -> int | None:
    """The item number a request gives ("3", "#3", "task 3"), if it names one."""
    m = _NUMBER.match(query) or _NUMBER_IN.search(query)
    return int(m.group(1)) if m else None


def best_matches(query: str, items: Sequence[T], text: Callable[[T], str]) -> list[T]:
    """The items whose text shares the most words with the query (several when tied); none when no word is shared."""
    wanted = words(query)
    if not wanted:
        return []
    scored = [(len(wanted & words(text(item))), item) for item in items]
    top = max((score for score, _ in scored), default=0)
    return [item for score, item in scored if top and score == top]
