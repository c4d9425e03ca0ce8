"""Refused traffic (forged webhooks, cross-site console requests, strangers' messages), counted in
a bounded structure so that unauthenticated requests can neither grow Redis nor flood the audit log.

Three keys per workspace, whatever the traffic: a hash of counts per "channel:reason" (reasons are
Deputy's own fixed words, never the sender's), a sorted set of the most recent sources (trimmed to
`MAX_SOURCES`), and a per-minute hash of attempts per source that expires on its own (the rate
limit). One audit event is written per source and reason per minute, not one per request, and at
most `NOTED_PER_MIN` per channel and reason in a minute however many sources take part; all of them
under the one trace `TRACE_ID`, so refusals add no trace keys either.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import web
from redis.asyncio import Redis as AsyncRedis

from memory.events import EventLog
from kernel.keys import Keys

log = logging.getLogger("deputy.refusals")

MAX_SOURCES = 200
# past this many fields in a minute's window (sources that change address every request), newcomers
# share one overflow source: the window's memory stays bounded and the overflow is soon rate limited
MAX_WINDOW_FIELDS = 20_000
NOTED_PER_MIN = 10
WINDOW_S = 60
TRACE_ID = "refused"
_SAFE = re.compile(r"[^a-z0-9_.-]+")

# One atomic round trip. KEYS: counts, window, sources. ARGV: field, source, now, the caps.
# The window's field names cannot collide: a source never contains '|' or '!'.
COUNT = """
local src = ARGV[2]
if redis.call('HEXISTS', KEYS[2], src) == 0 and redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[5]) then
  src = 'overflow'
end
local total = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
local mine = redis.call('HINCRBY', KEYS[2], src .. '|' .. ARGV[1], 1)
local per_source = redis.call('HINCRBY', KEYS[2], src, 1)
redis.call('EXPIRE', KEYS[2], ARGV[7])
redis.call('ZADD', KEYS[3], ARGV[3], src)
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[4]) - 1)
local noted = 0
if mine == 1 and redis.call('HINCRBY', KEYS[2], '!noted|' .. ARGV[1], 1) <= tonumber(ARGV[6]) then
  noted = 1
end
return {total, per_source, noted}
"""


def counts_key(workspace: str) -> str:
    """The hash of refusal counts per "channel:reason" (what /metrics exports as deputy_refusals_total)."""
    return Keys(workspace)("refusals")


def _word(text: str, limit: int = 48) -> str:
    """A bounded, attacker-proof field name: lower case, no separators, cut short."""
    return _SAFE.sub("-", text.lower())[:limit] or "-"


@dataclass(frozen=True)
class Verdict:
    count: int
    limited: bool
    # this refusal was written to the audit log: its source's first for this reason this minute
    # (while the minute's cap lasts), so it is also the one worth an answer beyond a status code
    noted: bool = False
    retry_after_s: int = WINDOW_S


class Refusals:
    """Counts refused requests from the event loop: one script, one awaited round trip each."""

    def __init__(self, aredis: AsyncRedis, events: EventLog, workspace: str, per_source_per_min: int = 60,
                 clock: Callable[[], float] = time.time) -> None:
        self.aredis = aredis
        self.events = events
        self.keys = Keys(workspace)
        self.per_source_per_min = per_source_per_min
        self.clock = clock
        self._count = aredis.register_script(COUNT)

    @property
    def counts_key(self) -> str:
        return counts_key(self.keys.workspace)

    async def refuse(self, channel: str, reason: str, source: str | None) -> Verdict:
        """Count one refused request; `limited` says its source is over the per-minute limit."""
        now = self.clock()
        keys, args = self._call(now, channel, reason, source)
        verdict = self._verdict(now, await self._count(keys=keys, args=args))
        if verdict.noted:
            await asyncio.to_thread(self._note, channel, reason, str(args[1]))
        return verdict

    async def counts(self) -> dict[str, int]:
        raw = await self.aredis.hgetall(self.counts_key)
        return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}

    def _call(self, now: float, channel: str, reason: str, source: str | None) -> tuple[list[str], list[Any]]:
        field = f"{_word(channel, 24)}:{_word(reason)}"
        window = self.keys("refusals", "window", int(now // WINDOW_S))
        keys = [self.counts_key, window, self.keys("refusals", "sources")]
        return keys, [field, _word(source or "unknown", 64), repr(now), MAX_SOURCES, MAX_WINDOW_FIELDS, NOTED_PER_MIN,
                      2 * WINDOW_S]

    def _verdict(self, now: float, raw: list[int]) -> Verdict:
        total, per_source, noted = (int(x) for x in raw)
        return Verdict(count=total, limited=per_source > self.per_source_per_min, noted=bool(noted),
                       retry_after_s=max(1, WINDOW_S - int(now % WINDOW_S)))

    def _note(self, channel: str, reason: str, source: str) -> None:
        log.info("refused %s request from %s: %s", channel, source, reason)
        self.events.record(TRACE_ID, "request.refused", source, None, True, channel=channel, reason=reason, source=source)


def http_refusal(verdict: Verdict, status: type[web.HTTPException], **answer: Any) -> web.HTTPException:
    """The HTTP answer to a refused request: `status`, or 429 with Retry-After while its source is over the limit."""
    if verdict.limited:
        return web.HTTPTooManyRequests(headers={"Retry-After": str(verdict.retry_after_s)}, **answer)
    return status(**answer)
