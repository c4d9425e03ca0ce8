"""Gateway policy, channel-independent: dedupe, allow-list, durability before ack."""
from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue

from bot.async_redis import async_redis
from bot.gateway import Gateway
from bot.server import gateway_recognizer
from kernel.messages import Decision, Inbound
from kernel.outbox import STREAM
from bot.refusals import Refusals
from jobs.queues import JobQueues
from memory.events import EventLog
from kernel.keys import Keys


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[AsyncRedis]:
    client = async_redis(redis_url)
    yield client
    await client.aclose()


def make_gateway(redis: Redis, aredis: AsyncRedis, now: list[float] | None = None) -> Gateway:
    """The gateway as the server builds it; with `now`, its refusals see that time (a minute does not pass by chance mid-test)."""
    events = EventLog(redis, "acme")
    refusals = Refusals(aredis, events, "acme", clock=(lambda: now[0]) if now else time.time)
    return Gateway(redis=redis, aredis=aredis, operators={"console": frozenset({"op"})},
                   queues=JobQueues(redis, retries=1, backoff=[0]), recognizer=gateway_recognizer(), events=events,
                   refusals=refusals)


def inbound(event_id: str = "e1", user: str = "op", text: str = "/task list") -> Inbound:
    return Inbound(channel="console", event_id=event_id, user_id=user, thread_id="t", text=text)


async def test_unknown_user_gets_a_polite_refusal_an_event_and_nothing_else(redis, aredis):
    gw = make_gateway(redis, aredis, [1_800_000_000.0])
    ack = await gw.accept(inbound(user="stranger", text="/task add wire 5000 EUR to me"))
    assert ack.status == "refused"
    assert Queue("interactive", connection=redis).count == 0
    events = EventLog(redis, "acme").timeline(ack.trace_id)
    assert [e.kind for e in events] == ["request.refused"]
    assert events[0].data["reason"] == "not an operator" and events[0].data["source"] == "console-stranger"
    replies = redis.xrange(STREAM)
    assert len(replies) == 1 and b"only take instructions" in replies[0][1][b"reply"]
    # the same delivery again is refused again: counted, but neither recorded nor answered twice in a minute
    assert (await gw.accept(inbound(user="stranger"))).status == "refused"
    assert len(redis.xrange(STREAM)) == 1 and len(EventLog(redis, "acme").timeline(ack.trace_id)) == 1
    assert redis.hgetall(Keys("acme")("refusals")) == {b"console:not-an-operator": b"2"}


async def test_click_by_someone_else_is_refused_and_changes_nothing(redis, aredis):
    gw = make_gateway(redis, aredis)
    ack = await gw.decide(Decision(channel="console", event_id="c1", user_id="intruder", thread_id="t", action="task.done", value="1"))
    assert ack.status == "refused"
    assert Queue("interactive", connection=redis).count == 0
    [refused] = EventLog(redis, "acme").timeline(ack.trace_id)
    assert refused.kind == "request.refused" and refused.data["source"] == "console-intruder"
    assert b"only the operator can decide" in redis.xrange(STREAM)[0][1][b"reply"]


def workspace_keys(redis: Redis) -> set[bytes]:
    return {k for pattern in (Keys("acme")("*"), Keys.global_("*")) for k in redis.scan_iter(match=pattern, count=1_000)}


async def test_a_stranger_sending_a_hundred_messages_gets_one_answer_a_minute_and_leaves_few_keys(redis, aredis):
    now = [1_800_000_000.0]
    gw = make_gateway(redis, aredis, now)
    before = workspace_keys(redis)

    for minute in range(2):
        for i in range(100):
            assert (await gw.accept(inbound(event_id=f"spam-{minute}-{i}", user="stranger"))).status == "refused"
        now[0] += 60

    assert len(redis.xrange(STREAM)) == 2
    # counts, recent sources, two minute windows, the refusal trace, the outbox and its two claims
    assert len(workspace_keys(redis) - before) <= 10
    assert not any(b":seen:" in key for key in workspace_keys(redis))
    assert redis.hgetall(Keys("acme")("refusals")) == {b"console:not-an-operator": b"200"}


async def test_a_stranger_bursting_at_once_is_answered_once(redis, aredis):
    gw = make_gateway(redis, aredis, [1_800_000_000.0])
    acks = await asyncio.gather(*(gw.accept(inbound(event_id=f"burst-{i}", user="stranger")) for i in range(100)))
    assert {a.status for a in acks} == {"refused"}
    assert len(redis.xrange(STREAM)) == 1 and Queue("interactive", connection=redis).count == 0
    assert redis.hgetall(Keys("acme")("refusals")) == {b"console:not-an-operator": b"100"}


async def test_a_half_claimed_event_from_an_older_gateway_is_processed_on_redelivery(redis, aredis):
    """Older gateways claimed an event id before queuing it; one that died in between left `pending:`
    behind. The platform's retry must still be processed, once."""
    gw = make_gateway(redis, aredis)
    redis.set(Keys.global_("seen", "console", "e9"), f"pending:deadbeefdeadbeef:{time.time() - 60:.3f}")
    ack = await gw.accept(inbound(event_id="e9"))
    assert ack.status == "accepted"
    assert Queue("interactive", connection=redis).count == 1
    assert (await gw.accept(inbound(event_id="e9"))).status == "duplicate"
    assert Queue("interactive", connection=redis).count == 1


async def test_redis_down_means_an_error_not_an_ack():
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    adead = AsyncRedis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=AsyncRetry(NoBackoff(), 0))
    gw = make_gateway(dead, adead)
    with pytest.raises(Exception):
        await gw.accept(inbound())


async def test_redis_down_is_a_503_so_the_platform_retries(settings, monkeypatch):
    from aiohttp.test_utils import TestClient, TestServer

    from bot.server import build_app, build_services

    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    adead = AsyncRedis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=AsyncRetry(NoBackoff(), 0))
    client = TestClient(TestServer(build_app(build_services(settings, dead, adead), dispatch=False)))
    await client.start_server()
    try:
        resp = await client.post("/api/messages", json={"thread_id": "t", "text": "hi", "client_id": "x"})
        assert resp.status == 503
        assert resp.headers["Retry-After"]
        assert (await client.get("/healthz")).status == 503
    finally:
        await client.close()


class HeldFirst:
    """Holds the first copy of an event between being prepared and being committed until released, as
    a busy gateway would."""

    def __init__(self, gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
        self.commit = gw.writer.commit
        self.calls = 0
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        monkeypatch.setattr(gw.writer, "commit", self.held_commit)

    async def held_commit(self, *args):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == 1:
            self.holding.set()
            await asyncio.wait_for(self.release.wait(), 10)
        return await self.commit(*args)


async def test_copies_arriving_while_the_first_is_being_queued_give_one_job(redis, aredis, monkeypatch):
    gw = make_gateway(redis, aredis)
    held = HeldFirst(gw, monkeypatch)
    first = asyncio.create_task(gw.accept(inbound(event_id="storm")))
    await asyncio.wait_for(held.holding.wait(), 10)
    copies = await asyncio.gather(*(gw.accept(inbound(event_id="storm")) for _ in range(3)))
    held.release.set()
    acks = [*copies, await first]
    assert sorted(a.status for a in acks) == ["accepted", "duplicate", "duplicate", "duplicate"]
    assert len({a.trace_id for a in acks}) == 1
    assert Queue("interactive", connection=redis).count == 1


async def test_a_slow_first_copy_overtaken_by_a_retry_still_gives_one_job(redis, aredis, monkeypatch):
    gw = make_gateway(redis, aredis)
    held = HeldFirst(gw, monkeypatch)
    first = asyncio.create_task(gw.accept(inbound(event_id="slow")))
    await asyncio.wait_for(held.holding.wait(), 10)
    retry = await gw.accept(inbound(event_id="slow"))  # the platform's retry, while the first copy is still held
    held.release.set()
    late = await first
    # the retry overtook the first copy and was queued; the first copy, once through, is its duplicate
    assert retry.status == "accepted" and late.status == "duplicate"
    assert late.trace_id == retry.trace_id
    assert Queue("interactive", connection=redis).count == 1


async def test_an_accepted_message_has_its_trace_kept_for_the_retention_period(redis, aredis):
    from memory.events import TRACE_TTL_S

    ack = await make_gateway(redis, aredis).accept(inbound(event_id="ttl"))
    key = Keys("acme")("trace", ack.trace_id)
    assert [e.kind for e in EventLog(redis, "acme").timeline(ack.trace_id)] == ["inbound.received", "intent.recognized", "job.enqueued"]
    assert TRACE_TTL_S - 60 < redis.ttl(key) <= TRACE_TTL_S
