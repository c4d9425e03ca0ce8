"""No configured secret reaches a log line or an event, with every library turned up to DEBUG.

The Telegram and Slack channels run through their real clients against the local fakes; the log
is what the handler `configure_logging` installs writes, and beside it an unmasked copy proves the
libraries did print the URLs and parameters the secrets travel in."""
from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from typing import Iterator

import pytest

from bot.channels.slack import slack_channel
from bot.channels.telegram import telegram_channel
from bot.logs import QUIET, DeputyHandler, configure_logging
from kernel.settings import load_settings
from kernel.keys import Keys
from memory.redaction import secret_values
from tests.bot.channels.conftest import TELEGRAM_OPERATOR, Platform, slack_env
from tests.bot.channels.test_slack import dm, post_event
from tests.bot.channels.test_telegram import post_update, text_update
from harness.fakes.telegram_api import FakeTelegramApi
from tests.waiting import until

BOT_TOKEN = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
WEBHOOK_SECRET = "tg-hook-7c1d2e3f4a5b"
SLACK_BOT_TOKEN = "xoxb-1111-2222-b0tT0kenValue"
SLACK_SIGNING_SECRET = "8f742231b10e8888abcd99aa00bb85a5"
SLACK_APP_TOKEN = "xapp-1-A111-3333-appT0kenValue"
OUTBOUND_SECRET = "crm-outbound-4e5f6a"
INBOUND_SECRET = "orders-inbound-9a8b7c"
SECRETS = (BOT_TOKEN, WEBHOOK_SECRET, SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_APP_TOKEN, OUTBOUND_SECRET, INBOUND_SECRET)
HOOKS = {"OUTBOUND_WEBHOOKS": json.dumps({"crm": {"url": "https://crm.example/hooks", "secret": OUTBOUND_SECRET}}),
         "INBOUND_HOOKS": json.dumps({"orders": INBOUND_SECRET})}


class Unmasked(logging.Handler):
    """Every record as a library wrote it, before the production filter masks it."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class Logs:
    monkeypatch: pytest.MonkeyPatch
    written: io.StringIO
    unmasked: Unmasked

    def install(self, env: dict[str, str]) -> None:
        """Deputy's logging as `deputy -v` sets it up for the secrets configured in `env`, with the
        quieted libraries turned back up to DEBUG (as someone chasing a platform problem would)."""
        for key, value in {**HOOKS, **env}.items():
            self.monkeypatch.setenv(key, value)
        secrets = secret_values(load_settings())
        assert {OUTBOUND_SECRET, INBOUND_SECRET, *(v for v in env.values() if v in SECRETS)} <= set(secrets)
        configure_logging(secrets, verbose=True, stream=self.written)
        for name in QUIET:
            logging.getLogger(name).setLevel(logging.DEBUG)
        logging.getLogger().handlers.insert(0, self.unmasked)  # handlers run in order: this one sees records unmasked

    @property
    def text(self) -> str:
        return self.written.getvalue()


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Logs]:
    root = logging.getLogger()
    level, levels = root.level, {name: logging.getLogger(name).level for name in QUIET}
    captured = Logs(monkeypatch, io.StringIO(), Unmasked())
    yield captured
    for handler in [h for h in root.handlers if isinstance(h, DeputyHandler) or h is captured.unmasked]:
        root.removeHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def stored_events(platform: Platform) -> str:
    """Every event of the workspace's stream, as stored."""
    rows = platform.redis.xrange(Keys(platform.services.settings.workspace)("events"))
    return "\n".join(json.dumps({k.decode(): v.decode() for k, v in fields.items()}) for _, fields in rows)


def assert_no_secret(logs: Logs, events: str) -> None:
    for secret in SECRETS:
        assert secret not in logs.text, f"{secret} was logged"
        assert secret not in events, f"{secret} is in an event"


@pytest.fixture
async def bot_api():  # type: ignore[no-untyped-def]
    api = await FakeTelegramApi(BOT_TOKEN).start()
    yield api
    await api.stop()


def telegram_env(api: FakeTelegramApi, public_url: str) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_API_URL": api.base_url, "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "TELEGRAM_PUBLIC_URL": public_url, "TELEGRAM_OPERATORS": str(TELEGRAM_OPERATOR)}


async def test_telegram_webhook_replies_and_failures_log_no_token(logs, make_platform, bot_api, shared_eval):
    env = telegram_env(bot_api, "https://deputy.example.com")
    logs.install(env)
    tg = await make_platform(env, telegram_channel)
    await until(lambda: bot_api.calls_to("setWebhook"))
    assert await post_update(tg, text_update(shared_eval, "/start", update_id=61001), secret=WEBHOOK_SECRET) == 200
    assert await post_update(tg, text_update(shared_eval, "/start", update_id=61002), secret="guess") == 403
    await tg.work()
    bot_api.fail("sendMessage", status=400, description="Bad Request: chat not found", retry_after=None)
    assert await post_update(tg, text_update(shared_eval, "/help", update_id=61003), secret=WEBHOOK_SECRET) == 200
    await tg.work()

    assert tg.recent("reply.delivered") and tg.recent("reply.failed")
    raw = "\n".join(logs.unmasked.lines)
    assert f"/bot{BOT_TOKEN}/sendMessage" in raw and WEBHOOK_SECRET in raw  # what the libraries print
    assert "/bot***/setWebhook" in logs.text and "/bot***/sendMessage" in logs.text
    assert_no_secret(logs, stored_events(tg))


async def test_telegram_polling_logs_no_token(logs, make_platform, bot_api, shared_eval):
    env = telegram_env(bot_api, "")
    logs.install(env)
    await bot_api.queue_update(text_update(shared_eval, "/start", update_id=62001))
    tg = await make_platform(env, telegram_channel)
    await until(lambda: 62002 in bot_api.offsets)
    await tg.work()

    assert bot_api.calls_to("sendMessage")
    assert f"/bot{BOT_TOKEN}/getUpdates" in "\n".join(logs.unmasked.lines)
    assert "/bot***/getUpdates" in logs.text and "/bot***/sendMessage" in logs.text
    assert_no_secret(logs, stored_events(tg))


async def test_slack_events_replies_and_failures_log_no_token(logs, make_platform, slack_api, shared_eval):
    env = slack_env(slack_api, SLACK_BOT_TOKEN=SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET=SLACK_SIGNING_SECRET)
    logs.install(env)
    slack = await make_platform(env, slack_channel)
    assert await post_event(slack, dm(shared_eval, "/remember the VAT number", event_id="Ev-s1"), secret=SLACK_SIGNING_SECRET) == 200
    assert await post_event(slack, dm(shared_eval, "/remember forged", event_id="Ev-s2"), secret="guess") == 401
    await slack.work()
    slack_api.fail("chat.postMessage", status=200, error="channel_not_found", retry_after=None)
    assert await post_event(slack, dm(shared_eval, "/remember two", event_id="Ev-s3"), secret=SLACK_SIGNING_SECRET) == 200
    await slack.work()

    assert slack.recent("reply.delivered") and slack.recent("reply.failed")
    assert all(call.token == SLACK_BOT_TOKEN for call in slack_api.calls_to("chat.postMessage", ok_only=False))
    assert "chat.postMessage" in "\n".join(logs.unmasked.lines)
    assert "Sending a request - url: POST http://127.0.0.1" in logs.text and "chat.postMessage" in logs.text
    assert_no_secret(logs, stored_events(slack))


async def test_slack_socket_mode_logs_no_app_token(logs, make_platform, slack_api, shared_eval):
    env = slack_env(slack_api, SLACK_BOT_TOKEN=SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET=SLACK_SIGNING_SECRET, SLACK_APP_TOKEN=SLACK_APP_TOKEN)
    logs.install(env)
    slack = await make_platform(env, slack_channel)
    assert "envelope_id" in await slack_api.push_envelope("events_api", dm(shared_eval, "/task add over the socket", event_id="Ev-s4"))
    await slack.work()

    assert [call.token for call in slack_api.calls_to("apps.connections.open")] == [SLACK_APP_TOKEN]
    assert slack_api.calls_to("chat.postMessage")
    assert "apps.connections.open" in logs.text
    assert_no_secret(logs, stored_events(slack))
