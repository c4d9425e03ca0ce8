"""Tasks: the operator's to-do list, per workspace and project."""
from __future__ import annotations

import json
import time
from typing import Callable

from pydantic import BaseModel
from redis import Redis
from redis.client import Pipeline

from kernel.keys import WorkspaceStore
from memory.facts import ChangedSince
from memory.store import Trust

# Mark a task done only if it exists and is open; both indexes move in the same step.
DONE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local task = cjson.decode(raw)
if task['status'] == 'done' then return 1 end
task['status'] = 'done'
task['done_at'] = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(task))
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 2
"""


# Create a task once per idempotency key: a retried job gets the task it already created.
ADD = """
if KEYS[3] ~= '' then
  local existing = redis.call('GET', KEYS[3])
  if existing then return redis.call('HGET', KEYS[1], existing) end
  redis.call('SET', KEYS[3], ARGV[1], 'EX', 604800)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return ARGV[2]
"""


# Change some fields of a task that exists, in one step; a JSON null clears a field.
UPDATE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local task = cjson.decode(raw)
for field, value in pairs(cjson.decode(ARGV[2])) do task[field] = value end
raw = cjson.encode(task)
redis.call('HSET', KEYS[1], ARGV[1], raw)
return raw
"""

# Delete a task from the list and both indexes; returns what it was.
DELETE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return raw
"""


class Task(BaseModel):
    id: int
    title: str
    project: str = "inbox"
    status: str = "open"
    created_at: float
    done_at: float | None = None
    source_event: str = ""
    due: str | None = None
    # "untrusted": the title was written by someone else (an email, a webhook), not the operator
    trust: Trust = "operator"
    # hidden from the open list until then (unix seconds); it shows again by itself
    snoozed_until: float | None = None

    def snoozed(self, now: float) -> bool:
        return self.snoozed_until is not None and self.snoozed_until > now


class TaskStore(WorkspaceStore):
    def __init__(self, redis: Redis, workspace: str) -> None:
        super().__init__(redis, workspace)
        self._done = redis.register_script(DONE)
        self._add = redis.register_script(ADD)
        self._update = redis.register_script(UPDATE)
        self._delete = redis.register_script(DELETE)

    def add(self, title: str, project: str = "inbox", source_event: str = "", due: str | None = None,
            trust: Trust = "operator") -> Task:
        """Add an open task; the same source_event (idempotency key) always yields the same task."""
        title = title.strip()
        if not title:
            raise ValueError("a task needs a title")
        task_id = int(self.redis.incr(self.keys("task_seq")))
        task = Task(id=task_id, title=title, project=project, created_at=time.time(), source_event=source_event, due=due,
                    trust=trust)
        raw = self._add(
            keys=[self.keys("tasks"), self.keys("tasks", "open"), self.keys("task_src", source_event) if source_event else ""],
            args=[str(task_id), task.model_dump_json(), repr(task.created_at)],
        )
        return Task.model_validate_json(raw)

    def get(self, task_id: int) -> Task | None:
        raw = self.redis.hget(self.keys("tasks"), str(task_id))
        return Task.model_validate_json(raw) if raw else None

    def list(self, status: str = "open", project: str | None = None, limit: int = 100) -> list[Task]:
        ids = self.redis.zrange(self.keys("tasks", status), 0, limit - 1)
        if not ids:
            return []
        rows = self.redis.hmget(self.keys("tasks"), ids)
        tasks = [Task.model_validate_json(r) for r in rows if r]
        return [t for t in tasks if project is None or t.project == project]

    def done(self, task_id: int) -> tuple[Task | None, bool]:
        """Close a task. Returns the task (None if unknown) and whether this call closed it."""
        result = self._done(
            keys=[self.keys("tasks"), self.keys("tasks", "open"), self.keys("tasks", "done")],
            args=[str(task_id), repr(time.time())],
        )
        if result == 0:
            return None, False
        return self.get(task_id), result == 2

    def edit(self, task_id: int, title: str | None = None, project: str | None = None) -> Task | None:
        """A new title and/or project; None if there is no such task."""
        changes: dict[str, object] = {}
        if title is not None:
            if not title.strip():
                raise ValueError("a task needs a title")
            changes["title"] = title.strip()
        if project is not None:
            changes["project"] = project
        return self._change(task_id, changes)

    def snooze(self, task_id: int, until: float | None) -> Task | None:
        """Hide an open task from the list until `until` (None: show it again now)."""
        return self._change(task_id, {"snoozed_until": until})

    def _change(self, task_id: int, changes: dict[str, object]) -> Task | None:
        raw = self._update(keys=[self.keys("tasks")], args=[str(task_id), json.dumps(changes)])
        return Task.model_validate_json(raw) if raw else None

    def delete(self, task_id: int) -> Task | None:
        """Remove a task, open or done; returns it, or None if there was none."""
        raw = self._delete(keys=[self.keys("tasks"), self.keys("tasks", "open"), self.keys("tasks", "done")],
                           args=[str(task_id)])
        return Task.model_validate_json(raw) if raw else None

    def restore(self, task_id: int, version: Task | None, expect: Task | None = None) -> bool:
        """Put VERSION back as task TASK_ID, in the list its status belongs to (None: there was no task, so remove
        it). False when it is already so; ChangedSince when the task is no longer EXPECT (the change being undone)."""
        hash_key, open_key, done_key = self.keys("tasks"), self.keys("tasks", "open"), self.keys("tasks", "done")

        def apply(pipe: Pipeline) -> bool:
            raw = pipe.hget(hash_key, str(task_id))
            current = Task.model_validate_json(raw) if raw else None
            if current == version:
                return False
            if expect is not None and current != expect:
                raise ChangedSince(f"task #{task_id} changed again since; nothing was undone")
            pipe.multi()
            pipe.zrem(open_key, str(task_id))
            pipe.zrem(done_key, str(task_id))
            if version is None:
                pipe.hdel(hash_key, str(task_id))
                return True
            pipe.hset(hash_key, str(task_id), version.model_dump_json())
            if version.status == "done":
                pipe.zadd(done_key, {str(task_id): version.done_at or version.created_at})
            else:
                pipe.zadd(open_key, {str(task_id): version.created_at})
            return True

        return bool(self.redis.transaction(apply, hash_key, value_from_callable=True))

    def done_since(self, ts: float) -> list[Task]:
        ids = self.redis.zrangebyscore(self.keys("tasks", "done"), ts, "+inf")
        rows = self.redis.hmget(self.keys("tasks"), ids) if ids else []
        return [Task.model_validate_json(r) for r in rows if r]


    def matching(self, test: Callable[[str], bool]) -> list[Task]:
        """Every task, open or done, whose title passes `test` (for forgetting)."""
        return [t for t in (Task.model_validate_json(raw) for _, raw in self.redis.hscan_iter(self.keys("tasks"))) if test(t.title)]
