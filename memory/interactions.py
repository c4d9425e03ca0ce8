"""Interactions: what happened with a contact (an email sent, a meeting made, a follow-up task), newest last.

Recorded by the capabilities that did it; one entry per effect (the effect's key), so a retried effect
is not counted twice."""
from __future__ import annotations

import time

from pydantic import BaseModel

from kernel.keys import WorkspaceStore

KINDS = ("email.sent", "email.received", "meeting", "followup", "note")


class Interaction(BaseModel):
    subject: str
    kind: str
    summary: str
    at: float
    # the effect that made it (a run step's key) and what it made (a task id, an event UID)
    ref: str = ""
    task_id: int | None = None


class Interactions(WorkspaceStore):
    def record(self, subject: str, kind: str, summary: str, ref: str, task_id: int | None = None,
               at: float | None = None) -> bool:
        """False when REF was already recorded for SUBJECT."""
        if not self.redis.hsetnx(self.keys("interactions", "refs"), f"{subject}|{ref}", "1"):
            return False
        entry = Interaction(subject=subject, kind=kind, summary=summary[:300], at=at or time.time(), ref=ref, task_id=task_id)
        self.redis.zadd(self.keys("interactions", subject), {entry.model_dump_json(): entry.at})
        self.redis.zadd(self.keys("interactions", "last"), {subject: entry.at})
        return True

    def of(self, subject: str, limit: int = 10) -> list[Interaction]:
        rows = self.redis.zrange(self.keys("interactions", subject), -limit, -1)
        return [Interaction.model_validate_json(r) for r in rows]

    def last_at(self, subject: str) -> float | None:
        score = self.redis.zscore(self.keys("interactions", "last"), subject)
        return float(score) if score is not None else None
