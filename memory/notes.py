"""Notes the operator asked Deputy to remember, with a keyword index for `/ask`."""
from __future__ import annotations

import hashlib
import re
import time
from typing import Callable

from pydantic import BaseModel

from kernel.keys import WorkspaceStore
from kernel.text import STOPWORDS
from memory.store import Trust

WORD = re.compile(r"[\w']+", re.UNICODE)


def terms(text: str) -> list[str]:
    words = [w.lower().strip("'") for w in WORD.findall(text)]
    return [w for w in words if w and w not in STOPWORDS]


class Note(BaseModel):
    id: str
    text: str
    project: str = "inbox"
    author: str = ""
    source: str = "remember"
    created_at: float
    source_event: str = ""
    # "untrusted": made from someone else's text (a webhook, an email), never the operator's own words
    trust: Trust = "operator"


class NoteStore(WorkspaceStore):
    """Durable notes; the keyword index answers `/ask` without any model."""


    def add(self, text: str, project: str = "inbox", author: str = "", source_event: str = "", source: str = "remember",
            trust: Trust = "operator") -> tuple[Note, bool]:
        """Store a note once per content; returns (note, created)."""
        text = text.strip()
        if not text:
            raise ValueError("nothing to remember")
        note_id = hashlib.sha256(f"{project}\n{text}".encode()).hexdigest()[:16]
        note = Note(id=note_id, text=text, project=project, author=author, source=source, created_at=time.time(),
                    source_event=source_event, trust=trust)
        if not self.redis.hsetnx(self.keys("notes"), note_id, note.model_dump_json()):
            existing = self.get(note_id)
            assert existing is not None
            return existing, False
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(self.keys("notes", "by_time"), {note_id: note.created_at})
        for term in set(terms(text)):
            pipe.sadd(self.keys("notes", "term", term), note_id)
        pipe.execute()
        return note, True

    def get(self, note_id: str) -> Note | None:
        raw = self.redis.hget(self.keys("notes"), note_id)
        return Note.model_validate_json(raw) if raw else None

    def count(self) -> int:
        return int(self.redis.hlen(self.keys("notes")))

    def search(self, query: str, limit: int = 5) -> list[tuple[Note, float]]:
        """Notes sharing words with the query, best first (rarer shared words weigh more)."""
        query_terms = sorted(set(terms(query)))
        if not query_terms:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for term in query_terms:
            pipe.smembers(self.keys("notes", "term", term))
        total = max(self.count(), 1)
        scores: dict[str, float] = {}
        for members in pipe.execute():
            if not members:
                continue
            weight = 1.0 + (total / len(members)) ** 0.5
            for raw in members:
                note_id = raw.decode() if isinstance(raw, bytes) else raw
                scores[note_id] = scores.get(note_id, 0.0) + weight
        best = sorted(scores.items(), key=lambda kv: -kv[1])[:limit]
        notes = self.redis.hmget(self.keys("notes"), [nid for nid, _ in best]) if best else []
        return [(Note.model_validate_json(raw), score) for raw, (_, score) in zip(notes, best) if raw]

    def delete(self, note_id: str) -> bool:
        note = self.get(note_id)
        if note is None:
            return False
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self.keys("notes"), note_id)
        pipe.zrem(self.keys("notes", "by_time"), note_id)
        for term in set(terms(note.text)):
            pipe.srem(self.keys("notes", "term", term), note_id)
        pipe.execute()
        return True

    def matching(self, test: Callable[[str], bool]) -> list[Note]:
        """Every note whose text passes `test` (a full scan: for forgetting, not for answers)."""
        return [n for n in (Note.model_validate_json(raw) for _, raw in self.redis.hscan_iter(self.keys("notes"))) if test(n.text)]
