"""Where each thread's conversation stands: the question Deputy waits on, and the action waiting for approval
that a correction may change. The rules that use them live in agents/conversation.py and agents/corrections.py."""
from __future__ import annotations

import time
from typing import Callable, Literal

from redis import Redis

from kernel.keys import WorkspaceStore
from kernel.messages import Card, Frozen, Intent

# how long an expired question is remembered, so a late answer is told what happened
LATE_GRACE_S = 86_400
Kind = Literal["duration", "clock", "choice", "text", "zone"]


class Question(Frozen):
    id: str
    intent: Intent
    slot: str
    kind: Kind
    prompt: str
    options: tuple[tuple[str, str], ...] = ()
    asked_at: float
    expires_at: float
    actor: str = ""


class PendingAction(Frozen):
    """An action shown on an approval card in this thread, kept so a correction can re-issue it."""

    intent: Intent
    approval_id: str
    card: Card
    trace_id: str


class Conversations(WorkspaceStore):
    def __init__(self, redis: Redis, workspace: str, ttl_s: int = 1800, clock: Callable[[], float] = time.time) -> None:
        super().__init__(redis, workspace)
        self.ttl_s = ttl_s
        self.clock = clock

    def _key(self, channel: str, thread_id: str, what: str) -> str:
        return self.keys("conversation", channel or "-", thread_id, what)

    def ask(self, channel: str, thread_id: str, question: Question) -> None:
        self.redis.set(self._key(channel, thread_id, "question"), question.model_dump_json(), ex=self.ttl_s + LATE_GRACE_S)

    def question(self, channel: str, thread_id: str) -> Question | None:
        raw = self.redis.get(self._key(channel, thread_id, "question"))
        return Question.model_validate_json(raw) if raw else None

    def close(self, channel: str, thread_id: str, question_id: str) -> bool:
        """Take the question off the thread; only one answer (message or click) gets it."""
        key = self._key(channel, thread_id, "question")
        current = self.question(channel, thread_id)
        if current is None or current.id != question_id:
            return False
        return bool(self.redis.delete(key))

    def hold(self, channel: str, thread_id: str, action: PendingAction, ttl_s: int) -> None:
        self.redis.set(self._key(channel, thread_id, "action"), action.model_dump_json(), ex=max(60, ttl_s))

    def action(self, channel: str, thread_id: str) -> PendingAction | None:
        raw = self.redis.get(self._key(channel, thread_id, "action"))
        return PendingAction.model_validate_json(raw) if raw else None

    def drop_action(self, channel: str, thread_id: str) -> None:
        self.redis.delete(self._key(channel, thread_id, "action"))
