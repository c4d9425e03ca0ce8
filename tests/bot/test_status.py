"""While a message waits: the console shows Deputy is working on it, and says so when no worker has
picked it up, and the reply still comes once a worker runs."""
from __future__ import annotations

import asyncio
import json

import pytest
from rq import Queue
from rq.serializers import JSONSerializer

from bot.channels.console import ConsoleThreads
from bot.status import STALLED
from kernel.settings import load_settings
from tests.bot.conftest import logged_in_deputy
from tests.waiting import until


@pytest.fixture
async def impatient(settings, redis, monkeypatch):
    """A console whose stall notice comes after a fifth of a second."""
    monkeypatch.setenv("JOB_STALL_NOTICE_S", "0.2")
    async with logged_in_deputy(load_settings(), redis) as deputy:
        yield deputy


async def _next_event(stream, kind: str) -> dict:
    while True:
        line = (await asyncio.wait_for(stream.content.readline(), 10)).decode()
        if line.startswith("data: ") and (event := json.loads(line[6:]))["type"] == kind:
            return event


async def test_the_live_stream_says_deputy_is_working_on_a_message_as_soon_as_it_is_taken(deputy):
    live = ConsoleThreads(deputy.redis, "default").live_channel
    await until(lambda: deputy.redis.pubsub_numsub(live)[0][1] >= 1, what="the live subscription")
    stream = await deputy.client.get("/api/stream")
    assert (await stream.content.readline()).startswith(b": connected")
    ack = await deputy.say("/remember the VAT number is ES-B12345678", thread_id="abc")
    status = await _next_event(stream, "status")
    assert status == {"type": "status", "state": "working", "thread_id": "abc", "trace_id": ack["trace_id"]}
    stream.close()


async def test_with_no_worker_the_thread_says_so_and_the_reply_still_comes_once_one_runs(impatient):
    ack = await impatient.say("/task add renew the domain")

    async def notice() -> list[dict]:
        await impatient.deliver()
        return [m for m in await impatient.messages() if m["role"] == "deputy"]

    [stalled] = await until(notice, timeout=10, what="the stall notice")
    assert stalled["text"] == STALLED
    assert stalled["trace_id"] == ack["trace_id"]

    await impatient.work()
    messages = await impatient.messages()
    assert [m["text"] for m in messages[1:]] == [STALLED, "Added task #1: renew the domain"]


async def test_a_message_a_worker_started_in_time_gets_no_notice(impatient):
    await impatient.say("/remember Ana prefers calls after 10am")
    await impatient.work()
    status = impatient.services.gateway.status
    assert status is not None
    await until(lambda: status.watching == 0, timeout=10, what="the check to be made")
    await impatient.deliver()
    assert [m["text"][:6] for m in await impatient.messages()] == ["/remem", "Noted."]


async def test_the_browsers_time_zone_travels_with_the_message(deputy):
    resp = await deputy.client.post("/api/messages", json={"thread_id": "t1", "text": "/task list", "client_id": "tz-1",
                                                           "timezone": "Europe/Madrid"})
    assert resp.status == 202
    [job] = Queue("interactive", connection=deputy.redis, serializer=JSONSerializer).jobs
    assert job.args[0]["inbound"]["timezone"] == "Europe/Madrid"
