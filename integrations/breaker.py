"""A circuit breaker kept in Redis, so every worker sees the same state of a connector.

closed → (N consecutive failures) → open: calls fail fast → (cool-down over) → half-open: one probe
call goes through; its success closes the breaker, its failure opens it for another cool-down."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

from redis import Redis

from integrations.capability import CapabilityError
from kernel.keys import Keys

BreakerState = Literal["closed", "open", "half_open"]

# Returns {verdict, seconds until a probe is allowed}. verdict: allow | probe | open
ALLOW = """
local now = redis.call('TIME')
local now_s = tonumber(now[1]) + tonumber(now[2]) / 1e6
local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
if opened == 0 then return {'allow', '0'} end
local wait = opened + tonumber(ARGV[1]) - now_s
if wait > 0 then return {'open', tostring(wait)} end
-- half-open: exactly one caller gets to probe until it reports back (or its probe lease lapses)
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return {'probe', '0'} end
return {'open', '0'}
"""

FAILURE = """
local now = redis.call('TIME')
local now_s = tonumber(now[1]) + tonumber(now[2]) / 1e6
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
if failures >= tonumber(ARGV[1]) or opened > 0 then
  redis.call('HSET', KEYS[1], 'opened_at', tostring(now_s))
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""


class CircuitOpen(CapabilityError):
    """The connector failed repeatedly and is resting; calls fail fast until the cool-down ends."""

    def __init__(self, name: str, retry_in_s: float) -> None:
        # nothing retries a failed step by itself: the operator is the one who asks again
        wait = f"in about {max(1, round(retry_in_s))} s" if retry_in_s > 0 else "in a moment"
        super().__init__(f"{name} is failing repeatedly, so I stopped calling it for now; ask me again {wait}.")
        self.name = name
        self.retry_in_s = retry_in_s


@dataclass(frozen=True)
class BreakerStatus:
    state: BreakerState
    failures: int


class CircuitBreaker:
    def __init__(self, redis: Redis, name: str, workspace: str = "_", failure_threshold: int = 5, cooldown_s: float = 30.0) -> None:
        self.redis = redis
        self.name = name
        keys = Keys(workspace)
        self.key = keys("breaker", name)
        self.probe_key = keys("breaker", name, "probe")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._allow = redis.register_script(ALLOW)
        self._failure = redis.register_script(FAILURE)

    def allow(self) -> None:
        """Return if a call may go ahead; raise CircuitOpen if the breaker is open."""
        verdict, wait = self._allow(
            keys=[self.key, self.probe_key], args=[self.cooldown_s, int(max(self.cooldown_s, 1.0) * 1000)]
        )
        verdict = verdict.decode() if isinstance(verdict, bytes) else verdict
        if verdict == "open":
            raise CircuitOpen(self.name, float(wait))

    def success(self) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.key, self.probe_key)
        pipe.execute()

    def failure(self) -> bool:
        """Count one failed call; returns True when the breaker is (now) open."""
        return bool(self._failure(keys=[self.key, self.probe_key], args=[self.failure_threshold]))

    def status(self) -> BreakerStatus:
        raw = self.redis.hgetall(self.key)
        now_s, now_us = self.redis.time()
        return breaker_status(raw, now_s + now_us / 1e6, self.cooldown_s)


def breaker_status(raw: Mapping[bytes | str, bytes | str], now_s: float, cooldown_s: float) -> BreakerStatus:
    """A breaker's state from its hash (empty: closed, nothing failed) at `now_s` on Redis's clock."""
    fields = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in raw.items()}
    failures = int(fields.get("failures", 0))
    opened = float(fields.get("opened_at", 0) or 0)
    if not opened:
        return BreakerStatus("closed", failures)
    if opened + cooldown_s > now_s:
        return BreakerStatus("open", failures)
    return BreakerStatus("half_open", failures)


class Breakers:
    """One breaker per capability name, all with the same settings."""

    def __init__(self, redis: Redis, workspace: str = "_", failure_threshold: int = 5, cooldown_s: float = 30.0) -> None:
        self.redis = redis
        self.workspace = workspace
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s

    def for_(self, name: str) -> CircuitBreaker:
        return CircuitBreaker(self.redis, name, self.workspace, self.failure_threshold, self.cooldown_s)
