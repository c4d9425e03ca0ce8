"""Refused traffic (forged webhooks, cross-site console requests, strangers' messages), counted in
a bounded structure so that unauthenticated requests can neither grow Redis nor flood the audit log.

Three keys per workspace, whatever the traffic: a hash of counts per "channel:reason" (reasons are
Deputy's own fixed words, never the sender's), a sorted set of the most recent sources (trimmed to
`MAX_SOURCES`), and a per-minute hash of attempts per source that expires on its own (the rate
limit). One audit event is written per source and reason per minute, not one per request.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Callable

from redis.asyncio import Redis as AsyncRedis

from memory.events import EventLog
from memory.keys import Keys

log = logging.getLogger("deputy.refusals")

MAX_SOURCES = 200
TRACE_ID = "refused"
_SAFE = re.compile(r"[^a-z0-9_.-]+")


def _word(text: str, limit: int = 48) -> str:
    """A bounded, attacker-proof field name: lower case, no separators, cut short."""
    return _SAFE.sub("-", text.lower())[:limit] or "-"


@dataclass(frozen=True)
class Verdict:
    count: int
    limited: bool


class Refusals:
    def __init__(self, aredis: AsyncRedis, events: EventLog, workspace: str, per_source_per_min: int = 60,
                 clock: Callable[[], float] = time.time) -> None:
        self.aredis = aredis
        self.events = events
        self.keys = Keys(workspace)
        self.per_source_per_min = per_source_per_min
        self.clock = clock

    @property
    def counts_key(self) -> str:
        return self.keys("refusals")

    async def refuse(self, channel: str, reason: str, source: str | None) -> Verdict:
        """Count one refused request; `limited` says its source is over the per-minute limit."""
        now = self.clock()
        minute = int(now // 60)
        src = _word(source or "unknown", 64)
        field = f"{_word(channel, 24)}:{_word(reason)}"
        window = self.keys("refusals", "window", minute)
        async with self.aredis.pipeline(transaction=True) as pipe:
            pipe.hincrby(self.counts_key, field, 1)
            pipe.hincrby(window, f"{src}|{field}", 1)
            pipe.hincrby(window, src, 1)
            pipe.expire(window, 120)
            pipe.zadd(self.keys("refusals", "sources"), {src: now})
            pipe.zremrangebyrank(self.keys("refusals", "sources"), 0, -MAX_SOURCES - 1)
            total, first, per_source, *_ = await pipe.execute()
        if first == 1:
            log.info("refused %s request from %s: %s", channel, src, reason)
            await asyncio.to_thread(self.events.record, TRACE_ID, "request.refused", src, None, True,
                                    channel=channel, reason=reason, source=src)
        return Verdict(count=int(total), limited=int(per_source) > self.per_source_per_min)

    async def counts(self) -> dict[str, int]:
        raw = await self.aredis.hgetall(self.counts_key)
        return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
