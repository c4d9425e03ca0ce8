"""Exactly-once writes: the batch and its mark land together, whichever path runs them."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator, Callable

import pytest
from redis.client import Pipeline

from bot.async_redis import async_redis
from kernel.messages import Reply
from bot.once import OnceWriter
from kernel.outbox import STREAM, Outbox


@pytest.fixture
async def writer(redis, redis_url) -> AsyncIterator[OnceWriter]:  # type: ignore[no-untyped-def]
    aredis = async_redis(redis_url)
    yield OnceWriter(redis, aredis)
    await aredis.aclose()


async def write(writer: OnceWriter, key: str, mark: str, build: Callable[[Pipeline], None]) -> str | None:
    return await writer.commit(key, mark, 60, writer.prepare(build))


def _plain(redis, tag: str):  # type: ignore[no-untyped-def]
    def build(pipe) -> None:  # type: ignore[no-untyped-def]
        pipe.rpush("once:list", tag)
        pipe.hset("once:hash", mapping={tag: b"\x00bytes\xff", "n": 3})
    return build


async def test_the_first_write_lands_and_a_repeat_learns_its_mark(writer, redis):
    assert await write(writer, "once:key", "done:first", _plain(redis, "a")) is None
    assert await write(writer, "once:key", "done:second", _plain(redis, "b")) == "done:first"
    assert redis.lrange("once:list", 0, -1) == [b"a"]
    assert redis.hget("once:hash", "a") == b"\x00bytes\xff"
    assert redis.get("once:key") == b"done:first"
    assert 0 < redis.ttl("once:key") <= 60


async def test_racing_writers_commit_exactly_one_batch(writer, redis):
    results = await asyncio.gather(*(write(writer, "once:race", f"done:{i}", _plain(redis, str(i))) for i in range(8)))
    winners = [r for r in results if r is None]
    assert len(winners) == 1
    assert redis.llen("once:list") == 1
    winner = redis.lrange("once:list", 0, -1)[0].decode()
    assert set(r for r in results if r is not None) == {f"done:{winner}"}


async def test_a_batch_that_calls_a_script_takes_the_watched_path_with_the_same_outcome(writer, redis):
    outbox = Outbox(redis)

    def scripted(i: int) -> Callable[[Pipeline], None]:
        def build(pipe) -> None:  # type: ignore[no-untyped-def]
            pipe.rpush("once:list", str(i))
            outbox.put(Reply(reply_id=f"r{i}", channel="console", thread_id="t", text=f"reply {i}", trace_id=str(i)), pipe=pipe)
        return build

    results = await asyncio.gather(*(write(writer, "once:scripted", f"refused:{i}", scripted(i)) for i in range(6)))
    assert results.count(None) == 1
    assert redis.llen("once:list") == 1 and len(redis.xrange(STREAM)) == 1


async def test_a_pending_claim_left_by_an_older_gateway_is_free(writer, redis):
    redis.set("once:old", "pending:abc:1700000000.000")
    assert await write(writer, "once:old", "done:new", _plain(redis, "x")) is None
    assert redis.get("once:old") == b"done:new"


async def test_a_script_cache_flush_is_survived(writer, redis):
    redis.script_flush()  # as after a Redis restart
    assert await write(writer, "once:flushed", "done:1", _plain(redis, "f")) is None
    assert redis.lrange("once:list", 0, -1) == [b"f"]
