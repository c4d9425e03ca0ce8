"""The event loop's Redis client: redis-py's asyncio client, with commands packed in C by hiredis.

redis-py's sync connections pack commands with hiredis when it is installed; its asyncio ones still
encode each argument in Python. A gateway acknowledgement sends one script call of ~170 arguments
(a job and its events), where that Python packing measured ~115 µs against ~16 µs in hiredis."""
from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.connection import Connection


class PackedConnection(Connection):
    def pack_command(self, *args: Any) -> list[bytes]:
        name = args[0]
        if isinstance(name, str) and " " in name:  # "SCRIPT LOAD" goes on the wire as two words
            args = (*name.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:  # a type hiredis does not know: redis-py's own encoding decides
            return super().pack_command(*args)


def async_redis(url: str, **options: Any) -> AsyncRedis:
    """An asyncio client for `url` whose TCP connections pack with hiredis (unix sockets as redis-py has them)."""
    client = AsyncRedis.from_url(url, **options)
    pool = client.connection_pool
    if pool.connection_class is Connection:
        pool.connection_class = PackedConnection
    return client
