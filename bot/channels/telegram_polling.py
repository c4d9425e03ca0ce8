"""Long polling for Telegram when no public URL is configured.

Telegram considers every update below the `offset` of a getUpdates call confirmed, for good; so the
poller asks with `update_id + 1` only once that update is durable in Redis. A failure leaves the offset
where it was, and the same update comes back on the next call."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Sequence

from telegram import Bot, Update
from telegram.error import TelegramError

log = logging.getLogger("deputy.telegram")


class TelegramPoller:
    """Asks `bot` for updates and hands each to `process`, which raises if it could not make it durable."""

    def __init__(self, bot: Bot, process: Callable[[Update], Awaitable[None]], allowed_updates: Sequence[str],
                 timeout_s: int = 25) -> None:
        self.bot = bot
        self.process = process
        self.allowed_updates = list(allowed_updates)
        self.timeout_s = timeout_s

    async def run(self) -> None:
        """getUpdates in a loop until cancelled."""
        offset: int | None = None
        while True:
            offset = await self.poll_once(offset)

    async def poll_once(self, offset: int | None) -> int | None:
        """One getUpdates round; returns the offset to ask with next."""
        try:
            updates = await self.bot.get_updates(
                offset=offset, timeout=self.timeout_s, allowed_updates=self.allowed_updates,
                read_timeout=self.timeout_s + 10,
            )
        except TelegramError as err:
            log.warning("telegram: getUpdates failed (%s); retrying", err)
            await asyncio.sleep(2)
            return offset
        for update in updates:
            try:
                await self.process(update)
            except Exception:
                # not durable: keep the offset before it, so Telegram hands it to us again
                log.exception("telegram: update %s could not be stored; fetching it again", update.update_id)
                await asyncio.sleep(1)
                return offset
            offset = update.update_id + 1
        return offset
