"""The outbox: every reply is written here first, durably, and delivered by the gateway's dispatcher."""
from __future__ import annotations

from redis import Redis

from kernel.messages import Reply
from kernel.keys import Keys

STREAM = Keys.global_("outbox")
GROUP = "dispatch"

# Claim the reply id and queue the reply in one step: a retried job cannot queue it twice,
# and a crash cannot leave a claimed-but-unqueued reply.
PUT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', 100000, '*', 'reply', ARGV[1])
  return 1
end
return 0
"""


class Outbox:
    """Sync side (workers, gateway threads): put a reply once, however often a job is retried."""

    def __init__(self, redis: Redis, ttl_s: int = 7 * 86_400) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self._put = redis.register_script(PUT)

    def put(self, reply: Reply, pipe: object = None) -> bool:
        """Queue a reply for delivery; a reply id already queued is ignored (returns False)."""
        result = self._put(
            keys=[Keys.global_("outbox", "queued", reply.reply_id), STREAM],
            args=[reply.model_dump_json(), self.ttl_s],
            client=pipe if pipe is not None else self.redis,
        )
        return pipe is not None or bool(result)
