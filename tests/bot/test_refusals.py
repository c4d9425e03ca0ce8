"""Refused traffic is counted in a few bounded keys, rate limited per source, and noted sparingly."""
from __future__ import annotations

import asyncio
import random
from typing import AsyncIterator

import pytest
from redis import Redis

import bot.refusals
from bot.async_redis import async_redis
from bot.refusals import NOTED_PER_MIN, Refusals
from memory.events import EventLog
from kernel.keys import Keys

WORKSPACE = "acme"
NOW = 1_800_000_030.0
MIX = [("webhook", "unknown hook"), ("webhook", "bad signature"), ("telegram", "wrong secret"), ("slack", "bad signature")]


def workspace_keys(redis: Redis) -> set[bytes]:
    return {k for pattern in (Keys(WORKSPACE)("*"), Keys.global_("*")) for k in redis.scan_iter(match=pattern, count=1_000)}


@pytest.fixture
async def refusals(redis: Redis, redis_url: str) -> AsyncIterator[Refusals]:
    aredis = async_redis(redis_url)
    # a short audit stream: any flood of refusal events would push the real ones out of it
    yield Refusals(aredis, EventLog(redis, WORKSPACE, maxlen=1_100), WORKSPACE, clock=lambda: NOW)
    await aredis.aclose()


def real_events(events: EventLog, n: int) -> list[bytes]:
    with events.redis.pipeline(transaction=False) as pipe:
        for i in range(n):
            events.record(f"trace-{i}", "inbound.received", "op", pipe=pipe, text=f"message {i}")
        pipe.execute()
    return [entry_id for entry_id, _ in events.redis.xrange(events.stream)]


async def test_ten_thousand_forged_requests_leave_few_keys_and_the_audit_log_intact(refusals: Refusals, redis: Redis) -> None:
    written = real_events(refusals.events, 1_000)
    before = workspace_keys(redis)
    rng = random.Random(7)
    # most from a crowd of addresses that change all the time, some from one persistent sender
    calls = [(*MIX[i % 4], "203.0.113.9" if i % 5 == 0 else f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}")
             for i in range(10_000)]

    verdicts = []
    for start in range(0, len(calls), 500):
        verdicts += await asyncio.gather(*(refusals.refuse(*call) for call in calls[start:start + 500]))

    assert len(workspace_keys(redis) - before) <= 50
    stream = [entry_id for entry_id, _ in redis.xrange(refusals.events.stream)]
    assert stream[:1_000] == written
    assert len(stream) - 1_000 <= len(MIX) * NOTED_PER_MIN
    assert await refusals.counts() == {"webhook:unknown-hook": 2_500, "webhook:bad-signature": 2_500,
                                       "telegram:wrong-secret": 2_500, "slack:bad-signature": 2_500}
    persistent = [v for v, call in zip(verdicts, calls) if call[2] == "203.0.113.9"]
    assert sum(not v.limited for v in persistent) == 60 and all(v.retry_after_s == 30 for v in persistent)


async def test_one_note_per_source_and_reason_a_minute_and_the_next_minute_starts_afresh(redis: Redis, redis_url: str) -> None:
    now = [NOW]
    aredis = async_redis(redis_url)
    refusals = Refusals(aredis, EventLog(redis, WORKSPACE), WORKSPACE, per_source_per_min=3, clock=lambda: now[0])
    try:
        first = [await refusals.refuse("telegram", "wrong secret", "198.51.100.7") for _ in range(5)]
        other_reason = await refusals.refuse("webhook", "unknown hook", "198.51.100.7")
        now[0] += 60
        next_minute = await refusals.refuse("telegram", "wrong secret", "198.51.100.7")
    finally:
        await aredis.aclose()

    assert [v.noted for v in first] == [True, False, False, False, False]
    assert [v.limited for v in first] == [False, False, False, True, True]
    assert other_reason.noted and other_reason.limited
    assert next_minute.noted and not next_minute.limited and next_minute.count == 6
    notes = EventLog(redis, WORKSPACE).timeline(bot.refusals.TRACE_ID)
    assert [(e.data["channel"], e.data["reason"], e.actor) for e in notes] == [
        ("telegram", "wrong secret", "198.51.100.7"), ("webhook", "unknown hook", "198.51.100.7"),
        ("telegram", "wrong secret", "198.51.100.7")]


async def test_sources_are_never_key_names_and_their_text_is_tamed(refusals: Refusals, redis: Redis) -> None:
    await refusals.refuse("webhook", "unknown hook", "evil:{key}|!noted\n" + "x" * 500)

    assert not [k for k in redis.scan_iter(count=1_000) if b"evil" in k]
    [source] = redis.zrange(refusals.keys("refusals", "sources"), 0, -1)
    assert source.startswith(b"evil-key-") and len(source) == 64


async def test_a_crowd_past_the_window_cap_shares_one_overflow_source(refusals: Refusals, monkeypatch) -> None:
    monkeypatch.setattr(bot.refusals, "MAX_WINDOW_FIELDS", 20)
    verdicts = [await refusals.refuse("slack", "bad signature", f"10.0.0.{i}") for i in range(100)]

    # ten sources fill the window (two fields each); everyone after is one source, soon limited
    assert not any(v.limited for v in verdicts[:70]) and all(v.limited for v in verdicts[71:])
    assert sum(v.noted for v in verdicts) == NOTED_PER_MIN
