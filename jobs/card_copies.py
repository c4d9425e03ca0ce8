"""Where copies of a card were posted, so a decision updates every copy and no stale buttons remain.

The digest re-posts each card still waiting for a decision (an approval, a spend request) as a copy
with its own card id: the original stays where it was first shown. Each copy is recorded here under
the original's id, with the thread it went to; when the card is decided, the worker queues an
update for every copy as well as for the original (jobs/tasks.py)."""
from __future__ import annotations

from pydantic import BaseModel
from redis import Redis

from kernel.keys import WorkspaceStore

# as long as a card can wait for its decision
COPY_TTL_S = 30 * 86_400


class CardCopy(BaseModel):
    card_id: str
    channel: str
    thread_id: str
    reply_to: dict[str, str] = {}


class CardCopies(WorkspaceStore):
    def __init__(self, redis: Redis, workspace: str, ttl_s: int = COPY_TTL_S) -> None:
        super().__init__(redis, workspace)
        self.ttl_s = ttl_s

    def add(self, original_id: str, copy: CardCopy) -> None:
        key = self.keys("card", "copies", original_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, copy.card_id, copy.model_dump_json())
            pipe.expire(key, self.ttl_s)
            pipe.execute()

    def of(self, original_id: str) -> list[CardCopy]:
        raw = self.redis.hgetall(self.keys("card", "copies", original_id))
        return sorted((CardCopy.model_validate_json(v) for v in raw.values()), key=lambda c: c.card_id)
