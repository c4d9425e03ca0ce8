"""Duplicate storms as Slack and Telegram send them, through the real gateway, workers and dispatcher.

Slack retries an event it thinks was not acknowledged (X-Slack-Retry-Num 1..3 on the copies) and
Telegram re-sends an update; a person (or several) hammers an approval button. Replies are counted
where they land, at the local Slack and Telegram Web API fakes; emails at a local SMTP server."""
from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bot.channels.slack_cards import parse_action_id
from harness.prove.cluster import Cluster, PrivateRedis
from harness.prove.effects import Mailbox
from harness.prove.platforms import SLACK_OPERATOR, TELEGRAM_OPERATOR, TELEGRAM_SECRET, FakePlatforms, slack_headers
from harness.prove.report import Row
from memory.events import EventLog

SLACK_COPIES = 4
TELEGRAM_COPIES = 2


@dataclass
class Posts:
    """What the platform got back from the gateway for every copy it sent."""

    statuses: Counter[int] = field(default_factory=Counter)
    no_answer: int = 0

    @property
    def errors_5xx(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500)

    @property
    def sent(self) -> int:
        return sum(self.statuses.values()) + self.no_answer


async def _post(http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], posts: Posts) -> None:
    try:
        async with http.post(url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as resp:
            await resp.read()
            posts.statuses[resp.status] += 1
    except (aiohttp.ClientError, asyncio.TimeoutError):
        posts.no_answer += 1


def _slack_event(i: int, channel: str, text: str) -> bytes:
    now = time.time()
    return json.dumps({
        "token": "prove", "team_id": "T111", "api_app_id": "A111", "type": "event_callback", "event_id": f"EvPROVE{i:06d}",
        "event_time": int(now), "authorizations": [{"team_id": "T111", "user_id": "W111", "is_bot": True}],
        "event": {"type": "message", "channel_type": "im", "channel": channel, "user": SLACK_OPERATOR, "text": text,
                  "ts": f"{int(now)}.{i:06d}", "event_ts": f"{int(now)}.{i:06d}", "team": "T111"},
    }).encode()


async def _slack_copies(http: aiohttp.ClientSession, url: str, body: bytes, posts: Posts) -> None:
    """The first delivery and Slack's three retries of it, all at once, each signed afresh."""
    async def one(n: int) -> None:
        retry = {"X-Slack-Retry-Num": str(n), "X-Slack-Retry-Reason": "http_timeout"} if n else {}
        await _post(http, url, body, {"Content-Type": "application/json", **slack_headers(body), **retry}, posts)

    await asyncio.gather(*(one(n) for n in range(SLACK_COPIES)))


def _telegram_update(update_id: int, message_id: int, text: str) -> bytes:
    user = {"id": TELEGRAM_OPERATOR, "is_bot": False, "first_name": "Operator", "username": "operator"}
    message: dict[str, Any] = {"message_id": message_id, "date": int(time.time()), "from": user, "text": text,
                               "chat": {"id": TELEGRAM_OPERATOR, "type": "private", "first_name": "Operator"}}
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return json.dumps({"update_id": update_id, "message": message}).encode()


def _telegram_headers() -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}


def _wait(check: Any, timeout_s: float) -> bool:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return bool(check())


def _reply_message_id(params: dict[str, Any]) -> int | None:
    reply = params.get("reply_parameters")
    if isinstance(reply, str):
        try:
            reply = json.loads(reply)
        except ValueError:
            return None
    return reply.get("message_id") if isinstance(reply, dict) else None


@dataclass
class StormTally:
    posts: Posts = field(default_factory=Posts)
    jobs: dict[str, int] = field(default_factory=dict)
    replies: dict[str, Counter[str]] = field(default_factory=dict)
    cards: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)
    clicks: dict[str, int] = field(default_factory=dict)


def _jobs_since(cluster: Cluster, since: float) -> int:
    return len(EventLog(cluster.redis.client(), cluster.workspace).since(since, kinds=["job.enqueued"]))


def slack_storm(cluster: Cluster, fakes: FakePlatforms, messages: int, tally: StormTally) -> None:
    url = cluster.url + "slack/events"
    channels = [f"DSTORM{i:04d}" for i in range(messages)]
    started = time.time()

    async def drive() -> None:
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(*(_slack_copies(http, url, _slack_event(i, channels[i], f"/remember slack storm note {i}"), tally.posts)
                                   for i in range(messages)))

    asyncio.run(drive())

    def posted() -> Counter[str]:
        return Counter(str(c.params.get("channel")) for c in fakes.slack.calls_to("chat.postMessage") if c.params.get("channel") in channels)

    _wait(lambda: len(posted()) >= messages, 60)
    time.sleep(1.5)  # a second reply, if there were one, would be on its way by now
    tally.jobs["slack"] = _jobs_since(cluster, started)
    tally.replies["slack"] = Counter({c: posted().get(c, 0) for c in channels})


def telegram_storm(cluster: Cluster, fakes: FakePlatforms, messages: int, tally: StormTally) -> None:
    url = cluster.url + "telegram/webhook"
    ids = {700_000 + i: 5_000 + i for i in range(messages)}  # update_id → the message's id in the chat
    started = time.time()

    async def drive() -> None:
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(*(_post(http, url, _telegram_update(u, m, f"/remember telegram storm note {u}"), _telegram_headers(), tally.posts)
                                   for u, m in ids.items() for _ in range(TELEGRAM_COPIES)))

    asyncio.run(drive())
    wanted = set(ids.values())

    def answered() -> Counter[int]:
        return Counter(m for c in fakes.telegram.calls_to("sendMessage") if (m := _reply_message_id(c.params)) in wanted)

    _wait(lambda: len(answered()) >= messages, 60)
    time.sleep(1.5)
    tally.jobs["telegram"] = _jobs_since(cluster, started)
    tally.replies["telegram"] = Counter({str(m): answered().get(m, 0) for m in wanted})


def _slack_card(fakes: FakePlatforms, channel: str) -> tuple[str, str, list[dict[str, Any]]] | None:
    for call in fakes.slack.calls_to("chat.postMessage"):
        if call.params.get("channel") != channel:
            continue
        blocks = call.params.get("blocks")
        blocks = json.loads(blocks) if isinstance(blocks, str) else blocks or []
        for block in blocks:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if parse_action_id(str(element.get("action_id", ""))) == "approval.approve":
                    return str(element["action_id"]), str(element["value"]), blocks
    return None


def _slack_click(channel: str, action_id: str, value: str, blocks: list[dict[str, Any]], n: int) -> bytes:
    ts = f"{int(time.time())}.000100"
    payload = {
        "type": "block_actions", "token": "prove", "api_app_id": "A111", "trigger_id": f"{n}.{int(time.time() * 1000)}.prove{n}",
        "team": {"id": "T111", "domain": "prove"}, "user": {"id": SLACK_OPERATOR, "username": "operator", "name": "operator", "team_id": "T111"},
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
        "channel": {"id": channel, "name": "directmessage"},
        "message": {"type": "message", "ts": ts, "text": "approval", "blocks": blocks},
        "actions": [{"action_id": action_id, "block_id": "card:prove", "value": value, "type": "button",
                     "text": {"type": "plain_text", "text": "Approve"}, "action_ts": f"{time.time():.6f}"}],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def slack_approvals(cluster: Cluster, fakes: FakePlatforms, cards: int, clicks: int, tally: StormTally) -> None:
    url = cluster.url + "slack/events"
    channels = [f"DAPPROVE{j:03d}" for j in range(cards)]

    async def ask() -> None:
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(*(_slack_copies(http, url, _slack_event(10_000 + j, channels[j],
                                                                          f"/email ana@acme.example slack-storm-{j} | Clicked {clicks} times."),
                                                 tally.posts) for j in range(cards)))

    asyncio.run(ask())
    for j, channel in enumerate(channels):
        found: list[Any] = []
        _wait(lambda: bool(found.append(_slack_card(fakes, channel)) or found[-1]), 60)
        card = found[-1]
        if card is None:
            continue
        tally.cards[f"slack-storm-{j}"] = 1
        action_id, value, blocks = card

        async def click() -> None:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clicks)) as http:
                await asyncio.gather(*(_post(http, url, body, {"Content-Type": "application/x-www-form-urlencoded", **slack_headers(body)},
                                             tally.posts)
                                       for body in [_slack_click(channel, action_id, value, blocks, n) for n in range(clicks)]))

        asyncio.run(click())
        tally.clicks[f"slack-storm-{j}"] = clicks


def _telegram_card(fakes: FakePlatforms, message_id: int) -> str | None:
    for call in fakes.telegram.calls_to("sendMessage"):
        if _reply_message_id(call.params) != message_id:
            continue
        markup = call.params.get("reply_markup")
        markup = json.loads(markup) if isinstance(markup, str) else markup or {}
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if button.get("text") == "Approve":
                    return str(button["callback_data"])
    return None


def telegram_approvals(cluster: Cluster, fakes: FakePlatforms, cards: int, clicks: int, tally: StormTally) -> None:
    url = cluster.url + "telegram/webhook"
    asks = {800_000 + j: 9_000 + j for j in range(cards)}

    async def ask() -> None:
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(*(_post(http, url, _telegram_update(u, m, f"/email ana@acme.example tg-storm-{j} | Clicked {clicks} times."),
                                         _telegram_headers(), tally.posts) for j, (u, m) in enumerate(asks.items())))

    asyncio.run(ask())
    for j, (update_id, message_id) in enumerate(asks.items()):
        found: list[str | None] = []
        _wait(lambda: bool(found.append(_telegram_card(fakes, message_id)) or found[-1]), 60)
        data = found[-1]
        if data is None:
            continue
        tally.cards[f"tg-storm-{j}"] = 1
        card_message = {"message_id": 60_000 + j, "date": int(time.time()), "text": "approval",
                        "chat": {"id": TELEGRAM_OPERATOR, "type": "private", "first_name": "Operator"},
                        "from": {"id": 4242, "is_bot": True, "first_name": "Deputy", "username": "deputy_test_bot"}}

        def callback(n: int) -> bytes:
            return json.dumps({"update_id": 810_000 + j * 100 + n, "callback_query": {
                "id": f"cb-{j}-{n}", "from": {"id": TELEGRAM_OPERATOR, "is_bot": False, "first_name": "Operator", "username": "operator"},
                "message": card_message, "chat_instance": "prove", "data": data}}).encode()

        async def click() -> None:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clicks)) as http:
                await asyncio.gather(*(_post(http, url, callback(n), _telegram_headers(), tally.posts) for n in range(clicks)))

        asyncio.run(click())
        tally.clicks[f"tg-storm-{j}"] = clicks


def platform_storms(folder: Path, messages: int, approvals: int, clicks: int = 20) -> Row:
    """Each Slack event 4 times, each Telegram update twice, `clicks` approve clicks per card on both platforms."""
    fakes = FakePlatforms()
    tally = StormTally()
    try:
        with Mailbox() as mail:
            redis = PrivateRedis(folder / "redis").start()
            try:
                settings = {**fakes.settings(), **mail.settings(), "JOB_RETRY_BACKOFF": "1"}
                with Cluster(folder, redis, settings, workers=2).start() as cluster:
                    slack_storm(cluster, fakes, messages, tally)
                    telegram_storm(cluster, fakes, messages, tally)
                    slack_approvals(cluster, fakes, approvals, clicks, tally)
                    telegram_approvals(cluster, fakes, approvals, clicks, tally)
                    _wait(lambda: len(mail.messages) >= len(tally.cards), 60)
                    time.sleep(1.5)  # room for a second execution, if there were one
                    decided = Counter(str(e.data.get("approval_id")) for e in
                                      EventLog(cluster.redis.client(), cluster.workspace).since(0, kinds=["approval.decided"]))
            finally:
                redis.stop()
            sent = mail.by_subject()
    finally:
        fakes.stop()
    subjects = [f"slack-storm-{j}" for j in range(approvals)] + [f"tg-storm-{j}" for j in range(approvals)]
    replies = {p: sum(c.values()) for p, c in tally.replies.items()}
    lost = sum(n == 0 for c in tally.replies.values() for n in c.values()) + sum(sent.get(s, 0) == 0 for s in subjects)
    duplicated = (sum(max(0, n - 1) for c in tally.replies.values() for n in c.values())
                  + sum(max(0, n - 1) for n in sent.values()) + sum(max(0, n - 1) for n in decided.values()))
    checks = []
    for platform in ("slack", "telegram"):
        if tally.jobs.get(platform) != messages:
            checks.append(f"{tally.jobs.get(platform)} jobs for {messages} {platform} messages")
    if len(tally.cards) != len(subjects):
        checks.append(f"{len(subjects) - len(tally.cards)} approval cards never appeared")
    if len(decided) != len(tally.cards):
        checks.append(f"{len(decided)} approvals decided for {len(tally.cards)} cards")
    if tally.posts.no_answer:
        checks.append(f"{tally.posts.no_answer} deliveries got no answer")
    codes = ", ".join(f"{s}: {n}" for s, n in sorted(tally.posts.statuses.items()))
    return Row(
        scenario=f"Slack (x{SLACK_COPIES}) / Telegram (x{TELEGRAM_COPIES}) duplicate storm + {clicks} clicks per approval",
        attempts=tally.posts.sent,
        lost=lost,
        duplicated=duplicated,
        errors_5xx=tally.posts.errors_5xx,
        failed_checks=tuple(checks),
        notes=(f"{messages} Slack events x {SLACK_COPIES} (retries signed, X-Slack-Retry-Num 1-3) → {tally.jobs.get('slack')} jobs, "
               f"{replies.get('slack')} chat.postMessage; {messages} Telegram updates x {TELEGRAM_COPIES} → {tally.jobs.get('telegram')} jobs, "
               f"{replies.get('telegram')} sendMessage; {len(tally.cards)} approval cards (Slack interactivity, Telegram callback "
               f"queries) x {clicks} concurrent clicks → {sum(decided.values())} decisions, {len(mail.messages)} emails; answers {codes}"),
        details={"jobs": tally.jobs, "replies": replies, "cards": len(tally.cards), "decisions": sum(decided.values()),
                 "emails": len(mail.messages), "statuses": dict(tally.posts.statuses), "clicks": tally.clicks},
    )
