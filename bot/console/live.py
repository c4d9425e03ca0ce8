"""The console's live updates: one Redis subscription per gateway process, fanned out to every open
stream, so streams never take connections from the pool that platform deliveries need, and capped
in number (in total and per login) so that held-open streams cannot starve anything else."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Callable

from redis.asyncio import Redis as AsyncRedis

log = logging.getLogger("deputy.console")

QUEUE_SIZE = 256


class TooManyStreams(Exception):
    """Over the total or the per-login cap; the message says which."""


class LiveHub:
    def __init__(self, connect: Callable[[], AsyncRedis], channel: str, max_streams: int, per_session: int) -> None:
        self.connect = connect
        self.channel = channel
        self.max_streams = max_streams
        self.per_session = per_session
        self.queues: set[asyncio.Queue[str | None]] = set()
        self.per_owner: Counter[str] = Counter()

    @property
    def open_streams(self) -> int:
        return len(self.queues)

    def open(self, owner: str) -> asyncio.Queue[str | None]:
        """A queue of live updates (None: the stream fell behind and must start over); `close` it after."""
        if len(self.queues) >= self.max_streams:
            raise TooManyStreams(f"{self.max_streams} live streams are open already")
        if self.per_owner[owner] >= self.per_session:
            raise TooManyStreams(f"this login has {self.per_session} live streams open already")
        queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_SIZE)
        self.queues.add(queue)
        self.per_owner[owner] += 1
        return queue

    def close(self, owner: str, queue: asyncio.Queue[str | None]) -> None:
        self.queues.discard(queue)
        self.per_owner[owner] -= 1
        if self.per_owner[owner] <= 0:
            del self.per_owner[owner]

    def publish(self, data: str) -> None:
        for queue in list(self.queues):
            try:
                queue.put_nowait(data)
            except asyncio.QueueFull:  # a stream that cannot keep up starts over (the page reloads its thread)
                self.queues.discard(queue)
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(None)

    async def run(self) -> None:
        """Hold the one subscription for the process's life, reconnecting after Redis hiccups."""
        delay = 0.5
        while True:
            client = self.connect()
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    delay = 0.5
                    async for item in pubsub.listen():
                        if item.get("type") == "message":
                            data = item["data"]
                            self.publish(data.decode() if isinstance(data, bytes) else data)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # Redis went away: the streams stay open and catch up after
                log.warning("console live updates: subscription lost (%s); retrying in %.1fs", err, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            finally:
                await client.aclose()
