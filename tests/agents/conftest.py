"""Fixtures for agent flows: a real SMTP server, settings that point email.send at it, the console end to end, and
an agent planning with a scripted model."""
from __future__ import annotations

from typing import Iterator

import pytest
from redis import Redis

from integrations.capability import Capability
from integrations.registry import build_capabilities
from jobs.agent_wiring import build_agent
from jobs.queues import JobQueues
from jobs.runtime import make_llm
from kernel.settings import Settings
from kernel.settings_models import CalDavSettings, SmtpSettings, WebhookSettings, WebhookTarget
from tests.bot.conftest import logged_in_deputy
from harness.fakes.smtp_server import SmtpServer


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
    async with logged_in_deputy(settings, redis) as deputy:
        yield deputy


@pytest.fixture
def agent(settings, redis, openai_server, monkeypatch):  # type: ignore[no-untyped-def]
    """The worker's agent, planning free-form goals with the scripted model."""
    from kernel.settings import load_settings

    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    s = load_settings()
    return build_agent(s, redis, make_llm(s, redis), JobQueues(redis, 0))


@pytest.fixture
def capabilities(redis: Redis) -> dict[str, Capability]:
    # every connector configured (none is contacted: the inspector only reads their declarations)
    return build_capabilities(Settings(
        workspace="default", smtp=SmtpSettings(host="127.0.0.1", sender="me@studio.example"),
        caldav=CalDavSettings(url="http://127.0.0.1:9/cal"),
        webhooks=WebhookSettings(outbound={"crm": WebhookTarget(url="http://127.0.0.1:9/hook")})), redis)
