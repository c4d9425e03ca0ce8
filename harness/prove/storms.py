"""Duplicate storms: the same delivery many times at once, and many clicks on one approval card.

A platform that redelivers (Slack retries, Telegram re-sends an update, a person double-clicks) must
give one job and one answer; twenty clicks on one approval must give one execution."""
from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from harness.prove.cluster import Cluster, PrivateRedis
from harness.prove.effects import Mailbox
from harness.prove.platform import ConsolePlatform, Delivery, seen, session, wait_for_replies
from harness.prove.report import Row
from memory.events import EventLog


def console_duplicates(folder: Path, messages: int, copies: int = 4) -> Row:
    """Each console message delivered `copies` times at once: one job and one reply each."""
    redis = PrivateRedis(folder / "redis").start()
    try:
        with Cluster(folder, redis, {"JOB_RETRY_BACKOFF": "1"}, workers=2).start() as cluster:
            started = time.time()
            originals = [Delivery(i, f"/remember storm note {i}", f"dup-{i}") for i in range(messages)]
            copies_of = [[Delivery(d.index, d.text, d.thread_id, client_id=d.client_id) for _ in range(copies)] for d in originals]

            async def drive() -> None:
                platform = ConsolePlatform(cluster.url, cluster.console_token)
                async with session() as http:
                    await asyncio.gather(*(platform.deliver(http, c) for group in copies_of for c in group))

            asyncio.run(drive())
            firsts = [next((c for c in group if c.ack == "accepted"), group[0]) for group in copies_of]
            client = cluster.redis.client()
            wait_for_replies(client, cluster.workspace, firsts, timeout_s=60)
            time.sleep(1.0)  # a second reply, if there were one, would be on its way by now
            replies = [seen(client, cluster.workspace, d.thread_id).count for d in originals]
            enqueued = len(EventLog(client, cluster.workspace).since(started, kinds=["job.enqueued"]))
    finally:
        redis.stop()
    deliveries = [c for group in copies_of for c in group]
    accepted = [sum(c.ack == "accepted" for c in group) for group in copies_of]
    checks = []
    if enqueued != messages:
        checks.append(f"{enqueued} jobs for {messages} messages")
    return Row(
        scenario=f"console duplicate storm (x{copies})",
        attempts=len(deliveries),
        lost=sum(r == 0 for r in replies),
        duplicated=sum(max(0, r - 1) for r in replies) + sum(max(0, a - 1) for a in accepted),
        errors_5xx=sum(d.count(500, 599) for d in deliveries),
        failed_checks=tuple(checks),
        notes=f"{messages} messages x {copies} concurrent deliveries → {enqueued} jobs, {sum(replies)} replies",
        details={"jobs": enqueued, "replies": sum(replies), "duplicate_acks": sum(c.ack == "duplicate" for c in deliveries)},
    )


def approval_card(cluster: Cluster, thread_id: str, timeout_s: float) -> dict[str, Any] | None:
    """The approval card Deputy posted in the thread, once it is there (None after `timeout_s`)."""
    client = cluster.redis.client()
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        for message in seen(client, cluster.workspace, thread_id).replies:
            card = message.get("card") or {}
            if any(b.get("action") == "approval.approve" for b in card.get("buttons", [])):
                return card
        time.sleep(0.2)
    return None


def approval_click_storm(folder: Path, approvals: int, clicks: int = 20) -> Row:
    """`clicks` simultaneous approve clicks on each of `approvals` cards: one email each."""
    with Mailbox() as mail:
        redis = PrivateRedis(folder / "redis").start()
        try:
            with Cluster(folder, redis, {**mail.settings(), "JOB_RETRY_BACKOFF": "1"}, workers=2).start() as cluster:
                platform = ConsolePlatform(cluster.url, cluster.console_token)
                requests = [Delivery(i, f"/email ana@acme.example storm-{i} | Clicked {clicks} times.", f"click-{i}")
                            for i in range(approvals)]
                cards: list[dict[str, Any] | None] = []
                all_clicks: list[Delivery] = []

                async def ask() -> None:
                    async with session() as http:
                        await asyncio.gather(*(platform.deliver(http, r) for r in requests))

                async def click(card: dict[str, Any], thread_id: str) -> list[Delivery]:
                    value = next(b["value"] for b in card["buttons"] if b["action"] == "approval.approve")
                    batch = [Delivery(n, "", thread_id) for n in range(clicks)]
                    async with session(limit=clicks) as http:
                        await asyncio.gather(*(platform.deliver(http, d, path="api/decisions", body={
                            "thread_id": thread_id, "action": "approval.approve", "value": value,
                            "client_id": uuid.uuid4().hex}) for d in batch))
                    return batch

                asyncio.run(ask())
                for r in requests:
                    card = approval_card(cluster, r.thread_id, 60)
                    cards.append(card)
                    if card is not None:
                        all_clicks += asyncio.run(click(card, r.thread_id))
                deadline = time.time() + 60
                while time.time() < deadline and len(mail.messages) < sum(c is not None for c in cards):
                    time.sleep(0.2)
                time.sleep(1.5)  # room for a second execution, if there were one
                client = cluster.redis.client()
                events = EventLog(client, cluster.workspace)
                decided = sum(1 for r in requests if r.trace_id
                              for e in events.timeline(r.trace_id) if e.kind == "approval.decided")
        finally:
            redis.stop()
    sent = mail.by_subject()
    checks = []
    if any(c is None for c in cards):
        checks.append(f"{sum(c is None for c in cards)} approval cards never appeared")
    if decided != approvals:
        checks.append(f"{decided} approvals decided for {approvals} cards")
    return Row(
        scenario=f"approval click storm (x{clicks})",
        attempts=approvals * clicks,
        lost=sum(sent.get(f"storm-{i}", 0) == 0 for i in range(approvals)),
        duplicated=sum(max(0, n - 1) for n in sent.values()),
        errors_5xx=sum(d.count(500, 599) for d in [*requests, *all_clicks]),
        failed_checks=tuple(checks),
        notes=f"{approvals} cards x {clicks} simultaneous clicks → {decided} decisions, {len(mail.messages)} emails",
        details={"decisions": decided, "emails": len(mail.messages)},
    )
