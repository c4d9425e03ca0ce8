"""Fuzzing the platform endpoints of a real gateway: Slack (events, interactivity, slash commands),
Telegram (webhook updates) and signed inbound hooks. Two phases per platform:
  forged    bad or missing signatures, stale timestamps, wrong secrets: every one refused (401/403), none queued
  signed    correctly signed random payloads: only 2xx/4xx, and no job for anyone but an operator
The platform APIs the gateway calls back (Slack auth.test, Telegram getMe) are local wire-level fakes."""
from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.prove.cluster import Cluster, PrivateRedis
from harness.prove.fuzzing import Http, _strategies, field_values, json_values, run_examples
from harness.prove.report import Row

SLACK_SECRET = "prove-signing-secret"
SLACK_OPERATOR = "W222"
TELEGRAM_TOKEN = "123456:PROVE-token"
TELEGRAM_SECRET = "prove-telegram-secret"
TELEGRAM_OPERATOR = 1111111
HOOK, HOOK_SECRET = "orders", "prove-orders-secret"


class FakePlatforms:
    """Slack's and Telegram's Web APIs on loopback, served from a thread of their own."""

    def __init__(self) -> None:
        from harness.prove.effects import _fakes

        _fakes()
        from harness.fakes.slack_api import FakeSlackApi
        from harness.fakes.telegram_api import FakeTelegramApi

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.slack = self._run(FakeSlackApi(bot_user_id="W111").start())
        self.telegram = self._run(FakeTelegramApi(TELEGRAM_TOKEN).start())

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(15)

    def settings(self) -> dict[str, str]:
        return {
            "SLACK_BOT_TOKEN": "xoxb-prove", "SLACK_SIGNING_SECRET": SLACK_SECRET, "SLACK_API_URL": self.slack.base_url,
            "SLACK_OPERATORS": SLACK_OPERATOR, "SLACK_MESSAGE_INTERVAL_S": "0",
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN, "TELEGRAM_API_URL": self.telegram.base_url,
            "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET, "TELEGRAM_PUBLIC_URL": "https://deputy.example.com",
            "TELEGRAM_OPERATORS": str(TELEGRAM_OPERATOR), "INBOUND_HOOKS": json.dumps({HOOK: HOOK_SECRET}),
        }

    def stop(self) -> None:
        self._run(self.slack.stop())
        self._run(self.telegram.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def slack_headers(body: bytes, ts: int | None = None, secret: str = SLACK_SECRET) -> dict[str, str]:
    import hashlib
    import hmac

    # Slack's v0 scheme, over the raw bytes (slack_sdk's helper wants text, and fuzzed bodies need not be)
    stamp = str(ts if ts is not None else int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


def hook_headers(body: bytes, ts: int | None = None, secret: str = HOOK_SECRET) -> dict[str, str]:
    from integrations.webhooks import SIGNATURE_HEADER, sign

    return {SIGNATURE_HEADER: sign(secret, body, ts if ts is not None else int(time.time()))}


def slack_examples(st: Any) -> Any:
    users = st.sampled_from([SLACK_OPERATOR, "W999", "", "U0G9QF9C6"]) | field_values(st)
    event = st.fixed_dictionaries(
        {"type": st.sampled_from(["message", "app_mention", "reaction_added", "message.im"]) | field_values(st)},
        optional={"user": users, "text": field_values(st), "channel": st.sampled_from(["D123", "C123", ""]) | field_values(st),
                  "ts": field_values(st), "thread_ts": field_values(st), "subtype": field_values(st),
                  "channel_type": st.sampled_from(["im", "channel"]), "bot_id": field_values(st)})
    events = st.fixed_dictionaries({"type": st.sampled_from(["event_callback", "url_verification", "app_rate_limited"])},
                                   optional={"event": event | json_values(st), "event_id": field_values(st),
                                             "team_id": field_values(st), "challenge": field_values(st)})
    action = st.fixed_dictionaries({}, optional={"action_id": field_values(st), "value": field_values(st), "type": field_values(st)})
    interactive = st.fixed_dictionaries({"type": st.sampled_from(["block_actions", "view_submission", "shortcut"]) | field_values(st)},
                                        optional={"user": st.fixed_dictionaries({"id": users}) | json_values(st),
                                                  "actions": st.lists(action, max_size=2) | json_values(st),
                                                  "trigger_id": field_values(st), "container": json_values(st),
                                                  "channel": json_values(st), "message": json_values(st)})
    command = st.fixed_dictionaries({"command": st.sampled_from(["/deputy", "/other"])},
                                    optional={"text": field_values(st), "user_id": users, "channel_id": field_values(st),
                                              "trigger_id": field_values(st), "user_name": field_values(st)})
    return (events.map(lambda b: ("json", json.dumps(b).encode()))
            | interactive.map(lambda b: ("form", urllib.parse.urlencode({"payload": json.dumps(b)}).encode()))
            | command.map(lambda b: ("form", urllib.parse.urlencode({k: str(v) for k, v in b.items()}).encode()))
            | st.binary(max_size=200).map(lambda b: ("raw", b)))


def telegram_examples(st: Any) -> Any:
    users = st.sampled_from([TELEGRAM_OPERATOR, 42, 0]) | st.integers() | field_values(st)
    user = st.fixed_dictionaries({"id": users}, optional={"is_bot": st.booleans(), "first_name": field_values(st)})
    chat = st.fixed_dictionaries({"id": st.integers() | field_values(st), "type": st.sampled_from(["private", "group"]) | field_values(st)})
    message = st.fixed_dictionaries({"message_id": st.integers() | field_values(st), "date": st.integers(0, 2**31) | field_values(st)},
                                    optional={"from": user | json_values(st), "chat": chat | json_values(st),
                                              "text": field_values(st), "entities": json_values(st)})
    callback = st.fixed_dictionaries({"id": field_values(st), "from": user | json_values(st)},
                                     optional={"data": field_values(st), "message": message | json_values(st),
                                               "chat_instance": field_values(st)})
    update = st.fixed_dictionaries({"update_id": st.integers(-5, 2**40) | field_values(st)},
                                   optional={"message": message | json_values(st), "callback_query": callback | json_values(st),
                                             "edited_message": json_values(st)})
    return update.map(lambda b: ("json", json.dumps(b).encode())) | json_values(st).map(lambda b: ("json", json.dumps(b).encode())) \
        | st.binary(max_size=200).map(lambda b: ("raw", b))


def hook_examples(st: Any) -> Any:
    objects = st.dictionaries(st.text(max_size=12) | st.sampled_from(["id", "type", "email", "message"]), field_values(st), max_size=6)
    return (objects.map(lambda b: ("json", json.dumps(b).encode())) | json_values(st).map(lambda b: ("json", json.dumps(b).encode()))
            | st.binary(max_size=200).map(lambda b: ("raw", b)))


@dataclass
class PlatformTally:
    statuses: Counter[str] = field(default_factory=Counter)
    forged_let_in: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    no_answer: int = 0
    sent: int = 0
    forged: int = 0


def _request(platform: str, kind: str, body: bytes, forge: str | None) -> tuple[str, bytes, dict[str, str]]:
    ctype = {"json": "application/json", "form": "application/x-www-form-urlencoded", "raw": "application/octet-stream"}[kind]
    stale = int(time.time()) - 3600
    if platform == "slack":
        headers = {"missing": {}, "forged": slack_headers(body, secret="not-the-secret"), "stale": slack_headers(body, ts=stale)}.get(
            forge or "", slack_headers(body))
        return "/slack/events", body, {"Content-Type": ctype, **headers}
    if platform == "telegram":
        secret = {"missing": None, "forged": "not-the-secret", "stale": TELEGRAM_SECRET[:-1]}.get(forge or "", TELEGRAM_SECRET)
        return "/telegram/webhook", body, {"Content-Type": ctype, **({"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {})}
    headers = {"missing": {}, "forged": hook_headers(body, secret="not-the-secret"), "stale": hook_headers(body, ts=stale)}.get(
        forge or "", hook_headers(body))
    return f"/hooks/{HOOK}", body, {"Content-Type": ctype, **headers}


def fuzz_platform(cluster: Cluster, platform: str, count: int, tally: PlatformTally) -> None:
    st = _strategies()
    client = Http(cluster.port)
    strategy = {"slack": slack_examples, "telegram": telegram_examples, "hooks": hook_examples}[platform](st)
    forges = ["missing", "forged", "stale", None, None, None]
    n = [0]

    def check(batch: list[Any]) -> None:
        requests, labels = [], []
        for kind, body in batch:
            forge = forges[n[0] % len(forges)]
            n[0] += 1
            requests.append(_request(platform, kind, body, forge))
            labels.append(forge)
        for (path, body, _), forge, answer in zip(requests, labels, client.post_many(requests)):
            if answer is None:
                tally.no_answer += 1
                continue
            status = answer[0]
            tally.sent += 1
            tally.statuses[f"{platform} {status}"] += 1
            if status >= 500:
                tally.server_errors.append(f"{platform} {status} {body[:120]!r}")
            tally.forged += bool(forge)
            if forge and status < 400:
                tally.forged_let_in.append(f"{platform} ({forge}) {status} {body[:120]!r}")

    try:
        run_examples(count, strategy, check)
    finally:
        client.close()


def jobs_by_user(cluster: Cluster) -> Counter[str]:
    from rq import Queue
    from rq.serializers import JSONSerializer

    from jobs.queues import QUEUES

    redis = cluster.redis.client()
    users: Counter[str] = Counter()
    for name in QUEUES:
        for job in Queue(name, connection=redis, serializer=JSONSerializer).get_jobs():
            payload = job.args[0] if job.args else {}
            source = payload.get("inbound") or payload.get("decision") or {}
            users[f"{source.get('channel')}:{source.get('user_id')}"] += 1
    return users


def platform_fuzz(folder: Path, slack: int, telegram: int, hooks: int) -> Row:
    fakes = FakePlatforms()
    redis = PrivateRedis(folder / "redis").start()
    try:
        cluster = Cluster(folder, redis, fakes.settings(), workers=0)
        cluster.folder.mkdir(parents=True, exist_ok=True)
        cluster.start_gateway()
        try:
            tally = PlatformTally()
            started = time.time()
            for platform, count in (("slack", slack), ("telegram", telegram), ("hooks", hooks)):
                fuzz_platform(cluster, platform, count, tally)
            seconds = time.time() - started
            users = jobs_by_user(cluster)
            refused = sum(cluster.refusals().values())
        finally:
            cluster.stop()
    finally:
        redis.stop()
        fakes.stop()
    allowed = {f"slack:{SLACK_OPERATOR}", f"telegram:{TELEGRAM_OPERATOR}", f"webhook:hook:{HOOK}"}
    strangers = {u: n for u, n in users.items() if u not in allowed}
    checks = []
    if tally.forged_let_in:
        checks.append(f"{len(tally.forged_let_in)} forged/unsigned/stale requests let in, e.g. {tally.forged_let_in[0]}")
    if strangers:
        checks.append(f"jobs queued for non-operators: {strangers}")
    if tally.no_answer:
        checks.append(f"{tally.no_answer} requests got no answer")
    if tally.forged and not refused:
        checks.append(f"{tally.forged} forged requests answered, no refusal counted")
    codes = ", ".join(f"{k}: {v}" for k, v in sorted(tally.statuses.items()))
    return Row(
        scenario="fuzz + forged signatures: Slack, Telegram, hooks",
        attempts=tally.sent + tally.no_answer,
        errors_5xx=len(tally.server_errors),
        failed_checks=tuple(checks),
        notes=(f"{tally.sent} payloads in {seconds:.0f} s (half forged, missing or stale) → {codes}; "
               f"{sum(users.values())} jobs, all from operators; {refused} refusals counted for {tally.forged} forged ones"
               + (f"; 5xx e.g. {tally.server_errors[0]}" if tally.server_errors else "")),
        details={"statuses": dict(tally.statuses), "jobs_by_user": dict(users), "server_errors": tally.server_errors[:5],
                 "forged_let_in": tally.forged_let_in[:5], "refusals_recorded": refused},
    )
