"""What the planner is told Deputy knows about a request: the current facts about the people, companies and deals
it names, the notes nearest its words, and the semantic memories nearest them (when semantic memory is wired).

Each recollection keeps its id, where it came from and whether the operator said it; what someone else wrote is
shown to the model fenced as data. The whole is bounded, so a large memory never crowds out the request."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from kernel.messages import Frozen
from kernel.text import EMAIL
from memory.contacts import Contacts
from memory.deals import Deals
from memory.facts import Fact, FactStore
from memory.notes import Note, NoteStore
from memory.retrieval import Retriever, tokens
from memory.store import Trust
from memory.untrusted import fenced

# rough tokens (4 characters each) of recollections one plan is shown, and the most one of them may take
BUDGET_TOKENS = 1_200
EACH_CHARS = 600
NOTES = 3
MEMORIES = 3
# first names shorter than this match too many ordinary words ("Al", "Bo")
FIRST_NAME = 3


class Recollection(Frozen):
    """One fact, note or memory, as the planner is given it."""

    # "fact:person:ana-lopez/email@2", "note:1a2b3c4d…", "memory:…"
    id: str
    text: str
    # who said so: operator, email, webhook, remember, file:…
    source: str
    trust: Trust = "operator"

    @property
    def untrusted(self) -> bool:
        return self.trust == "untrusted"

    def for_model(self) -> str:
        """The operator's own as a cited line; someone else's fenced, as every third party's text is."""
        return fenced(self.text) if self.untrusted else f"[{self.id}, from {self.source}] {self.text}"


@dataclass(frozen=True)
class Recollector:
    """Finds what a request's words point at, in the workspace's facts, notes and semantic memory."""

    facts: FactStore
    notes: NoteStore
    retriever: Retriever | None = None
    workspace: str = ""
    budget_tokens: int = BUDGET_TOKENS

    def recollect(self, text: str) -> tuple[Recollection, ...]:
        """Facts about whom and what TEXT names first (short, and the operator's), then notes, then memories."""
        notes = self._notes(text)
        said = {note.text for note, _ in notes}
        found = [*self._facts(text), *(r for _, r in notes), *self._memories(text, said)]
        return bounded(found, self.budget_tokens)

    def _facts(self, text: str) -> list[Recollection]:
        redis, workspace = self.facts.redis, self.facts.keys.workspace
        contacts, deals = Contacts(redis, workspace, self.facts), Deals(redis, workspace, self.facts)
        # a contact named, or one at a company named ("the Acme billing contact")
        subjects = [(c.name, c.facts) for c in contacts.all()
                    if _names(text, c.name, first=True) or (c.get("company") and _names(text, c.get("company"), first=False))]
        subjects += [(c.name, c.facts) for a in EMAIL.findall(text) if (c := contacts.by_email(a)) is not None]
        subjects += [(f"the {d.name} deal", d.facts) for d in deals.all() if _names(text, d.name, first=False)]
        out = []
        for name, facts in subjects:
            out += [_fact(name, fact) for _, fact in sorted(facts.items())]
        return out

    def _notes(self, text: str) -> list[tuple[Note, Recollection]]:
        out = []
        for note, _ in self.notes.search(text, limit=NOTES):
            body = f"[a note made from someone else's text]\n{note.text}" if note.trust == "untrusted" else note.text
            out.append((note, Recollection(id=f"note:{note.id}", text=_cut(body), source=note.source, trust=note.trust)))
        return out

    def _memories(self, text: str, said: set[str]) -> list[Recollection]:
        """The nearest semantic memories, less those already given as notes (/remember keeps both)."""
        if self.retriever is None:
            return []
        out = []
        hits = [h for h in self.retriever.retrieve(self.workspace, text, intent="agent") if h.item.text.strip() not in said]
        for hit in hits[:MEMORIES]:
            item = hit.item
            body = f"[remembered from {item.source}, written by someone else]\n{item.text}" if item.trust == "untrusted" else item.text
            out.append(Recollection(id=f"memory:{item.id}", text=_cut(body), source=item.source, trust=item.trust))
        return out


def _fact(name: str, fact: Fact) -> Recollection:
    body = f"{name}'s {fact.attribute.replace('_', ' ')}: {fact.value}"
    if fact.trust == "untrusted":
        body = f"[a fact taken from someone else's text]\n{body}"
    return Recollection(id=f"fact:{fact.key}@{fact.version}", text=_cut(body), source=fact.source, trust=fact.trust)


def _names(text: str, name: str, first: bool) -> bool:
    """Whether TEXT names NAME as whole words: the full name, or (for a person) the first name alone."""
    low = text.lower()
    wanted = [name.lower()] + ([name.split()[0].lower()] if first and name.split() and len(name.split()[0]) >= FIRST_NAME else [])
    return any(w and re.search(rf"(?<!\w){re.escape(w)}(?!\w)", low) for w in wanted)


def _cut(text: str) -> str:
    return text if len(text) <= EACH_CHARS else text[: EACH_CHARS - 1] + "…"


def bounded(found: Iterable[Recollection], budget_tokens: int = BUDGET_TOKENS) -> tuple[Recollection, ...]:
    """Those that fit in the budget, in order, each id once; the first always fits (it is cut to EACH_CHARS)."""
    out: list[Recollection] = []
    spent = 0
    for r in found:
        cost = tokens(r.text)
        if any(r.id == o.id for o in out) or (out and spent + cost > budget_tokens):
            continue
        out.append(r)
        spent += cost
    return tuple(out)
