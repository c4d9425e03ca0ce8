"""Which emails Deputy has already shown the operator, and the few headers a shown email's buttons need.

"New in my inbox" means not yet shown by Deputy, which the mailbox's \\Seen flag cannot say: the operator reads mail
elsewhere, and inbox triage marks what it turned into tasks. So Deputy keeps its own mark per Message-ID and never
changes the mailbox's flags when it only shows mail. A card's buttons carry a short id; the headers behind it (sender,
subject, Message-ID, References, the first line) are kept for a month, never the body."""
from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from redis import Redis

from kernel.keys import WorkspaceStore

# a shown mark outlives any "recent" window the inbox is read with
SHOWN_TTL_S = 400 * 86_400
HEADERS_TTL_S = 30 * 86_400


def short_id(message_id: str) -> str:
    return hashlib.sha256(message_id.encode()).hexdigest()[:12]


class MailMarks(WorkspaceStore):
    """Shown marks and button headers of one workspace's mail."""

    def __init__(self, redis: Redis, workspace: str) -> None:
        super().__init__(redis, workspace)

    def shown(self, message_ids: list[str]) -> set[str]:
        """The ones of `message_ids` Deputy has shown before."""
        if not message_ids:
            return set()
        scores = self.redis.zmscore(self.keys("mail", "shown"), message_ids)
        return {m for m, score in zip(message_ids, scores) if score is not None}

    def mark_shown(self, message_ids: list[str]) -> None:
        if not message_ids:
            return
        now = time.time()
        key = self.keys("mail", "shown")
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(key, {m: now for m in message_ids}, nx=True)
        pipe.zremrangebyscore(key, 0, now - SHOWN_TTL_S)
        pipe.execute()

    def keep(self, headers: dict[str, Any]) -> str:
        """Keep the headers of one shown email (with its "message_id"); returns the short id its buttons carry."""
        ref = short_id(str(headers["message_id"]))
        self.redis.set(self.keys("mail", "headers", ref), json.dumps(headers), ex=HEADERS_TTL_S)
        return ref

    def headers(self, ref: str) -> dict[str, Any] | None:
        raw = self.redis.get(self.keys("mail", "headers", ref)) if ref.isalnum() else None
        return json.loads(raw) if raw else None

    def settle(self, ref: str, what: str) -> str | None:
        """Record what the operator did with a shown email (replied, made a task, ignored): None the first time,
        else what was done before, so a second click changes nothing."""
        key = self.keys("mail", "settled", ref)
        if self.redis.set(key, what, nx=True, ex=HEADERS_TTL_S):
            return None
        earlier = self.redis.get(key)
        return earlier.decode() if isinstance(earlier, bytes) else str(earlier)
