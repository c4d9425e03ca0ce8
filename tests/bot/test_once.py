"""Exactly-once writes: the batch and its mark land together, whichever path runs them."""
from __future__ import annotations

import threading

from kernel.messages import Reply
from bot.once import OnceWriter
from kernel.outbox import STREAM, Outbox


def _plain(redis, tag: str):  # type: ignore[no-untyped-def]
    def build(pipe) -> None:  # type: ignore[no-untyped-def]
        pipe.rpush("once:list", tag)
        pipe.hset("once:hash", mapping={tag: b"\x00bytes\xff", "n": 3})
    return build


def test_the_first_write_lands_and_a_repeat_learns_its_mark(redis):
    writer = OnceWriter(redis)
    assert writer.write("once:key", "done:first", 60, _plain(redis, "a")) is None
    assert writer.write("once:key", "done:second", 60, _plain(redis, "b")) == "done:first"
    assert redis.lrange("once:list", 0, -1) == [b"a"]
    assert redis.hget("once:hash", "a") == b"\x00bytes\xff"
    assert redis.get("once:key") == b"done:first"
    assert 0 < redis.ttl("once:key") <= 60


def test_racing_writers_commit_exactly_one_batch(redis):
    writer = OnceWriter(redis)
    results: list[str | None] = []
    barrier = threading.Barrier(8)

    def go(i: int) -> None:
        barrier.wait()
        results.append(writer.write("once:race", f"done:{i}", 60, _plain(redis, str(i))))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    winners = [r for r in results if r is None]
    assert len(winners) == 1
    assert redis.llen("once:list") == 1
    winner = redis.lrange("once:list", 0, -1)[0].decode()
    assert set(r for r in results if r is not None) == {f"done:{winner}"}


def test_a_batch_that_calls_a_script_takes_the_watched_path_with_the_same_outcome(redis):
    writer, outbox = OnceWriter(redis), Outbox(redis)
    results: list[str | None] = []

    def go(i: int) -> None:
        def build(pipe) -> None:  # type: ignore[no-untyped-def]
            pipe.rpush("once:list", str(i))
            outbox.put(Reply(reply_id=f"r{i}", channel="console", thread_id="t", text=f"reply {i}", trace_id=str(i)), pipe=pipe)
        results.append(writer.write("once:scripted", f"refused:{i}", 60, build))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results.count(None) == 1
    assert redis.llen("once:list") == 1 and len(redis.xrange(STREAM)) == 1


def test_a_pending_claim_left_by_an_older_gateway_is_free(redis):
    redis.set("once:old", "pending:abc:1700000000.000")
    assert OnceWriter(redis).write("once:old", "done:new", 60, _plain(redis, "x")) is None
    assert redis.get("once:old") == b"done:new"


def test_a_script_cache_flush_is_survived(redis):
    writer = OnceWriter(redis)
    redis.script_flush()  # as after a Redis restart
    assert writer.write("once:flushed", "done:1", 60, _plain(redis, "f")) is None
    assert redis.lrange("once:list", 0, -1) == [b"f"]
