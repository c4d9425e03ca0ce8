"""A platform, as the gateway sees one: it delivers each message with its own id and retries the same
delivery on a 5xx or no answer until it gets a 2xx or 4xx. And what the operator then sees."""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from redis import Redis

from harness.bench.harness import bearer
from bot.channels.console import ConsoleThreads
from bot.status import STALLED_SUFFIX
from memory.events import EventLog


@dataclass
class Delivery:
    """One message a platform must get acknowledged: the same client id on every retry."""

    index: int
    text: str
    thread_id: str
    client_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    first_at: float = 0.0
    acked_at: float | None = None
    statuses: list[int] = field(default_factory=list)
    # connection refused, reset, or no answer in time: the platform saw nothing
    no_answer: int = 0
    trace_id: str | None = None
    ack: str | None = None

    @property
    def acked(self) -> bool:
        return self.acked_at is not None

    def count(self, low: int, high: int) -> int:
        return sum(low <= s <= high for s in self.statuses)


class ConsolePlatform:
    """Posts console messages like Slack or Telegram post events: retries with backoff, same id.
    Logged in as a script is, with the gateway's CONSOLE_TOKEN."""

    def __init__(self, base_url: str, token: str = "", give_up_after_s: float = 90.0,
                 backoff_s: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0), timeout_s: float = 10.0) -> None:
        self.base_url = base_url
        self.headers = bearer(token) if token else {}
        self.give_up_after_s = give_up_after_s
        self.backoff_s = backoff_s
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def deliver(self, session: aiohttp.ClientSession, delivery: Delivery, path: str = "api/messages",
                      body: dict[str, Any] | None = None) -> Delivery:
        delivery.first_at = time.time()
        body = body or {"thread_id": delivery.thread_id, "text": delivery.text, "client_id": delivery.client_id}
        attempt = 0
        while time.time() - delivery.first_at < self.give_up_after_s:
            try:
                async with session.post(self.base_url + path, json=body, headers=self.headers, timeout=self.timeout) as resp:
                    delivery.statuses.append(resp.status)
                    if resp.status < 500:
                        if resp.status < 300:
                            data = await resp.json()
                            delivery.trace_id, delivery.ack = data.get("trace_id"), data.get("status")
                            delivery.acked_at = time.time()
                        return delivery
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError):
                delivery.no_answer += 1
            await asyncio.sleep(self.backoff_s[min(attempt, len(self.backoff_s) - 1)])
            attempt += 1
        return delivery


def session(limit: int = 100) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit, force_close=False))


@dataclass(frozen=True)
class Seen:
    """What the operator sees in one thread: Deputy's messages (a card updated in place counts once)."""

    replies: tuple[dict[str, Any], ...]

    @property
    def count(self) -> int:
        return len(self.replies)

    @property
    def failed(self) -> bool:
        return any(not r.get("ok", True) for r in self.replies)


def seen(redis: Redis, workspace: str, thread_id: str) -> Seen:
    messages = ConsoleThreads(redis, workspace).messages(thread_id)
    # "no worker has picked this up yet" says the request is waiting; it is no answer to it
    return Seen(tuple(m for m in messages if m.get("role") == "deputy" and not str(m.get("id", "")).endswith(f".{STALLED_SUFFIX}")))


def wait_for_replies(redis: Redis, workspace: str, deliveries: list[Delivery], timeout_s: float, per_thread: int = 1) -> float:
    """Wait until every acknowledged delivery's thread shows `per_thread` replies; returns seconds waited."""
    started = time.time()
    pending = [d for d in deliveries if d.acked]
    while pending and time.time() - started < timeout_s:
        pending = [d for d in pending if seen(redis, workspace, d.thread_id).count < per_thread]
        if pending:
            time.sleep(0.25)
    return time.time() - started


def delivered_at(redis: Redis, workspace: str, trace_id: str) -> float | None:
    """When the trace's last reply reached the operator (the dispatcher's reply.delivered event)."""
    times = [e.ts for e in EventLog(redis, workspace).timeline(trace_id) if e.kind == "reply.delivered"]
    return max(times) if times else None


def kinds(redis: Redis, workspace: str, trace_id: str) -> list[str]:
    return [e.kind for e in EventLog(redis, workspace).timeline(trace_id)]
