"""Forgetting a text everywhere Deputy keeps it: first what would go (per store, with examples), then gone.

Whole records that match (notes, facts with their history, tasks, semantic memories in every backend)
are removed; copies quoted elsewhere (transcripts, event data, runs, cards, outbox replies, jobs) are
wiped by `CopyStore`s. The embedded store is compacted afterwards, so its file keeps no deleted text.
The event log keeps one `memory.forgotten` event: who, when, and how many per store, never the text."""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence

from kernel.keys import WorkspaceStore
from memory.events import EventLog
from memory.facts import Fact, FactStore
from memory.notes import Note, NoteStore
from memory.redis_copies import Found, RedisCopies
from memory.retention import compact
from memory.store import MemoryItem, MemoryStore
from memory.tasks import Task, TaskStore
from memory.text_match import Copies, Matcher

PENDING_TTL_S = 3_600
EXAMPLES = 3


class CopyStore(Protocol):
    def find(self, pattern: re.Pattern[str]) -> Found: ...

    def wipe(self, pattern: re.Pattern[str]) -> Found: ...


@dataclass
class Sweep:
    """What a forgetting found (preview) or removed: per store, a few examples, and what cannot be unsent."""

    stores: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    delivered: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.stores.values())

    def add(self, store: str, texts: Sequence[str]) -> None:
        if texts:
            self.stores[store] = self.stores.get(store, 0) + len(texts)
            self.examples += [t for t in texts if t not in self.examples][:EXAMPLES - len(self.examples)]

    def merge(self, found: Found) -> None:
        for store, n in found.stores.items():
            self.stores[store] = self.stores.get(store, 0) + n
        for channel, n in found.delivered.items():
            self.delivered[channel] = self.delivered.get(channel, 0) + n


@dataclass(frozen=True)
class _Records:
    notes: list[Note]
    facts: list[list[Fact]]
    tasks: list[Task]
    memories: dict[str, list[MemoryItem]]

    def texts(self) -> set[str]:
        facts = {f.value for history in self.facts for f in history}
        return {n.text for n in self.notes} | facts | {t.title for t in self.tasks} | {
            i.text for items in self.memories.values() for i in items}


class Forgetting(WorkspaceStore):
    """One workspace's stores, for `preview` and `forget`; `hold`/`take` keep a previewed request for its button."""

    def __init__(self, notes: NoteStore, facts: FactStore, tasks: TaskStore, backends: Mapping[str, MemoryStore],
                 events: EventLog, copies: Sequence[CopyStore] = ()) -> None:
        super().__init__(notes.redis, notes.keys.workspace)
        self.notes, self.facts, self.tasks, self.backends, self.events = notes, facts, tasks, backends, events
        # notes, facts and tasks go as whole records; other keys keep their record, less the text
        self.copies = [RedisCopies(notes.redis, notes.keys.workspace, skip=("notes", "facts", "tasks", "forget")), *copies]

    def _records(self, matcher: Matcher) -> _Records:
        # both backends Deputy ships have `matching`; a third without it would not be searched
        memories = {name: getattr(b, "matching")(self.keys.workspace, matcher.matches) for name, b in self.backends.items()
                    if hasattr(b, "matching")}
        return _Records(self.notes.matching(matcher.matches), self.facts.matching(matcher.matches),
                        self.tasks.matching(matcher.matches), memories)

    def preview(self, phrase: str) -> Sweep:
        matcher = Matcher(phrase)
        records = self._records(matcher)
        sweep = _counted(records)
        pattern = Copies(matcher, records.texts()).pattern()
        for store in self.copies:
            sweep.merge(store.find(pattern))
        return sweep

    def forget(self, phrase: str, actor: str, trace_id: str = "") -> Sweep:
        """Remove every record that matches and every copy of its text; returns what went."""
        matcher = Matcher(phrase)
        records = self._records(matcher)
        sweep = _counted(records)
        pattern = Copies(matcher, records.texts()).pattern()
        for note in records.notes:
            self.notes.delete(note.id)
        for history in records.facts:
            self.facts.forget(history[-1].key, actor)
        for task in records.tasks:
            self.tasks.delete(task.id)
        for name, items in records.memories.items():
            if items:
                self.backends[name].delete(self.keys.workspace, ids=[i.id for i in items])
        for store in self.copies:
            sweep.merge(store.wipe(pattern))
        compact(self.backends)
        self.events.record(trace_id or f"forget-{uuid.uuid4().hex[:12]}", "memory.forgotten", actor=actor,
                           removed=sweep.stores, not_removable=sweep.delivered)
        return sweep

    def hold(self, phrase: str, actor: str) -> str:
        """Keep a previewed request until its Forget or Keep button (an hour at most); returns its id."""
        Matcher(phrase)
        request_id = uuid.uuid4().hex[:12]
        self.redis.set(self.keys("forget", request_id), f"{actor}\n{phrase}", ex=PENDING_TTL_S)
        return request_id

    def take(self, request_id: str) -> tuple[str, str] | None:
        """The held (actor, phrase), removed from Redis: it quotes the text itself."""
        raw = self.redis.getdel(self.keys("forget", request_id))
        if not raw:
            return None
        actor, _, phrase = (raw.decode() if isinstance(raw, bytes) else raw).partition("\n")
        return actor, phrase


def _counted(records: _Records) -> Sweep:
    sweep = Sweep()
    sweep.add("notes", [n.text for n in records.notes])
    sweep.add("facts", [f"{h[-1].key}: {h[-1].value}" for h in records.facts])
    sweep.add("tasks", [t.title for t in records.tasks])
    for name, items in records.memories.items():
        sweep.add("semantic memory" if len(records.memories) == 1 else f"semantic memory ({name})", [i.text for i in items])
    return sweep
