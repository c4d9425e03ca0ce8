"""`deputy up`'s console link, printed once a worker can answer free text: a link that opens onto a
Deputy still loading its intent classifier would make the user's first sentence the slow one. The
gateway serves from the start (commands, webhooks); only the printed link waits."""
from __future__ import annotations

import asyncio
import time
from typing import Callable

from jobs.heartbeat import Heartbeats

# the link is printed after this long even if no worker is ready (with a word on why), not withheld for good
WAIT_AT_MOST_S = 300.0


def workers_ready(heartbeats: Heartbeats, since: float, stale_s: float) -> Callable[[], bool]:
    """True once a worker that beat after `since` (this start, not a previous run's last words) says it is ready."""
    def ready() -> bool:
        return any(beat["ready"] and beat["at"] >= since for beat in heartbeats.alive("worker", stale_s))

    return ready


async def announce_when_ready(ready: Callable[[], bool], line: Callable[[bool], str], poll_s: float = 0.1,
                              wait_at_most_s: float = WAIT_AT_MOST_S, clock: Callable[[], float] = time.monotonic) -> None:
    """Print `line(ready)` once `ready()` (read off the event loop: it is a Redis round trip), or after `wait_at_most_s`."""
    deadline = clock() + wait_at_most_s
    while not (is_ready := await asyncio.to_thread(ready)) and clock() < deadline:
        await asyncio.sleep(poll_s)
    print(await asyncio.to_thread(line, is_ready), flush=True)
