"""The dispatcher: replies left pending by a dead dispatcher (or lost acks) are delivered later, once."""
from __future__ import annotations

import asyncio

from redis.asyncio import Redis as AsyncRedis

from bot.channels.console import ConsoleSender, ConsoleThreads
from bot.dispatcher import Dispatcher
from kernel.messages import Reply
from kernel.outbox import GROUP, STREAM, Outbox
from memory.events import EventLog
from tests.waiting import until


async def test_a_reply_read_but_never_acknowledged_is_delivered_by_a_live_dispatcher(redis, redis_url):
    aredis = AsyncRedis.from_url(redis_url)
    threads = ConsoleThreads(redis, "ws")
    events = EventLog(redis, "ws")
    dispatcher = Dispatcher(aredis, {"console": ConsoleSender(threads)}, events, reclaim_idle_ms=0, reclaim_every_s=0.05)
    await dispatcher.setup()
    Outbox(redis).put(Reply(reply_id="r1", channel="console", thread_id="t", text="hello", trace_id="tr1"))
    # a dispatcher that read it and died before sending or acknowledging
    await aredis.xreadgroup(GROUP, "dead-consumer", {STREAM: ">"}, count=10)
    runner = asyncio.create_task(dispatcher.run())
    try:
        await until(lambda: threads.messages("t"), timeout=5, what="the reply in the thread")
    finally:
        runner.cancel()
    assert [m["text"] for m in threads.messages("t")] == ["hello"]
    assert (await aredis.xpending(STREAM, GROUP))["pending"] == 0
    assert [e.kind for e in events.timeline("tr1")] == ["reply.delivered"]
    await aredis.aclose()


async def test_a_reply_in_doubt_is_not_sent_again_but_recorded(redis, redis_url):
    aredis = AsyncRedis.from_url(redis_url)
    threads = ConsoleThreads(redis, "ws")
    events = EventLog(redis, "ws")
    dispatcher = Dispatcher(aredis, {"console": ConsoleSender(threads)}, events)
    reply = Reply(reply_id="r2", channel="console", thread_id="t", text="maybe sent", trace_id="tr2")
    # the previous dispatcher claimed it and died while the platform call was in flight
    await aredis.set("dp:_:outbox:delivered:r2", "sending")
    assert await dispatcher.deliver(reply) is False
    assert threads.messages("t") == []
    assert [e.kind for e in events.timeline("tr2")] == ["reply.in_doubt"]
    await aredis.aclose()
