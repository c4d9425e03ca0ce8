"""The dispatcher: reads the outbox and delivers each reply through its channel's Sender.

At-least-once from the stream (consumer group, pending entries reclaimed after a crash), at most once
per reply on the platform (a delivered marker is claimed before sending)."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ResponseError

from bot.channels import PermanentDeliveryError, Sender
from kernel.messages import Reply
from kernel.outbox import GROUP, STREAM
from memory.events import EventLog
from kernel.keys import Keys

log = logging.getLogger("deputy.dispatcher")


def _consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(eq=False)
class Dispatcher:
    redis: AsyncRedis
    senders: Mapping[str, Sender]
    events: EventLog
    attempts: int = 5
    backoff_s: float = 0.5
    reclaim_idle_ms: int = 30_000
    reclaim_every_s: float = 15.0
    # this process in the outbox's consumer group
    consumer: str = field(init=False, default_factory=_consumer_name)
    # when the dispatcher last showed progress, a pass of its loop or a reply handled (time.monotonic(); None
    # before it started): /healthz reads it
    last_pass: float | None = field(init=False, default=None)

    async def setup(self) -> None:
        try:
            await self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise

    async def run(self) -> None:
        """Deliver until cancelled."""
        last_reclaim = 0.0
        ready = False
        while True:
            self.last_pass = time.monotonic()
            try:
                # set up inside the loop: a Redis that is not there yet is waited for, not the end of delivery
                if not ready:
                    await self.setup()
                    ready = True
                # replies read but never acknowledged (a dead dispatcher, or Redis lost mid-delivery)
                # are taken over once idle; the delivered marker stops a second send
                if time.monotonic() - last_reclaim >= self.reclaim_every_s:
                    await self.reclaim()
                    last_reclaim = time.monotonic()
                await self.drain(block_ms=1_000)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # keep delivering whatever one bad batch did
                log.exception("dispatcher batch failed; continuing")
                await asyncio.sleep(1)
                if "NOGROUP" in str(err):  # Redis came back without our stream (no persistence)
                    ready = False

    async def reclaim(self) -> int:
        """Take over replies another (dead) dispatcher read but never acknowledged."""
        _, claimed, _ = await self.redis.xautoclaim(STREAM, GROUP, self.consumer, min_idle_time=self.reclaim_idle_ms, start_id="0-0", count=1000)
        for entry_id, fields in claimed:
            await self._handle(entry_id, fields)
        return len(claimed)

    async def drain(self, block_ms: int | None = None, count: int = 100) -> int:
        """Deliver what is waiting (blocking up to block_ms for the first); returns how many."""
        rows = await self.redis.xreadgroup(GROUP, self.consumer, {STREAM: ">"}, count=count, block=block_ms)
        handled = 0
        for _, entries in rows or []:
            # one thread's replies go out in the order they were queued; threads go in parallel
            by_thread: dict[str, list[tuple[Any, Any]]] = {}
            for entry_id, fields in entries:
                by_thread.setdefault(_thread_of(fields), []).append((entry_id, fields))
            await asyncio.gather(*(self._in_order(batch) for batch in by_thread.values()))
            handled += len(entries)
        return handled

    async def _in_order(self, batch: list[tuple[Any, Any]]) -> None:
        for entry_id, fields in batch:
            await self._handle(entry_id, fields)

    async def _handle(self, entry_id: bytes | str, fields: Mapping[bytes | str, bytes | str]) -> None:
        self.last_pass = time.monotonic()
        raw = fields.get(b"reply") or fields.get("reply")
        try:
            reply = Reply.model_validate_json(raw)  # type: ignore[arg-type]
        except Exception:
            log.error("dropping unreadable outbox entry %s", entry_id)
            await self.redis.xack(STREAM, GROUP, entry_id)
            return
        await self.deliver(reply)
        await self.redis.xack(STREAM, GROUP, entry_id)

    async def deliver(self, reply: Reply) -> bool:
        marker = Keys.global_("outbox", "delivered", reply.reply_id)
        if not await self.redis.set(marker, "sending", nx=True, ex=7 * 86_400):
            state = await self.redis.get(marker)
            if state == b"sending":
                # a dispatcher died while sending it: it may or may not have arrived. Sending again
                # could say it twice, so it is not resent; the event makes it visible instead.
                await self._record(reply, "reply.in_doubt")
            log.info("reply %s was already delivered (or in doubt); not sending again", reply.reply_id)
            return False
        sender = self.senders.get(reply.channel)
        if sender is None:
            await self._record(reply, "reply.failed", error=f"no channel '{reply.channel}' is configured")
            return False
        last_error = ""
        for attempt in range(1, self.attempts + 1):
            try:
                await sender.send(reply)
            except PermanentDeliveryError as err:
                last_error = str(err)
                break
            except Exception as err:  # platform or network trouble: back off and try again
                last_error = f"{type(err).__name__}: {err}"
                log.warning("delivery of %s failed (attempt %d/%d): %s", reply.reply_id, attempt, self.attempts, last_error)
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
                continue
            await self.redis.set(marker, "delivered", ex=7 * 86_400)
            await self._record(reply, "reply.delivered", attempt=attempt)
            return True
        await self.redis.set(marker, "failed", ex=7 * 86_400)
        await self._record(reply, "reply.failed", error=last_error[:300], attempts=self.attempts)
        return False

    async def _record(self, reply: Reply, kind: str, **data: object) -> None:
        await asyncio.to_thread(
            self.events.record, reply.trace_id or reply.reply_id, kind, "dispatcher",
            None, channel=reply.channel, reply_id=reply.reply_id, **data,
        )



def _thread_of(fields: Mapping[bytes | str, bytes | str]) -> str:
    raw = fields.get(b"reply") or fields.get("reply") or b"{}"
    try:
        reply = json.loads(raw)
        return f"{reply.get('channel')}:{reply.get('thread_id')}"
    except (ValueError, AttributeError):
        return ""
