"""Facts: versioned key → value records. A new value supersedes the old one; nothing is deleted."""
from __future__ import annotations

import time

from pydantic import BaseModel
from redis import Redis

from kernel.keys import WorkspaceStore
from memory.store import Trust

# Close the current version and append the new one in one atomic step.
# Writing the value that is already current changes nothing (retries stay idempotent).
SUPERSEDE = """
local last = redis.call('LINDEX', KEYS[1], -1)
local version = 1
if last then
  local cur = cjson.decode(last)
  if cur['valid_to'] == nil or cur['valid_to'] == cjson.null then
    if cur['value'] == ARGV[2] then return last end
    cur['valid_to'] = tonumber(ARGV[3])
    cur['superseded_by_event'] = ARGV[4]
    redis.call('LSET', KEYS[1], -1, cjson.encode(cur))
  end
  version = cur['version'] + 1
end
local rec = {key=ARGV[1], value=ARGV[2], valid_from=tonumber(ARGV[3]), valid_to=cjson.null,
             source_event=ARGV[4], version=version, author=ARGV[5], trust=ARGV[6]}
local encoded = cjson.encode(rec)
redis.call('RPUSH', KEYS[1], encoded)
redis.call('SADD', KEYS[2], ARGV[1])
return encoded
"""

RETIRE = """
local last = redis.call('LINDEX', KEYS[1], -1)
if not last then return nil end
local cur = cjson.decode(last)
if cur['valid_to'] ~= nil and cur['valid_to'] ~= cjson.null then return nil end
cur['valid_to'] = tonumber(ARGV[1])
cur['superseded_by_event'] = ARGV[2]
redis.call('LSET', KEYS[1], -1, cjson.encode(cur))
return cjson.encode(cur)
"""


class Fact(BaseModel):
    key: str
    value: str
    valid_from: float
    valid_to: float | None = None
    source_event: str = ""
    superseded_by_event: str | None = None
    version: int
    author: str = ""
    # "untrusted": the value came from someone else's text; it is not the operator's to reach
    trust: Trust = "operator"

    @property
    def current(self) -> bool:
        return self.valid_to is None


def _norm(key: str) -> str:
    key = " ".join(key.strip().lower().split())
    if not key:
        raise ValueError("a fact needs a key")
    return key


class FactStore(WorkspaceStore):
    def __init__(self, redis: Redis, workspace: str) -> None:
        super().__init__(redis, workspace)
        self._supersede = redis.register_script(SUPERSEDE)
        self._retire = redis.register_script(RETIRE)

    def set(self, key: str, value: str, source_event: str = "", author: str = "", trust: Trust = "operator") -> Fact:
        key = _norm(key)
        raw = self._supersede(
            keys=[self.keys("fact", key), self.keys("facts")],
            args=[key, value, repr(time.time()), source_event, author, trust],
        )
        return Fact.model_validate_json(raw)

    def retire(self, key: str, source_event: str = "") -> Fact | None:
        """End the current version without a successor (the history stays)."""
        raw = self._retire(keys=[self.keys("fact", _norm(key))], args=[repr(time.time()), source_event])
        return Fact.model_validate_json(raw) if raw else None

    def get(self, key: str) -> Fact | None:
        raw = self.redis.lindex(self.keys("fact", _norm(key)), -1)
        fact = Fact.model_validate_json(raw) if raw else None
        return fact if fact and fact.current else None

    def history(self, key: str) -> list[Fact]:
        return [Fact.model_validate_json(r) for r in self.redis.lrange(self.keys("fact", _norm(key)), 0, -1)]

    def as_of(self, key: str, ts: float) -> Fact | None:
        for fact in reversed(self.history(key)):
            if fact.valid_from <= ts and (fact.valid_to is None or ts < fact.valid_to):
                return fact
        return None

    def all_current(self) -> list[Fact]:
        keys = sorted(k.decode() if isinstance(k, bytes) else k for k in self.redis.smembers(self.keys("facts")))
        return [f for f in (self.get(k) for k in keys) if f]
