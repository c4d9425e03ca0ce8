from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from bot.server import DISPATCHER, build_app, build_services
from bot.services import ChannelFactory, Services
from jobs.worker import run_burst
from kernel.settings import Settings
from tests.console_login import log_in


@dataclass
class Driven:
    """A gateway app under test, with the two halves tests drive by hand: workers and delivery."""

    client: TestClient
    services: Services
    redis: Redis

    async def work(self) -> int:
        """Run every queued job (a burst worker), then deliver every queued reply; returns replies delivered."""
        run_burst(self.redis)  # rq installs signal handlers: main thread only
        return await self.deliver()

    async def deliver(self) -> int:
        dispatcher = self.client.server.app[DISPATCHER]
        await dispatcher.setup()
        total = 0
        while (n := await dispatcher.drain(block_ms=None)) > 0:
            total += n
        return total


@dataclass
class Deputy(Driven):
    """The console's side of a gateway under test."""

    async def say(self, text: str, thread_id: str = "t1", client_id: str | None = None) -> dict:
        import uuid

        resp = await self.client.post("/api/messages", json={"thread_id": thread_id, "text": text, "client_id": client_id or uuid.uuid4().hex})
        assert resp.status == 202, await resp.text()
        return await resp.json()

    async def messages(self, thread_id: str = "t1") -> list[dict]:
        resp = await self.client.get(f"/api/threads/{thread_id}/messages")
        return (await resp.json())["messages"]


@contextlib.asynccontextmanager
async def logged_in_deputy(settings: Settings, redis: Redis, channels: list[ChannelFactory] | None = None) -> AsyncIterator[Deputy]:
    """A gateway app (every configured channel, or `channels`) with the operator logged into its console."""
    aredis = AsyncRedis.from_url(settings.redis_url)
    services = build_services(settings, redis, aredis)
    client = TestClient(TestServer(build_app(services, channels=channels, dispatch=False)))
    await client.start_server()
    await log_in(client, redis, settings.workspace)
    try:
        yield Deputy(client=client, services=services, redis=redis)
    finally:
        await client.close()
        await aredis.aclose()


@pytest.fixture
async def deputy(settings, redis):
    async with logged_in_deputy(settings, redis) as deputy:
        yield deputy
