"""The event loop's Redis client: redis-py's asyncio client, with commands packed in C by hiredis.

redis-py's sync connections pack commands with hiredis when it is installed; its asyncio ones still
encode each argument in Python. A gateway acknowledgement sends one script call of ~170 arguments
(a job and its events), where that Python packing measured ~115 µs against ~16 µs in hiredis."""
from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.connection import BlockingConnectionPool, Connection


class PackedConnection(Connection):
    def pack_command(self, *args: Any) -> list[bytes]:
        name = args[0]
        if isinstance(name, str) and " " in name:  # "SCRIPT LOAD" goes on the wire as two words
            args = (*name.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:  # a type hiredis does not know: redis-py's own encoding decides
            return super().pack_command(*args)


def async_redis(url: str, max_connections: int = 64, wait_s: float = 10.0, **options: Any) -> AsyncRedis:
    """An asyncio client for `url` whose TCP connections pack with hiredis (unix sockets as redis-py has them).

    The pool *waits* for a free connection (up to `wait_s`) once `max_connections` are busy. redis-py's
    default asyncio pool instead fails at once past 100, so a burst of a few hundred simultaneous
    deliveries (a Slack retry storm) was answered with 503s."""
    pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=wait_s, **options)
    if pool.connection_class is Connection:
        pool.connection_class = PackedConnection
    return AsyncRedis(connection_pool=pool)
