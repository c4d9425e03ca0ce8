"""Text still being written, shown on the console as it grows: a worker publishes it on the console's live channel,
the page shows it where "Working on it…" stood, and the reply replaces it when it comes. Slack and Telegram get the
reply only."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

from redis import Redis
from redis.exceptions import RedisError

from kernel.keys import Keys

log = logging.getLogger("deputy.live")

# the newest end of a long text is what the page shows
MAX_CHARS = 8_000


def console_live_channel(workspace: str) -> str:
    """The Redis channel the console's open pages listen on (bot/console/live.py)."""
    return Keys(workspace)("console", "live")


@dataclass(eq=False)
class LiveText:
    """Called with the whole text so far, as often as it grows; publishes it at most every `every_s` seconds."""

    redis: Redis
    workspace: str
    thread_id: str
    trace_id: str
    # a model writes tens of pieces a second; the page needs a few updates
    every_s: float = 0.25
    _last: float = field(default=float("-inf"), init=False)

    def __call__(self, text: str) -> None:
        now = time.monotonic()
        if not text.strip() or now - self._last < self.every_s:
            return
        self._last = now
        event = {"type": "partial", "thread_id": self.thread_id, "trace_id": self.trace_id, "text": text[-MAX_CHARS:]}
        try:
            self.redis.publish(console_live_channel(self.workspace), json.dumps(event, ensure_ascii=False))
        except RedisError as err:  # progress is a courtesy: the reply still comes
            log.debug("live text not shown: %s", err)
