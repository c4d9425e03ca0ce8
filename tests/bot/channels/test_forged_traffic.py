"""A flood of forged platform requests (unknown hooks, bad signatures, wrong Telegram secrets)
against the real gateway app: refused, rate limited, counted, and leaving Redis as it found it."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis import Redis
from rq import Queue

from bot.async_redis import async_redis
from bot.channels.slack import slack_channel
from bot.channels.telegram import SECRET_HEADER, telegram_channel
from bot.channels.webhooks import webhook_channel
from bot.refusals import NOTED_PER_MIN
from bot.server import build_app, build_services
from bot.services import Services
from kernel.settings import load_settings
from integrations.webhooks import SIGNATURE_HEADER, sign
from kernel.keys import Keys
from tests.bot.channels.conftest import slack_env, telegram_env

REQUESTS = 10_000
BATCH = 200
ORDER = json.dumps({"id": "ord_1", "total": 10}).encode()
REASONS = {0: "webhook:unknown-hook", 1: "webhook:bad-signature", 2: "telegram:wrong-secret", 3: "slack:bad-signature"}


@pytest.fixture
async def gateway(settings, redis: Redis, redis_url: str, monkeypatch, slack_api, telegram_api) -> AsyncIterator[tuple[TestClient, Services]]:
    for key, value in {**slack_env(slack_api), **telegram_env(telegram_api)}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("INBOUND_HOOKS", json.dumps({"orders": "orders-secret"}))
    aredis = async_redis(redis_url)
    services = build_services(load_settings(), redis, aredis)
    client = TestClient(TestServer(build_app(services, channels=[webhook_channel, telegram_channel, slack_channel], dispatch=False)))
    await client.start_server()
    yield client, services
    await client.close()
    await aredis.aclose()


def forged(i: int) -> tuple[str, bytes, dict[str, str]]:
    """Request i of the flood: each kind in turn, with the attacker's own names and secrets."""
    kind = i % 4
    if kind == 0:
        return f"/hooks/{uuid.uuid4().hex}", ORDER, {SIGNATURE_HEADER: sign("guess", ORDER, int(time.time()))}
    if kind == 1:
        return "/hooks/orders", ORDER, {SIGNATURE_HEADER: sign(f"guess-{i}", ORDER, int(time.time()))}
    if kind == 2:
        return "/telegram/webhook", json.dumps({"update_id": i}).encode(), {SECRET_HEADER: f"guess-{i}"}
    ts = str(int(time.time()))
    return "/slack/events", b'{"type": "event_callback"}', {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={i:064x}"}


def workspace_keys(redis: Redis, workspace: str) -> set[bytes]:
    return {k for pattern in (Keys(workspace)("*"), Keys.global_("*")) for k in redis.scan_iter(match=pattern, count=1_000)}


async def test_ten_thousand_forged_requests_are_refused_counted_and_leave_redis_as_it_was(gateway, redis: Redis) -> None:
    client, services = gateway
    workspace = services.settings.workspace
    with redis.pipeline(transaction=False) as pipe:
        for i in range(1_000):
            services.events.record(f"real-{i}", "inbound.received", "op", pipe=pipe, text=f"message {i}")
        pipe.execute()
    written = [entry_id for entry_id, _ in redis.xrange(services.events.stream)]
    keys_before, size_before = workspace_keys(redis, workspace), redis.dbsize()

    async def send(i: int) -> tuple[int, str | None]:
        path, body, headers = forged(i)
        async with client.post(path, data=body, headers={"Content-Type": "application/json", **headers}) as resp:
            return resp.status, resp.headers.get("Retry-After")

    answers: list[tuple[int, str | None]] = []
    for start in range(0, REQUESTS, BATCH):
        answers += await asyncio.gather(*(send(i) for i in range(start, min(start + BATCH, REQUESTS))))

    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {401, 403, 404, 429} and statuses[429] >= REQUESTS - 2 * 60
    assert all(retry and 0 < int(retry) <= 60 for status, retry in answers if status == 429)
    assert Queue("interactive", connection=redis).count == 0
    assert len(workspace_keys(redis, workspace) - keys_before) <= 50 and redis.dbsize() - size_before <= 50
    stream = [entry_id for entry_id, _ in redis.xrange(services.events.stream)]
    assert stream[:1_000] == written and len(stream) - 1_000 <= 2 * len(REASONS) * NOTED_PER_MIN
    assert await services.refusals.counts() == {reason: REQUESTS // 4 for reason in REASONS.values()}


async def test_a_forged_request_under_the_limit_gets_its_own_status(gateway) -> None:
    client, _ = gateway
    answers: dict[str, Any] = {}
    for i in range(4):
        path, body, headers = forged(i)
        answers[REASONS[i]] = (await client.post(path, data=body, headers=headers)).status

    assert answers == {"webhook:unknown-hook": 404, "webhook:bad-signature": 401, "telegram:wrong-secret": 403,
                       "slack:bad-signature": 401}
