"""What can be undone in each thread: the compensations of a recent action, newest first, each undone once.

An Undoable is written when an action is done (a run's reversible steps, a task Deputy changed directly); the
Undo button and "undo that" read it back and claim it, so a double click or a repeated "undo" undoes once."""
from __future__ import annotations

import time
from typing import Any, Callable

from pydantic import BaseModel
from redis import Redis

from kernel.keys import WorkspaceStore

# an undoable is kept this long (past any sensible window), so a late click is told it is too late, not "unknown"
KEEP_S = 7 * 86_400
# undoables remembered per thread
PER_THREAD = 50


class UndoStep(BaseModel):
    """One compensation: the capability that undoes, and its arguments."""

    capability: str
    args: dict[str, Any]
    rationale: str = ""


class Undoable(BaseModel):
    id: str
    thread_id: str
    # what was done, in the operator's words ("Added task #4: call Ana")
    summary: str
    # compensations, in the order they must run
    steps: list[UndoStep]
    # the run it undoes, if it came from a run
    run_id: str = ""
    trace_id: str = ""
    created_at: float


class UndoLog(WorkspaceStore):
    def __init__(self, redis: Redis, workspace: str, clock: Callable[[], float] = time.time) -> None:
        super().__init__(redis, workspace)
        self.clock = clock

    def push(self, item: Undoable) -> None:
        """Remember `item` as the newest undoable of its thread (the same id twice is one entry)."""
        thread = self.keys("undo", "thread", item.thread_id)
        with self.redis.pipeline() as pipe:
            pipe.set(self.keys("undo", "item", item.id), item.model_dump_json(), ex=KEEP_S)
            pipe.lrem(thread, 0, item.id)
            pipe.lpush(thread, item.id)
            pipe.ltrim(thread, 0, PER_THREAD - 1)
            pipe.expire(thread, KEEP_S)
            pipe.execute()

    def get(self, undo_id: str) -> Undoable | None:
        raw = self.redis.get(self.keys("undo", "item", undo_id))
        return Undoable.model_validate_json(raw) if raw else None

    def last(self, thread_id: str, window_s: float) -> Undoable | None:
        """The newest undoable of the thread that is not undone yet and was done less than `window_s` ago."""
        since = self.clock() - window_s
        for raw_id in self.redis.lrange(self.keys("undo", "thread", thread_id), 0, -1):
            item = self.get(raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id))
            if item is None or self.undone(item.id):
                continue
            return item if item.created_at >= since else None
        return None

    def within(self, item: Undoable, window_s: float) -> bool:
        return self.clock() - item.created_at <= window_s

    def claim(self, undo_id: str, by: str = "") -> bool:
        """True for the first caller only: the one that undoes. `by` (the request's trace) gets True again, so a
        retried job of the same click carries on with the undo it started."""
        key = self.keys("undo", "claimed", undo_id)
        if self.redis.set(key, by or "-", nx=True, ex=KEEP_S):
            return True
        holder = self.redis.get(key)
        return bool(by) and (holder.decode() if isinstance(holder, bytes) else holder) == by

    def undone(self, undo_id: str) -> bool:
        return bool(self.redis.exists(self.keys("undo", "claimed", undo_id)))
