"""Fixtures for agent flows: a real SMTP server, settings that point email.send at it, the console end to end."""
from __future__ import annotations

from typing import Iterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis as AsyncRedis

from bot.server import build_app, build_services
from tests.bot.conftest import Deputy
from harness.fakes.smtp_server import SmtpServer
from tests.console_login import log_in


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def settings(redis_url: str, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from kernel.settings import load_settings

    for key, value in {
        "REDIS_URL": redis_url, "JOB_RETRY_BACKOFF": "0", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port),
        "SMTP_SECURITY": "none", "SMTP_FROM": "me@studio.example", "CONSOLE_OPERATORS": "operator,zed",
        "APPROVERS": "operator", "BREAKER_FAILURES": "3", "BREAKER_COOLDOWN_S": "60",
    }.items():
        monkeypatch.setenv(key, value)
    return load_settings()


@pytest.fixture
async def deputy(settings, redis):  # type: ignore[no-untyped-def]
    aredis = AsyncRedis.from_url(settings.redis_url)
    services = build_services(settings, redis, aredis)
    client = TestClient(TestServer(build_app(services, dispatch=False)))
    await client.start_server()
    await log_in(client, redis, settings.workspace)
    try:
        yield Deputy(client=client, services=services, redis=redis)
    finally:
        await client.close()
        await aredis.aclose()
