"""The event loop's Redis client packs with hiredis, speaks every command redis-py sends, and makes
a burst wait for a connection rather than fail."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

import pytest

from bot.async_redis import PackedConnection, async_redis
from bot.refusals import Refusals
from memory.events import EventLog
from bot.gateway import Gateway
from bot.server import gateway_recognizer
from kernel.messages import Inbound
from jobs.queues import JobQueues


@pytest.fixture
async def loop_gateway(redis, redis_url) -> AsyncIterator[Gateway]:  # type: ignore[no-untyped-def]
    client = async_redis(redis_url)
    events = EventLog(redis, "acme")
    yield Gateway(redis=redis, aredis=client, operators={"console": frozenset({"op"})}, queues=JobQueues(redis, retries=1, backoff=[0]),
                  recognizer=gateway_recognizer(), events=events, refusals=Refusals(client, events, "acme"))
    await client.aclose()


def message(event_id: str, user: str = "op") -> Inbound:
    return Inbound(channel="console", event_id=event_id, user_id=user, thread_id="t", text="/task list")


async def test_commands_scripts_and_odd_types_round_trip(redis_url):
    client = async_redis(redis_url)
    try:
        assert client.connection_pool.connection_class is PackedConnection
        await client.hset("ar:h", mapping={"bytes": b"\x00\xff", "int": 7, "float": 1.5, "text": "héllo"})
        assert await client.hgetall("ar:h") == {b"bytes": b"\x00\xff", b"int": b"7", b"float": b"1.5", b"text": "héllo".encode()}
        sha = await client.script_load("return ARGV[1]")  # a two-word command name
        assert await client.evalsha(sha, 0, "x") == b"x"
        assert await client.register_script("return #ARGV")(args=list(range(200))) == 200
    finally:
        await client.aclose()


async def test_concurrent_copies_through_the_event_loop_give_one_job(loop_gateway, redis):
    acks = await asyncio.gather(*(loop_gateway.accept(message("loop-storm")) for _ in range(5)))
    assert sorted(a.status for a in acks) == ["accepted"] + ["duplicate"] * 4
    assert len({a.trace_id for a in acks}) == 1
    assert redis.llen("rq:queue:interactive") == 1
    assert (await loop_gateway.accept(message("loop-stranger", user="someone"))).status == "refused"
    assert redis.llen("rq:queue:interactive") == 1


async def test_a_burst_larger_than_the_pool_waits_for_connections_instead_of_failing(loop_gateway, redis):
    """300 deliveries at once (a retry storm) on a pool of 64: every one is taken, none gets a 'Too many connections'."""
    acks = await asyncio.gather(*(loop_gateway.accept(message(f"burst-{i}")) for i in range(300)))
    assert {a.status for a in acks} == {"accepted"}
    assert redis.llen("rq:queue:interactive") == 300
