"""Exactly-once writes: a delivery's events, job and dedupe mark land together, or not at all.

`OnceWriter.prepare(build)` collects the commands `build` queues on a pipeline; `commit(key, mark,
ttl_s, batch)` runs them only if `key` holds no mark yet, setting the mark in the same atomic step.
Whoever loses the race learns the mark that won (for a delivery: the trace id of the first copy).

The common path is one round trip: a Lua script checks the key, replays the queued commands and
sets the mark. Redis runs a script atomically, so no WATCH is needed and no half-claimed state
exists for a crashed gateway to leave behind. A batch that itself calls a script (Lua cannot call
EVALSHA) falls back to WATCH / GET / MULTI-EXEC, with the same outcome in three round trips."""
from __future__ import annotations

import asyncio
from typing import Callable

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.client import Pipeline
from redis.exceptions import WatchError

# A claim written as `pending:<trace>:<since>` by an older gateway never became a job: treat it as free.
ONCE = """
local seen = redis.call('GET', KEYS[1])
if seen and string.sub(seen, 1, 8) ~= 'pending:' then return seen end
local i = 3
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""


class OnceWriter:
    """`prepare` a batch, then `commit` it from the event loop (no thread, one await)."""

    def __init__(self, redis: Redis, aredis: AsyncRedis) -> None:
        self.redis = redis
        self._once = aredis.register_script(ONCE)

    def prepare(self, build: Callable[[Pipeline], None]) -> Pipeline:
        """The batch of commands `build` queues; nothing is sent yet."""
        batch = self.redis.pipeline(transaction=True)
        batch.multi()  # rq joins a caller's pipeline only once MULTI is explicit
        build(batch)
        return batch

    async def commit(self, key: str, mark: str, ttl_s: int, batch: Pipeline) -> str | None:
        """Run `batch` and set `key` to `mark`, unless `key` is already marked.

        Returns None when this call's writes were made, else the mark found there."""
        if _calls_scripts(batch):
            return await asyncio.to_thread(self._watched, key, mark, ttl_s, batch)
        return _text(await self._once(keys=[key], args=_script_args(mark, ttl_s, batch)))

    def _watched(self, key: str, mark: str, ttl_s: int, batch: Pipeline) -> str | None:
        queued, scripts = list(batch.command_stack), set(batch.scripts)
        batch.reset()
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    seen = _text(pipe.get(key))
                    if seen is not None and not seen.startswith("pending:"):
                        return seen
                    pipe.multi()
                    pipe.command_stack.extend(queued)
                    pipe.scripts.update(scripts)
                    pipe.set(key, mark, ex=ttl_s)
                    pipe.execute()
                    return None
                except WatchError:
                    continue  # someone marked or freed the key meanwhile: look again


def _calls_scripts(batch: Pipeline) -> bool:
    return bool(batch.scripts) or any(str(args[0]).upper() in ("EVALSHA", "EVAL") for args, _ in batch.command_stack)


def _script_args(mark: str, ttl_s: int, batch: Pipeline) -> list[object]:
    """The mark, its TTL, then each command as its length followed by its words."""
    args: list[object] = [mark, ttl_s]
    for command, _options in batch.command_stack:
        args.append(len(command))
        args.extend(command)
    batch.reset()
    return args


def _text(raw: bytes | str | None) -> str | None:
    if raw is None:
        return None
    return raw.decode() if isinstance(raw, bytes) else raw
