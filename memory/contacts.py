"""Contacts and companies: people the operator deals with, each a subject whose details are facts.

A contact's email, phone, company and title are versioned facts (memory/facts.py) about "person:SLUG";
a company is "company:SLUG". Two indexes find them again: names (for "Ana", "Ana Lopez") and every
address a contact has had (so an email to an old address still belongs to them)."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Sequence

from redis import Redis

from kernel.keys import WorkspaceStore
from memory.facts import Fact, FactStore, Restored, Rewrite, Subject
from memory.store import Trust

# what a contact may have, in the order a card shows it
ATTRIBUTES = ("email", "phone", "company", "title", "notes")


def slug(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")


@dataclass(frozen=True)
class ContactView(Subject):

    @property
    def email(self) -> str:
        return self.get("email")

    @property
    def updated_at(self) -> float:
        return max((f.valid_from for f in self.facts.values()), default=0.0)


@dataclass(frozen=True)
class Change:
    """One attribute written: the fact now, and the one it replaced (None when new; the same when unchanged)."""

    attribute: str
    fact: Fact
    before: Fact | None

    @property
    def changed(self) -> bool:
        return self.before is None or self.before.value != self.fact.value


def rewrites(changes: Sequence[Change]) -> list[Rewrite]:
    """What a save changed, as an undo takes it back: each changed attribute's new and previous versions."""
    return [Rewrite(attribute=c.attribute, written=c.fact.version, previous=c.before.version if c.before else 0)
            for c in changes if c.changed]


def created(view: Subject, changes: Sequence[Change]) -> bool:
    """Whether the save made the subject: it had no current fact before, and has none it did not write."""
    return bool(changes) and all(c.before is None for c in changes) and set(view.facts) == {c.attribute for c in changes}


class Contacts(WorkspaceStore):
    def __init__(self, redis: Redis, workspace: str, facts: FactStore | None = None) -> None:
        super().__init__(redis, workspace)
        self.facts = facts or FactStore(redis, workspace)

    def save(self, name: str, details: dict[str, str], source: str = "operator", author: str = "", source_event: str = "",
             trust: Trust = "operator") -> tuple[ContactView, list[Change]]:
        """Create the contact or update the one NAME (or its email) finds; each detail becomes a fact."""
        subject = self.resolve(name) or (self._by_address(details.get("email", "")) if details.get("email") else None)
        if subject is None:
            if not name.strip():
                raise ValueError("a contact needs a name or an email address")
            subject = f"person:{slug(name)}"
            self.redis.hset(self.keys("contacts", "names"), subject, name.strip())
        changes = []
        for attribute in ATTRIBUTES:
            value = (details.get(attribute) or "").strip()
            if not value:
                continue
            if attribute == "email":
                value = value.lower()
                self.redis.hset(self.keys("contacts", "addresses"), value, subject)
            if attribute == "company":
                self.redis.hset(self.keys("companies"), f"company:{slug(value)}", value)
            before = self.facts.get(f"{subject}/{attribute}")
            fact = self.facts.state(subject, attribute, value, source, source_event, author, trust)
            changes.append(Change(attribute, fact, before))
        return self.get(subject), changes

    def restore(self, subject: str, changed: Sequence[Rewrite], made: bool, source_event: str = "",
                author: str = "") -> dict[str, Restored]:
        """Take back a save (FactStore.restore); an address only that save gave stops finding the contact, and a
        contact the save made is gone from the names once it has no facts left."""
        dropped = [self._only_in(subject, r) for r in changed if r.attribute == "email"]
        done = self.facts.restore(subject, changed, source_event, author)
        for address in filter(None, dropped):
            if self._by_address(address) == subject:
                self.redis.hdel(self.keys("contacts", "addresses"), address)
        if made and not self.facts.about(subject):
            self.redis.hdel(self.keys("contacts", "names"), subject)
        return done

    def _only_in(self, subject: str, rewrite: Rewrite) -> str:
        """The address REWRITE wrote, when no other version of the contact's email had it (a restored copy of the
        version it wrote is that version)."""
        history = self.facts.history(f"{subject}/email")
        written = next((f.value for f in history if f.version == rewrite.written), "")
        others = [f for f in history if rewrite.written not in (f.version, f.restored_from)]
        return written if written and not any(f.value == written for f in others) else ""

    def rename(self, subject: str, name: str) -> None:
        self.redis.hset(self.keys("contacts", "names"), subject, name.strip())

    def get(self, subject: str) -> ContactView:
        raw = self.redis.hget(self.keys("contacts", "names"), subject)
        name = raw.decode() if isinstance(raw, bytes) else (raw or subject.partition(":")[2])
        return ContactView(subject, name, {f.attribute: f for f in self.facts.about(subject)})

    def all(self) -> list[ContactView]:
        names = self.redis.hgetall(self.keys("contacts", "names"))
        return sorted((self.get(_text(s)) for s in names), key=lambda c: c.name.lower())

    def resolve(self, name: str) -> str | None:
        """The one contact NAME means: an exact name, else the contact whose name starts with those words
        (the latest updated when several do); an address finds its contact."""
        found = self.find(name)
        return found[0].subject if found else None

    def find(self, query: str, limit: int = 5) -> list[ContactView]:
        q = " ".join(query.strip().lower().split())
        if not q:
            return []
        if "@" in q:
            subject = self._by_address(q)
            return [self.get(subject)] if subject else []
        words = q.split()
        exact, partial = [], []
        for contact in self.all():
            name = contact.name.lower()
            if name == q:
                exact.append(contact)
            elif name.split()[:len(words)] == words or q == contact.get("company").lower() or q in name:
                partial.append(contact)
        partial.sort(key=lambda c: -c.updated_at)
        return (exact + partial)[:limit]

    def by_email(self, email: str) -> ContactView | None:
        subject = self._by_address(email)
        return self.get(subject) if subject else None

    def _by_address(self, email: str) -> str | None:
        raw = self.redis.hget(self.keys("contacts", "addresses"), email.strip().lower())
        return _text(raw) if raw else None

    def companies(self) -> dict[str, str]:
        return {_text(k): _text(v) for k, v in self.redis.hgetall(self.keys("companies")).items()}


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
