"""Slack members as Deputy needs them: a member's time zone (users.info, asked once per member and
kept in Redis), and the sign that Deputy is working on a member's message (a reaction on it)."""
from __future__ import annotations

import asyncio
import logging

import aiohttp
from redis.asyncio import Redis as AsyncRedis
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from kernel.keys import Keys
from kernel.messages import Inbound

log = logging.getLogger("deputy.slack")

# a member's zone is asked again after this long (people travel)
ZONE_TTL_S = 7 * 86_400
WORKING_REACTION = "eyes"


class SlackMembers:
    def __init__(self, client: AsyncWebClient, aredis: AsyncRedis, workspace: str, timeout_s: float = 1.5) -> None:
        self.client = client
        self.aredis = aredis
        self.keys = Keys(workspace)
        # users.info is asked on the way to Slack's acknowledgement: it must not hold it up for long
        self.timeout_s = timeout_s

    async def timezone(self, user: str) -> str:
        """The member's IANA time zone as Slack has it ("" when Slack does not say or cannot be asked)."""
        key = self.keys("slack", "tz", user)
        cached = await self.aredis.get(key)
        if cached is not None:
            return cached.decode() if isinstance(cached, bytes) else str(cached)
        try:
            response = await asyncio.wait_for(self.client.users_info(user=user), self.timeout_s)
        except (SlackApiError, asyncio.TimeoutError, aiohttp.ClientError) as err:
            log.info("slack: no time zone for %s this time (%r)", user, err)
            return ""  # not kept: asked again with the member's next message
        zone = str((response.get("user") or {}).get("tz") or "")
        await self.aredis.set(key, zone, ex=ZONE_TTL_S)
        return zone

    async def working(self, inbound: Inbound, trace_id: str) -> None:
        """A reaction on the member's message, as soon as Deputy has it (a slash command has no message:
        its acknowledgement says so instead)."""
        to = inbound.reply_to
        if to.get("channel") and to.get("ts"):
            await self.client.reactions_add(channel=to["channel"], timestamp=to["ts"], name=WORKING_REACTION)
