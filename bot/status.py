"""What the operator sees while a message waits for a worker: the channel's own "working on it" sign
at once (typing, a reaction, a line in the console), and a notice in the thread when no worker has
started the job after JOB_STALL_NOTICE_S, so a stopped worker pool is never silence.

One asyncio task per accepted message, on the gateway's loop: it waits, then makes one read. The tasks
are capped in number and cancelled when the gateway stops; a message over the cap is still handled,
only not watched."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from kernel.messages import Inbound, Reply
from kernel.outbox import Outbox
from memory.events import EventLog

log = logging.getLogger("deputy.status")

# a channel's "working on it" sign for one accepted message: (inbound, trace id)
Working = Callable[[Inbound, str], Awaitable[None]]

STALLED = "No worker has picked this up yet — it's queued and nothing is lost; I'll answer as soon as one is running."
# the stall notice's reply id is `<trace>.stalled`: one per message, however often it is checked
STALLED_SUFFIX = "stalled"
STARTED = b"job.started"


class StatusWatch:
    """Shows each channel's working sign for an accepted message and notices a job no worker starts."""

    def __init__(self, redis: Redis, aredis: AsyncRedis, events: EventLog, stall_s: float,
                 working: dict[str, Working], limit: int = 1_000, sign_timeout_s: float = 2.0) -> None:
        self.redis = redis
        self.aredis = aredis
        self.events = events
        self.outbox = Outbox(redis)
        # 0 or less: no stall notices (the working signs still show)
        self.stall_s = stall_s
        self.working = working
        self.limit = limit
        self.sign_timeout_s = sign_timeout_s
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def watching(self) -> int:
        """Messages followed right now."""
        return len(self._tasks)

    def watch(self, inbound: Inbound, trace_id: str) -> None:
        """Follow one message the gateway took (returns at once)."""
        if inbound.channel not in self.working:
            return  # a channel without threads to show anything in (inbound hooks)
        if len(self._tasks) >= self.limit:
            log.warning("status: %d messages watched already; %s goes unwatched", len(self._tasks), trace_id)
            return
        task = asyncio.create_task(self._follow(inbound, trace_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _follow(self, inbound: Inbound, trace_id: str) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + self.stall_s
        try:
            await asyncio.wait_for(self.working[inbound.channel](inbound, trace_id), self.sign_timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a sign that failed to show changes nothing about the request
            log.info("status: %s could not show it is working on %s: %r", inbound.channel, trace_id, err)
        if self.stall_s <= 0:
            return
        await asyncio.sleep(max(0.0, due - loop.time()))
        try:
            if not await self.started(trace_id):
                await asyncio.to_thread(self._notice, inbound, trace_id)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # Redis away: the message itself is safe in the queue
            log.warning("status: could not check whether %s started: %r", trace_id, err)

    async def started(self, trace_id: str) -> bool:
        """Whether a worker has started this request's job (the worker records job.started first)."""
        entries = await self.aredis.xrange(self.events.keys("trace", trace_id))
        return any(fields.get(b"kind") == STARTED for _, fields in entries)

    def _notice(self, inbound: Inbound, trace_id: str) -> None:
        reply = Reply(reply_id=f"{trace_id}.{STALLED_SUFFIX}", channel=inbound.channel, thread_id=inbound.thread_id,
                      text=STALLED, trace_id=trace_id, reply_to=inbound.reply_to)
        with self.redis.pipeline(transaction=True) as pipe:
            self.outbox.put(reply, pipe=pipe)
            self.events.record(trace_id, "job.stalled", actor="gateway", pipe=pipe, after_s=self.stall_s, reply_id=reply.reply_id)
            pipe.execute()
