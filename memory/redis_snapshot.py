"""A workspace's Redis keys as a backup holds them: each key's DUMP and its expiry, one JSON line per key.

A Redis database serves one workspace (kernel/keys.py, claim_database), so besides the workspace's own keys
(dp:<workspace>:*) a backup takes the database's shared ones that hold its state: the outbox stream and its
delivery marks, the de-duplication marks, and rq's queues, jobs and registries (scheduled reminders are rq jobs).
Left out are the keys of processes that will not exist on the new machine (rq's workers, their running jobs and
locks, liveness beats, a migration's lock) and the database's claim, which restore makes afresh."""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import IO, Iterable, Iterator, TypeVar

from redis import Redis

from kernel.keys import Keys
from memory.schema import lock_key

# the database's shared keys that belong to the workspace it serves
SHARED = (Keys.global_("outbox"), Keys.global_("outbox", "*"), Keys.global_("seen", "*"), "rq:*")
# keys of running processes: meaningless on another machine
PROCESS_KEYS = ("rq:worker:", "rq:workers", "rq:wip:", "rq:executions:", "rq:scheduler", "rq:clean_", "rq:cron")
BATCH = 500
T = TypeVar("T")


@dataclass
class Restored:
    keys: int = 0
    # keys whose expiry passed between the backup and the restore: not restored
    expired: int = 0
    by_store: dict[str, int] = field(default_factory=dict)


def workspace_keys(redis: Redis, workspace: str) -> Iterator[str]:
    """Every key a backup of `workspace` holds, each once."""
    seen: set[str] = {lock_key(workspace)}
    for pattern in (Keys(workspace)("*"), *SHARED):
        for raw in redis.scan_iter(match=pattern, count=1_000):
            key = raw.decode() if isinstance(raw, bytes) else raw
            if key not in seen and not key.startswith(PROCESS_KEYS):
                seen.add(key)
                yield key


def dump(redis: Redis, workspace: str, out: IO[str]) -> dict[str, int]:
    """Write one line per key: {"key", "expire_at_ms" (None: never), "dump" (base64)}; the count of keys per store.
    Each batch is read in one transaction, so the keys of a batch are of the same moment."""
    counts: dict[str, int] = {}
    for batch in _batches(workspace_keys(redis, workspace)):
        with redis.pipeline(transaction=True) as pipe:
            for key in batch:
                pipe.dump(key)
                pipe.pttl(key)
            replies = pipe.execute()
        now_ms = int(time.time() * 1000)
        for key, payload, ttl in zip(batch, replies[::2], replies[1::2]):
            if payload is None:
                continue  # gone between the scan and the dump
            expire_at = now_ms + int(ttl) if int(ttl) > 0 else None
            out.write(json.dumps({"key": key, "expire_at_ms": expire_at, "dump": base64.b64encode(payload).decode()}) + "\n")
            counts[store_of(key)] = counts.get(store_of(key), 0) + 1
    return counts


def load(redis: Redis, lines: Iterable[str], replace: bool = False) -> Restored:
    """RESTORE every line's key with its expiry (an absolute time, so a key keeps the life it had left at the
    backup's moment, counted in real time). `replace` overwrites keys that exist; without it one that exists fails."""
    restored = Restored()
    for batch in _batches(json.loads(line) for line in lines if line.strip()):
        now_ms = int(time.time() * 1000)
        with redis.pipeline(transaction=False) as pipe:
            for entry in batch:
                expire_at = entry["expire_at_ms"]
                if expire_at is not None and expire_at <= now_ms:
                    restored.expired += 1
                    continue
                pipe.restore(entry["key"], expire_at or 0, base64.b64decode(entry["dump"]), replace=replace, absttl=expire_at is not None)
                restored.keys += 1
                store = store_of(entry["key"])
                restored.by_store[store] = restored.by_store.get(store, 0) + 1
            pipe.execute()
    return restored


def delete(redis: Redis, workspace: str) -> int:
    """Remove every key a backup of `workspace` would hold (a forced restore starts from none of them)."""
    removed = 0
    for batch in _batches(workspace_keys(redis, workspace)):
        removed += int(redis.delete(*batch))
    return removed


def store_of(key: str) -> str:
    """The part of Deputy a key belongs to, for counts: "tasks" for dp:ws:tasks:…, "outbox", "rq"."""
    parts = key.split(":")
    if parts[0] != "dp" or len(parts) < 3:
        return parts[0]
    return parts[2]


def _batches(items: Iterable[T]) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
