"""Where a card was posted on a platform, so that a decision can update that very message in place."""
from __future__ import annotations

import json

from redis.asyncio import Redis as AsyncRedis

from kernel.keys import Keys

# long enough for any approval to be decided or expire; a card older than this gets a fresh message
PLACE_TTL_S = 30 * 86_400


class CardPlaces:
    """card_id -> the platform coordinates of the message showing it (Slack channel + ts, Telegram chat + message id)."""

    def __init__(self, redis: AsyncRedis, workspace: str, channel: str, ttl_s: int = PLACE_TTL_S) -> None:
        self.redis = redis
        self.keys = Keys(workspace)
        self.channel = channel
        self.ttl_s = ttl_s

    def _key(self, card_id: str) -> str:
        return self.keys(self.channel, "card", card_id)

    async def remember(self, card_id: str, place: dict[str, str]) -> None:
        await self.redis.set(self._key(card_id), json.dumps(place), ex=self.ttl_s)

    async def find(self, card_id: str) -> dict[str, str] | None:
        raw = await self.redis.get(self._key(card_id))
        return json.loads(raw) if raw else None
