"""The effect ledger: each side effect claims its idempotency key before acting and records its result after.

States of a key:
  new          first claim: the caller holds a lease and acts
  in_progress  someone else holds a live lease (another worker is acting right now): try later
  stale        a lease expired without a result: the worker died between the effect and the record,
               so the effect may or may not have happened. Only a capability whose target dedupes by
               our key ("natural" idempotency: Message-ID, Idempotency-Key, CalDAV UID) may act again;
               the caller takes over the lease.
  done         the effect happened; result holds the recorded output JSON, returned instead of acting
"""
from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from redis import Redis

from kernel.keys import WorkspaceStore

ClaimState = Literal["new", "in_progress", "stale", "done"]

# Redis's own clock decides lease expiry, so workers on machines with skewed clocks agree.
CLAIM = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local raw = redis.call('GET', KEYS[1])
local lease_ms = tonumber(ARGV[2])
if not raw then
  redis.call('SET', KEYS[1], cjson.encode({state='in_progress', owner=ARGV[1], lease_until=now_ms + lease_ms, claims=1}),
             'EX', ARGV[3])
  return {'new', ''}
end
local rec = cjson.decode(raw)
if rec['state'] == 'done' then return {'done', rec['result']} end
if rec['lease_until'] > now_ms then return {'in_progress', ''} end
rec['owner'] = ARGV[1]
rec['lease_until'] = now_ms + lease_ms
rec['claims'] = rec['claims'] + 1
redis.call('SET', KEYS[1], cjson.encode(rec), 'EX', ARGV[3])
return {'stale', ''}
"""

# Only the lease holder may give a claim back, and never once it is done.
RELEASE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local rec = cjson.decode(raw)
if rec['state'] == 'done' or rec['owner'] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


@dataclass(frozen=True)
class Claim:
    key: str
    state: ClaimState
    # the recorded output JSON when state is "done"
    result: str | None = None
    # who holds the lease (new or stale claims): only they may release it
    token: str = ""


def _token() -> str:
    # names the worker in the record, so a stuck lease says whose it was
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class EffectLedger(WorkspaceStore):
    def __init__(self, redis: Redis, workspace: str, lease_s: float = 120.0, ttl_s: int = 30 * 86_400) -> None:
        super().__init__(redis, workspace)
        self.lease_ms = int(lease_s * 1000)
        self.ttl_s = ttl_s
        self._claim = redis.register_script(CLAIM)
        self._release = redis.register_script(RELEASE)

    def _key(self, key: str) -> str:
        return self.keys("effect", key)

    def claim(self, key: str) -> Claim:
        """Atomically take the key (see the module docstring for what each state means)."""
        token = _token()
        state, result = self._claim(keys=[self._key(key)], args=[token, self.lease_ms, self.ttl_s])
        state = state.decode() if isinstance(state, bytes) else state
        result = result.decode() if isinstance(result, bytes) else result
        if state == "done":
            return Claim(key=key, state="done", result=result)
        return Claim(key=key, state=state, token=token if state in ("new", "stale") else "")

    def record(self, key: str, result_json: str, pipe: Any = None) -> None:
        """The effect happened: store its output; every later claim of the key returns it.

        With `pipe`, the record joins the caller's transaction (the step's checkpoint), sent when it executes."""
        # a plain SET, not a script: a script inside a caller's pipeline costs an extra round trip
        value = json.dumps({"state": "done", "result": result_json}, separators=(",", ":"))
        (pipe if pipe is not None else self.redis).set(self._key(key), value, ex=self.ttl_s)

    def release(self, claim: Claim) -> bool:
        """The effect certainly did not happen (the target refused it): let a later try act."""
        return bool(self._release(keys=[self._key(claim.key)], args=[claim.token]))

    def result(self, key: str) -> str | None:
        raw = self.redis.get(self._key(key))
        if not raw:
            return None
        rec = json.loads(raw)
        return rec.get("result") if rec.get("state") == "done" else None
