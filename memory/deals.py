"""Deals: one per company (or contact) the operator is selling to; stage, value, currency and next step
are facts about "deal:SLUG", so every change keeps what it replaced."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from redis import Redis

from kernel.keys import WorkspaceStore
from memory.contacts import Change, slug
from memory.facts import FactStore, Restored, Rewrite, Subject

STAGES = ("lead", "qualified", "proposal", "negotiation", "won", "lost")
CLOSED = ("won", "lost")
FIELDS = ("stage", "value", "currency", "next_step", "contact")


@dataclass(frozen=True)
class Deal(Subject):

    @property
    def open(self) -> bool:
        return self.get("stage") not in CLOSED


class Deals(WorkspaceStore):
    def __init__(self, redis: Redis, workspace: str, facts: FactStore | None = None) -> None:
        super().__init__(redis, workspace)
        self.facts = facts or FactStore(redis, workspace)

    def update(self, name: str, changes: dict[str, str], author: str = "", source_event: str = "") -> tuple[Deal, list[Change]]:
        """Create the deal NAME (stage "lead" unless given) or change its fields."""
        subject = f"deal:{slug(name)}"
        if not slug(name):
            raise ValueError("a deal needs a name (the company or person it is with)")
        if changes.get("stage") and changes["stage"] not in STAGES:
            raise ValueError(f"a deal's stage is one of {', '.join(STAGES)}")
        new = not self.redis.hexists(self.keys("deals"), subject)
        if new:
            self.redis.hset(self.keys("deals"), subject, name.strip())
            changes = {"stage": "lead", **changes}
        written = []
        for field in FIELDS:
            value = (changes.get(field) or "").strip()
            if value:
                before = self.facts.get(f"{subject}/{field}")
                written.append(Change(field, self.facts.state(subject, field, value, "operator", source_event, author), before))
        return self.get(subject), written

    def restore(self, subject: str, changed: Sequence[Rewrite], made: bool, source_event: str = "",
                author: str = "") -> dict[str, Restored]:
        """Take back an update (FactStore.restore); a deal the update made is gone from the list once it has no facts."""
        done = self.facts.restore(subject, changed, source_event, author)
        if made and not self.facts.about(subject):
            self.redis.hdel(self.keys("deals"), subject)
        return done

    def get(self, subject: str) -> Deal:
        raw = self.redis.hget(self.keys("deals"), subject)
        name = raw.decode() if isinstance(raw, bytes) else (raw or subject.partition(":")[2])
        return Deal(subject, name, {f.attribute: f for f in self.facts.about(subject)})

    def find(self, name: str) -> Deal | None:
        subject = f"deal:{slug(name)}"
        return self.get(subject) if self.redis.hexists(self.keys("deals"), subject) else None

    def all(self) -> list[Deal]:
        subjects = [s.decode() if isinstance(s, bytes) else s for s in self.redis.hkeys(self.keys("deals"))]
        return sorted((self.get(s) for s in subjects), key=lambda d: d.name.lower())
