"""A gateway app with one platform channel, wired to a local fake of that platform's API."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from rq import Queue

from bot.async_redis import async_redis
from bot.server import build_app, build_services
from bot.services import ChannelParts, Services
from kernel.settings import load_settings
from memory.events import EventLog
from tests.bot.conftest import Driven
from harness.fakes.slack_api import FakeSlackApi
from harness.fakes.telegram_api import FakeTelegramApi

SLACK_SECRET = "test-signing-secret"
SLACK_OPERATOR = "W222"
TELEGRAM_TOKEN = "123456:TEST-token"
TELEGRAM_SECRET = "test-webhook-secret"
TELEGRAM_OPERATOR = 1111111


@dataclass
class Platform(Driven):
    """A platform's side of a gateway under test."""

    def queued(self) -> int:
        return Queue("interactive", connection=self.redis, serializer=None).count

    def kinds(self, trace_id: str) -> list[str]:
        return [e.kind for e in EventLog(self.redis, self.services.settings.workspace).timeline(trace_id)]

    def recent(self, kind: str) -> list[Any]:
        return EventLog(self.redis, self.services.settings.workspace).recent(500, kinds=[kind])


def payload(shared_eval: Path, name: str) -> dict[str, Any]:
    return json.loads((shared_eval / "payloads" / name).read_text())


async def _platform(settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, redis: Redis, redis_url: str,
                    factory: Callable[[Services], ChannelParts | None], redis_for_gateway: Redis | None = None) -> tuple[Platform, AsyncRedis]:
    for key, value in settings_env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    aredis = async_redis(redis_url)
    services = build_services(settings, redis_for_gateway or redis, aredis)
    client = TestClient(TestServer(build_app(services, channels=[factory], dispatch=False)))
    await client.start_server()
    return Platform(client=client, services=services, redis=redis), aredis


@pytest.fixture
async def slack_api():  # type: ignore[no-untyped-def]
    api = await FakeSlackApi(bot_user_id="W111").start()
    yield api
    await api.stop()


@pytest.fixture
async def telegram_api():  # type: ignore[no-untyped-def]
    api = await FakeTelegramApi(TELEGRAM_TOKEN).start()
    yield api
    await api.stop()


def slack_env(api: FakeSlackApi, **extra: str) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SLACK_SECRET, "SLACK_API_URL": api.base_url,
            "SLACK_OPERATORS": SLACK_OPERATOR, "SLACK_MESSAGE_INTERVAL_S": "0", **extra}


def telegram_env(api: FakeTelegramApi, **extra: str) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN, "TELEGRAM_API_URL": api.base_url, "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
            "TELEGRAM_PUBLIC_URL": "https://deputy.example.com", "TELEGRAM_OPERATORS": str(TELEGRAM_OPERATOR), **extra}


@pytest.fixture
async def make_platform(settings, redis, redis_url, monkeypatch):  # type: ignore[no-untyped-def]
    """make_platform(env, factory[, redis_for_gateway]) -> a running Platform; all are closed at the end."""
    opened: list[tuple[Platform, AsyncRedis]] = []

    async def make(env: dict[str, str], factory: Callable[[Services], ChannelParts | None], redis_for_gateway: Redis | None = None) -> Platform:
        made = await _platform(env, monkeypatch, redis, redis_url, factory, redis_for_gateway)
        opened.append(made)
        return made[0]

    yield make
    for platform, aredis in opened:
        await platform.client.close()
        await aredis.aclose()
