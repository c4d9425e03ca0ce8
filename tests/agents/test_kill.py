"""A worker killed with SIGKILL mid-step: the job is retried and the email still goes out exactly once."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

from redis import Redis
from rq import Queue
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from agents.run_store import Writes
from jobs.queues import QUEUES
from jobs.worker import run_burst
from memory.events import EventLog
from tests.waiting import redis_now, wait_for, wait_past

BLOCK = "test:block-after-record"
REACHED = "test:recorded"


def _worker(url: str) -> None:
    run_burst(Redis.from_url(url))


def _requeue_abandoned(redis: Redis) -> int:
    """What rq's maintenance does for a dead worker's job, without waiting for it."""
    moved = 0
    for name in QUEUES:
        registry = StartedJobRegistry(name, connection=redis, serializer=JSONSerializer)
        before = registry.count
        registry.cleanup(timestamp=time.time() + 10_000)
        moved += before - registry.count
    return moved


async def test_kill_after_the_effect_is_recorded_sends_once_and_reports_it(deputy, smtp, settings, monkeypatch):
    """The ledger's record and the step's checkpoint land in one transaction; a worker killed right after it
    (before the reply is queued) leaves a retry nothing to send, only to report."""
    original = Writes.flush

    def flush_then_hang(self):  # type: ignore[no-untyped-def]
        original(self)
        redis = Redis.from_url(settings.redis_url)
        recorded = [k for k in redis.scan_iter(f"dp:{settings.workspace}:effect:*") if b'"done"' in (redis.get(k) or b"")]
        if redis.get(BLOCK) and recorded:
            redis.set(REACHED, "1")
            time.sleep(60)  # the kill lands here: effect done, recorded and checkpointed; no reply yet

    monkeypatch.setattr(Writes, "flush", flush_then_hang)
    await deputy.say("/email ana@acme.io Contract | Signed copy attached.")
    await deputy.work()
    card = (await deputy.messages())[-1]["card"]
    resp = await deputy.client.post("/api/decisions", json={"thread_id": "t1", "action": "approval.approve",
                                                            "value": card["buttons"][0]["value"], "client_id": "k1"})
    assert resp.status == 202

    deputy.redis.set(BLOCK, "1")
    child = mp.get_context("fork").Process(target=_worker, args=(settings.redis_url,))
    child.start()
    wait_for(lambda: deputy.redis.get(REACHED), timeout=30, what="the worker to reach the effect")
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert len(smtp.messages) == 1

    deputy.redis.delete(BLOCK)
    assert _requeue_abandoned(deputy.redis) == 1
    assert sum(Queue(q, connection=deputy.redis).count for q in QUEUES) == 1
    await deputy.work()

    assert len(smtp.messages) == 1
    events = EventLog(deputy.redis, settings.workspace).recent(500)
    # the killed worker's step.done went out with its checkpoint; the retry ran nothing again
    assert [e.data["replayed"] for e in events if e.kind == "step.done"] == [False]
    assert [e.data["status"] for e in events if e.kind == "run.finished"][-1] == "done"
    assert "Sent “Contract” to ana@acme.io" in (await deputy.messages())[-1]["text"]


async def test_kill_between_the_effect_and_the_record_is_reported_in_doubt_not_resent(deputy, smtp, settings, monkeypatch):
    """The one gap a ledger cannot close: the server took the message, the record never happened.
    SMTP servers deliver a repeat even with the same Message-ID, so the retry must not send again:
    the operator is told to check, and exactly one message exists."""
    monkeypatch.setenv("EFFECT_LEASE_S", "1")
    from integrations import email_smtp

    original = email_smtp.send_email

    def send_then_hang(config, args, key):  # type: ignore[no-untyped-def]
        sent = original(config, args, key)
        redis = Redis.from_url(settings.redis_url)
        if redis.get(BLOCK):
            redis.set(REACHED, "1")
            time.sleep(60)
        return sent

    monkeypatch.setattr(email_smtp, "send_email", send_then_hang)
    await deputy.say("/email ana@acme.io Contract | Signed copy attached.")
    await deputy.work()
    card = (await deputy.messages())[-1]["card"]
    await deputy.client.post("/api/decisions", json={"thread_id": "t1", "action": "approval.approve",
                                                     "value": card["buttons"][0]["value"], "client_id": "k2"})
    deputy.redis.set(BLOCK, "1")
    child = mp.get_context("fork").Process(target=_worker, args=(settings.redis_url,))
    child.start()
    wait_for(lambda: deputy.redis.get(REACHED), timeout=30, what="the worker to reach the effect")
    claimed_by = redis_now(deputy.redis)  # the effect's lease was taken before the send
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    deputy.redis.delete(BLOCK)
    wait_past(deputy.redis, claimed_by + 1)  # the dead worker's lease (EFFECT_LEASE_S=1) lapses
    _requeue_abandoned(deputy.redis)
    await deputy.work()

    assert len(smtp.messages) == 1
    done = [e for e in EventLog(deputy.redis, settings.workspace).recent(500) if e.kind == "step.done"]
    assert done == []
    told = (await deputy.messages())[-1]["text"]
    assert "may or may not have happened" in told and "Check it by hand" in told
