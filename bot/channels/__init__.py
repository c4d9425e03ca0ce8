"""Channels: where the operator talks to Deputy. Each one turns platform traffic into Inbound and
Decision for the gateway, and delivers Replies back. CHANNELS in bot/server.py is the one list."""
from __future__ import annotations

from typing import Protocol

from kernel.messages import Reply


class Sender(Protocol):
    """Delivers one reply on its platform (a new message, or an in-place card update)."""

    async def send(self, reply: Reply) -> None: ...


class PermanentDeliveryError(Exception):
    """The platform refused the reply for good (bad channel, revoked token): do not retry."""
