"""Slack through the real slack-bolt / slack_sdk, against a local Slack Web API, with bolt-python's payloads."""
from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from slack_sdk.signature import SignatureVerifier

from rq import Queue
from rq.serializers import JSONSerializer

from agents.intents.commands import COMMANDS
from agents.smalltalk import GREETING_REPLY
from bot.channels.slack import slack_channel
from bot.channels.slack_commands import command_text
from kernel.messages import Reply
from kernel.outbox import Outbox
from memory.profiles import Profiles
from tests.waiting import until
from bot.server import DISPATCHER
from memory.tasks import TaskStore
from tests.bot.channels.conftest import SLACK_OPERATOR, SLACK_SECRET, Platform, payload, slack_env


def signed(body: str, secret: str = SLACK_SECRET, timestamp: int | None = None, content_type: str = "application/json", **extra: str) -> dict[str, Any]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    return {
        "data": body.encode(),
        "headers": {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body),
            **extra,
        },
    }


async def post_event(slack: Platform, body: dict[str, Any], **extra: str) -> int:
    resp = await slack.client.post("/slack/events", **signed(json.dumps(body), **extra))
    return resp.status


def dm(shared_eval, text: str, event_id: str = "Ev111", user: str = SLACK_OPERATOR) -> dict[str, Any]:
    body = payload(shared_eval, "slack/event_callback_message_im.json")
    body["event"].update(text=text, user=user)
    body["event_id"] = event_id
    return body


def click(shared_eval, user: str, channel: str, message: dict[str, Any], button: dict[str, Any], trigger: str) -> dict[str, Any]:
    """bolt-python's block_actions payload, pointed at a card Deputy posted and one of its buttons."""
    body = payload(shared_eval, "slack/block_actions_button.json")
    body["user"]["id"] = body["user"]["username"] = user
    body["trigger_id"] = trigger
    body["container"] = {"type": "message", "message_ts": message["ts"], "channel_id": channel, "is_ephemeral": False}
    body["channel"] = {"id": channel, "name": "directmessage"}
    body["message"] = message
    body["actions"] = [{**body["actions"][0], "action_id": button["action_id"], "value": button["value"], "block_id": "card:x",
                        "text": button["text"]}]
    return body


async def post_click(slack: Platform, body: dict[str, Any]) -> int:
    form = "payload=" + quote(json.dumps(body))
    resp = await slack.client.post("/slack/events", **signed(form, content_type="application/x-www-form-urlencoded"))
    return resp.status


@pytest.fixture
async def slack(make_platform, slack_api) -> Platform:
    return await make_platform(slack_env(slack_api), slack_channel)


async def test_signed_dm_is_answered_in_its_thread(slack, slack_api, shared_eval):
    body = dm(shared_eval, "/remember Ana prefers calls after 10am")
    assert await post_event(slack, body) == 200
    assert slack.queued() == 1
    assert await slack.work() == 1

    [post] = slack_api.calls_to("chat.postMessage")
    assert post.params["channel"] == "D111"
    assert post.params["thread_ts"] == body["event"]["thread_ts"]
    assert post.params["text"].startswith("Noted.")
    [delivered] = slack.recent("reply.delivered")
    assert "inbound.received" in slack.kinds(delivered.trace_id)


async def test_mention_starts_a_thread_and_replies_in_it_reach_deputy(slack, slack_api, shared_eval):
    mention = payload(shared_eval, "slack/event_callback_app_mention.json")
    mention["event"]["user"] = SLACK_OPERATOR
    assert await post_event(slack, mention) == 200
    await slack.work()
    [first] = slack_api.calls_to("chat.postMessage")
    assert first.params["channel"] == "C111" and first.params["thread_ts"] == mention["event"]["ts"]
    assert first.params["text"] == GREETING_REPLY  # "Hi there!" with the mention stripped is a greeting

    # a reply in that thread, without a mention, is for Deputy; one in some other thread is not
    reply = payload(shared_eval, "slack/event_callback_message.json")
    reply["event"].update(user=SLACK_OPERATOR, text="/task add call the bank", thread_ts=mention["event"]["ts"], ts="1595926300.000100")
    reply["event_id"] = "Ev-thread-1"
    elsewhere = json.loads(json.dumps(reply))
    elsewhere["event"]["thread_ts"] = "1500000000.000001"
    elsewhere["event_id"] = "Ev-thread-2"
    assert await post_event(slack, reply) == 200
    assert await post_event(slack, elsewhere) == 200
    assert slack.queued() == 1
    await slack.work()
    second = slack_api.calls_to("chat.postMessage")[-1]
    assert second.params["thread_ts"] == mention["event"]["ts"]
    assert "Added task #1" in second.params["text"]


async def test_bad_missing_or_stale_signature_is_401_and_nothing_is_queued(slack, shared_eval):
    body = json.dumps(dm(shared_eval, "/task add forged"))
    forged = await slack.client.post("/slack/events", **signed(body, secret="not-the-secret"))
    unsigned = await slack.client.post("/slack/events", data=body, headers={"Content-Type": "application/json"})
    stale = await slack.client.post("/slack/events", **signed(body, timestamp=int(time.time()) - 6 * 60))
    assert (forged.status, unsigned.status, stale.status) == (401, 401, 401)
    assert slack.queued() == 0
    assert await slack.services.refusals.counts() == {"slack:bad-signature": 3}
    assert TaskStore(slack.redis, "default").list() == []


async def test_four_deliveries_of_one_event_are_one_job_and_one_reply(slack, slack_api, shared_eval):
    body = dm(shared_eval, "/task add pay the rent", event_id="Ev-retried")
    statuses = [await post_event(slack, body)]
    for retry in range(1, 4):
        statuses.append(await post_event(slack, body, **{"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}))
    assert statuses == [200, 200, 200, 200]
    assert slack.queued() == 1
    await slack.work()
    assert len(slack_api.calls_to("chat.postMessage")) == 1
    assert [t.title for t in TaskStore(slack.redis, "default").list()] == ["pay the rent"]
    [trace] = {e.trace_id for e in slack.recent("inbound.duplicate")}
    assert slack.kinds(trace).count("inbound.duplicate") == 3


async def test_messages_from_bots_and_from_deputy_itself_are_ignored(slack, slack_api, shared_eval):
    other_bot = payload(shared_eval, "slack/event_callback_bot_message.json")
    own = dm(shared_eval, "Noted.", event_id="Ev-own", user="W111")  # W111 is Deputy's bot user here
    assert await post_event(slack, other_bot) == 200
    assert await post_event(slack, own) == 200
    assert slack.queued() == 0
    assert slack.recent("inbound.received") == []


async def test_url_verification_is_answered_with_the_challenge(slack, shared_eval):
    body = payload(shared_eval, "slack/url_verification.json")
    resp = await slack.client.post("/slack/events", **signed(json.dumps(body)))
    assert resp.status == 200
    assert (await resp.json())["challenge"] == body["challenge"]


async def test_operator_click_records_the_decision_and_updates_the_card_in_place(slack, slack_api, shared_eval):
    await post_event(slack, dm(shared_eval, "/task add send the invoice", event_id="Ev-card"))
    await slack.work()
    [post] = slack_api.calls_to("chat.postMessage")
    card_ts = await _posted_ts(slack, "task-1")
    [actions] = [b for b in post.params["blocks"] if b["type"] == "actions"]
    button = actions["elements"][0]
    assert button["value"] == "1" and button["style"] == "primary"

    message = {"type": "message", "ts": card_ts, "thread_ts": post.params["thread_ts"], "blocks": post.params["blocks"]}
    assert await post_click(slack, click(shared_eval, SLACK_OPERATOR, "D111", message, button, "trigger-1")) == 200
    [decided] = slack.recent("decision.received")
    assert decided.data["action"] == "task.done" and decided.data["value"] == "1"
    await slack.work()

    [update] = slack_api.calls_to("chat.update")
    assert (update.params["channel"], update.params["ts"]) == ("D111", card_ts)
    blocks = update.params["blocks"]
    assert not [b for b in blocks if b["type"] == "actions"]  # the buttons are gone
    context = next(b for b in blocks if b["type"] == "context")["elements"][0]["text"]
    assert "Done" in context and f"<@{SLACK_OPERATOR}>" in context and "<!date^" in context
    assert len(slack_api.calls_to("chat.postMessage")) == 1  # updated, not posted again
    assert TaskStore(slack.redis, "default").list() == []


async def test_click_by_someone_else_is_refused_privately_and_changes_nothing(slack, slack_api, shared_eval):
    await post_event(slack, dm(shared_eval, "/task add send the invoice", event_id="Ev-card"))
    await slack.work()
    [post] = slack_api.calls_to("chat.postMessage")
    [actions] = [b for b in post.params["blocks"] if b["type"] == "actions"]
    message = {"type": "message", "ts": await _posted_ts(slack, "task-1"), "blocks": post.params["blocks"]}

    assert await post_click(slack, click(shared_eval, "W999", "D111", message, actions["elements"][0], "trigger-x")) == 200
    await slack.work()
    [refusal] = slack_api.calls_to("chat.postEphemeral")
    assert refusal.params["user"] == "W999" and "only the operator" in refusal.params["text"]
    assert slack_api.calls_to("chat.update") == []
    assert [t.title for t in TaskStore(slack.redis, "default").list()] == ["send the invoice"]
    [refused] = slack.recent("request.refused")
    assert refused.data["source"] == "slack-w999" and refused.data["reason"] == "not an operator"


async def test_slash_command_is_taken_as_that_command(slack, slack_api, shared_eval):
    form = dict(parse_qsl((shared_eval / "payloads" / "slack" / "slash_command.form.txt").read_text().strip()))
    form.update(command="/deputy", text="task add renew the domain", user_id=SLACK_OPERATOR)
    resp = await slack.client.post("/slack/events", **signed(urlencode(form), content_type="application/x-www-form-urlencoded"))
    assert resp.status == 200
    await slack.work()
    [post] = slack_api.calls_to("chat.postMessage")
    assert post.params["channel"] == "C111" and "Added task #1: renew the domain" in post.params["text"]


async def test_replies_under_a_post_deputy_started_in_a_channel_reach_deputy(slack, slack_api, shared_eval):
    form = dict(parse_qsl((shared_eval / "payloads" / "slack" / "slash_command.form.txt").read_text().strip()))
    form.update(command="/deputy", text="task add renew the domain", user_id=SLACK_OPERATOR)
    assert (await slack.client.post("/slack/events", **signed(urlencode(form), content_type="application/x-www-form-urlencoded"))).status == 200
    await slack.work()
    [post] = slack_api.calls_to("chat.postMessage")
    assert post.params["channel"] == "C111" and not post.params.get("thread_ts")  # a new top-level message
    posted_ts = post.response["ts"]

    reply = payload(shared_eval, "slack/event_callback_message.json")
    reply["event"].update(channel="C111", user=SLACK_OPERATOR, text="/task list", thread_ts=posted_ts, ts="1595926400.000100")
    reply["event_id"] = "Ev-under-post"
    assert await post_event(slack, reply) == 200
    assert slack.queued() == 1  # no mention needed: Deputy started this thread
    await slack.work()
    assert slack_api.calls_to("chat.postMessage")[-1].params["thread_ts"] == posted_ts


async def test_rate_limited_reply_waits_for_retry_after_and_is_delivered_once(slack, slack_api, shared_eval):
    slack_api.fail("chat.postMessage", status=429, retry_after=2)
    pacer = slack.client.server.app[DISPATCHER].senders["slack"].pacer
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    pacer.sleep = sleep
    await post_event(slack, dm(shared_eval, "/remember the VAT number is 123"))
    await slack.work()

    attempts = slack_api.calls_to("chat.postMessage", ok_only=False)
    assert [a.status for a in attempts] == [429, 200]
    assert waited and waited[0] == pytest.approx(2, abs=0.05)  # Retry-After, not a guess
    [delivered] = slack.recent("reply.delivered")
    assert delivered.data["attempt"] == 1
    assert slack.recent("reply.failed") == []


async def test_server_errors_are_retried_and_a_missing_channel_is_recorded_as_failed(slack, slack_api, shared_eval):
    slack.client.server.app[DISPATCHER].backoff_s = 0
    slack_api.fail("chat.postMessage", status=500, retry_after=None)
    await post_event(slack, dm(shared_eval, "/remember one", event_id="Ev-a"))
    await slack.work()
    assert [a.status for a in slack_api.calls_to("chat.postMessage", ok_only=False)] == [500, 200]

    slack_api.fail("chat.postMessage", status=200, error="channel_not_found", retry_after=None)
    await post_event(slack, dm(shared_eval, "/remember two", event_id="Ev-b"))
    await slack.work()
    [failed] = slack.recent("reply.failed")
    assert "channel_not_found" in failed.data["error"]
    assert len(slack_api.calls_to("chat.postMessage", ok_only=False)) == 3  # not retried


async def test_redis_down_gives_slack_a_5xx_so_it_retries(make_platform, slack_api, shared_eval):
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    slack = await make_platform(slack_env(slack_api), slack_channel, redis_for_gateway=dead)
    assert await post_event(slack, dm(shared_eval, "/remember lost?")) >= 500


async def test_socket_mode_acks_an_event_only_once_it_is_queued(make_platform, slack_api, shared_eval):
    slack = await make_platform(slack_env(slack_api, SLACK_APP_TOKEN="xapp-test"), slack_channel)
    ack = await slack_api.push_envelope("events_api", dm(shared_eval, "/task add over the socket", event_id="Ev-socket"))
    assert "envelope_id" in ack
    assert slack.queued() == 1
    await slack.work()
    assert "Added task #1" in slack_api.calls_to("chat.postMessage")[0].params["text"]


async def _posted_ts(slack: Platform, card_id: str) -> str:
    raw = slack.redis.get(f"dp:default:slack:card:{card_id}")
    assert raw, f"no place stored for card {card_id}"
    return json.loads(raw)["ts"]


async def test_signed_but_unreadable_payloads_get_a_4xx_and_queue_nothing(slack, shared_eval):
    """A 5xx makes Slack retry for good a request that can never succeed; only a store outage should."""
    from urllib.parse import quote

    ts = str(int(time.time()))
    raw = b'{"type": "event_callback", "event": {"text": "\xff\xfe"}}'
    import hashlib
    import hmac

    digest = hmac.new(SLACK_SECRET.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}
    assert 400 <= (await slack.client.post("/slack/events", data=raw, headers=headers)).status < 500

    mention = dm(shared_eval, "hi", event_id="Ev-odd")
    mention["event"] = {"type": "app_mention", "channel": "C1", "user": SLACK_OPERATOR, "text": "<@U0> hi"}  # no ts
    assert 400 <= await post_event(slack, mention) < 500

    actions = {"type": "block_actions", "user": {"id": SLACK_OPERATOR}, "actions": [{"action_id": 5, "value": {"x": 1}}],
               "container": "not an object", "trigger_id": "t-odd"}
    form = "payload=" + quote(json.dumps(actions))
    resp = await slack.client.post("/slack/events", **signed(form, content_type="application/x-www-form-urlencoded"))
    assert 400 <= resp.status < 500
    assert slack.queued() == 0


async def _slash(slack: Platform, shared_eval, text: str, trigger: str) -> Any:
    form = dict(parse_qsl((shared_eval / "payloads" / "slack" / "slash_command.form.txt").read_text().strip()))
    form.update(command="/deputy", text=text, user_id=SLACK_OPERATOR, trigger_id=trigger)
    return await slack.client.post("/slack/events", **signed(urlencode(form), content_type="application/x-www-form-urlencoded"))


def test_every_command_can_be_given_through_slash_deputy():
    for command in COMMANDS:
        for name in (command.name, *command.aliases):
            assert command_text(f"{name} some words") == f"/{name} some words"
    assert command_text("") == "/help" and command_text("help") == "/help"
    assert command_text("what's on my calendar tomorrow") == "what's on my calendar tomorrow"  # free text stays free


async def test_slash_deputy_alone_or_help_shows_the_help(slack, slack_api, shared_eval):
    for n, text in enumerate(("", "help")):
        assert (await _slash(slack, shared_eval, text, f"trigger-help-{n}")).status == 200
    await slack.work()
    first, second = slack_api.calls_to("chat.postMessage")
    assert first.params["text"] == second.params["text"] and "/remember" in first.params["text"]


async def test_an_unknown_slash_deputy_word_gets_the_usage_at_once_and_queues_nothing(slack, slack_api, shared_eval):
    resp = await _slash(slack, shared_eval, "frobnicate", "trigger-unknown")
    assert resp.status == 200
    answer = await resp.text()  # bolt answers a plain acknowledgement text as it is: Slack shows it to the typist only
    assert answer.startswith("I don't know `/deputy frobnicate`")
    assert all(f"/deputy {c.name}" in answer for c in COMMANDS)
    assert slack.queued() == 0


async def test_a_slash_command_is_acknowledged_with_working_on_it(slack, slack_api, shared_eval):
    resp = await _slash(slack, shared_eval, "task add renew the domain", "trigger-working")
    assert resp.status == 200 and await resp.text() == "Working on it…"


async def test_a_repeated_or_refused_slash_command_is_acknowledged_and_runs_once(slack, slack_api, shared_eval):
    first, again = [await _slash(slack, shared_eval, "task add renew the domain", "trigger-once") for _ in range(2)]
    assert (first.status, await first.text()) == (200, "Working on it…")
    assert (again.status, await again.text()) == (200, "")  # Slack retried: a bare acknowledgement, no second job
    form = dict(parse_qsl((shared_eval / "payloads" / "slack" / "slash_command.form.txt").read_text().strip()))
    form.update(command="/deputy", text="task add forged", user_id="U-STRANGER", trigger_id="trigger-stranger")
    stranger = await slack.client.post("/slack/events", **signed(urlencode(form), content_type="application/x-www-form-urlencoded"))
    assert stranger.status == 200 and await stranger.text() != "Working on it…"
    assert slack.queued() == 1
    await slack.work()
    assert [t.title for t in TaskStore(slack.redis, "default").list()] == ["renew the domain"]


async def test_a_message_gets_a_reaction_as_soon_as_it_is_taken(slack, slack_api, shared_eval):
    body = dm(shared_eval, "/remember Ana prefers calls after 10am")
    assert await post_event(slack, body) == 200
    [reaction] = await until(lambda: slack_api.calls_to("reactions.add"), timeout=5, what="reactions.add")
    assert reaction.params == {"channel": "D111", "timestamp": body["event"]["ts"], "name": "eyes"}


async def test_the_members_time_zone_is_asked_once_and_travels_with_each_message(slack, slack_api, shared_eval):
    slack_api.zones[SLACK_OPERATOR] = "Europe/Madrid"
    for n in range(2):
        assert await post_event(slack, dm(shared_eval, f"/task add call the bank {n}", event_id=f"Ev-tz-{n}")) == 200
    jobs = Queue("interactive", connection=slack.redis, serializer=JSONSerializer).jobs
    assert [j.args[0]["inbound"]["timezone"] for j in jobs] == ["Europe/Madrid", "Europe/Madrid"]
    [asked] = slack_api.calls_to("users.info")
    assert asked.params["user"] == SLACK_OPERATOR
    await slack.work()
    assert Profiles(slack.redis, "default").get(SLACK_OPERATOR).timezone == "Europe/Madrid"  # times are read in it


async def test_replies_keep_deputys_markup_which_slack_renders_itself(slack, slack_api):
    Outbox(slack.redis).put(Reply(channel="slack", thread_id="D111", reply_to={"channel": "D111"}, text="*Digest*: 2 < 3"))
    assert await slack.deliver() == 1
    [post] = slack_api.calls_to("chat.postMessage")
    assert post.params["text"] == "*Digest*: 2 &lt; 3"
