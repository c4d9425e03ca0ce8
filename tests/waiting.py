"""Waiting on a condition instead of sleeping a fixed time: a test ends as soon as what it waits for
is true, and a slow machine only makes it slower, never wrong."""
from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, TypeVar

from redis import Redis

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01, what: str = "") -> T:
    """The predicate's first truthy value; AssertionError if it stays falsy for `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or getattr(predicate, '__name__', 'a condition')}")
        time.sleep(interval)


async def until(predicate: Callable[[], T | Awaitable[T]], timeout: float = 10.0, interval: float = 0.01, what: str = "") -> T:
    """wait_for for the event loop: the predicate may be a plain function or a coroutine function."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or getattr(predicate, '__name__', 'a condition')}")
        await asyncio.sleep(interval)


def redis_now(redis: Redis) -> float:
    """Redis's own clock, in seconds: the one effect leases and breaker cool-downs are measured on."""
    seconds, micros = redis.time()
    return seconds + micros / 1e6


def wait_past(redis: Redis, moment: float, timeout: float = 10.0) -> None:
    """Until Redis's clock has passed `moment` (a lease's end, a cool-down's end)."""
    wait_for(lambda: redis_now(redis) > moment, timeout, what=f"Redis's clock to pass {moment:.3f}")
