"""The event loop's Redis client packs with hiredis and still speaks every command redis-py sends."""
from __future__ import annotations

import asyncio

from bot.async_redis import PackedConnection, async_redis
from bot.gateway import Gateway
from bot.messages import Inbound
from jobs.queues import JobQueues


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


async def test_concurrent_copies_through_the_event_loop_give_one_job(redis, redis_url):
    client = async_redis(redis_url)
    gw = Gateway(redis, "acme", {"console": frozenset({"op"})}, JobQueues(redis, retries=1, backoff=[0]), aredis=client)
    try:
        copy = Inbound(channel="console", event_id="loop-storm", user_id="op", thread_id="t", text="/task list")
        acks = await asyncio.gather(*(gw.accept_async(copy) for _ in range(5)))
        assert sorted(a.status for a in acks) == ["accepted"] + ["duplicate"] * 4
        assert len({a.trace_id for a in acks}) == 1
        assert redis.llen("rq:queue:interactive") == 1
        stranger = copy.model_copy(update={"user_id": "someone", "event_id": "loop-stranger"})
        assert (await gw.accept_async(stranger)).status == "refused"
        assert redis.llen("rq:queue:interactive") == 1
    finally:
        await client.aclose()


async def test_a_burst_larger_than_the_pool_waits_for_connections_instead_of_failing(redis, redis_url):
    """300 deliveries at once (a retry storm) on a pool of 64: every one is taken, none gets a 'Too many connections'."""
    client = async_redis(redis_url)
    gw = Gateway(redis, "acme", {"console": frozenset({"op"})}, JobQueues(redis, retries=1, backoff=[0]), aredis=client)
    try:
        burst = [Inbound(channel="console", event_id=f"burst-{i}", user_id="op", thread_id="t", text="/task list") for i in range(300)]
        acks = await asyncio.gather(*(gw.accept_async(d) for d in burst))
        assert {a.status for a in acks} == {"accepted"}
        assert redis.llen("rq:queue:interactive") == 300
    finally:
        await client.aclose()
