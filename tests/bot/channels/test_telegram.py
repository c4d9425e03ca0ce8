"""Telegram through the real python-telegram-bot, against a local Bot API server, with public sample updates."""
from __future__ import annotations

import re
from typing import Any

import pytest
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from agents.intents.commands import COMMANDS
from agents.profile_skills import ZONE_QUESTION
from bot.channels.telegram import INVALID_BUTTON, SECRET_HEADER, telegram_channel
from bot.gateway import Gateway
from kernel.messages import Reply
from kernel.outbox import Outbox
from memory.profiles import Profiles
from memory.tasks import TaskStore
from tests.bot.channels.conftest import TELEGRAM_OPERATOR, TELEGRAM_SECRET, Platform, payload, telegram_env
from tests.waiting import until


def text_update(shared_eval, text: str, update_id: int = 10000, user_id: int = TELEGRAM_OPERATOR) -> dict[str, Any]:
    """Telegram's documented /start sample with another text (and the bot_command entity a client adds)."""
    update = payload(shared_eval, "telegram/telegram_docs_message_start.json")
    update["update_id"] = update_id
    update["message"]["text"] = text
    update["message"]["from"].update(id=user_id, is_bot=False)  # the 2015 sample predates is_bot
    if text.startswith("/"):
        update["message"]["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return update


def callback_update(update_id: int, user_id: int, message: dict[str, Any], data: str) -> dict[str, Any]:
    """A click on a button of a message the bot sent (the CallbackQuery shape of teloxide's sample, plus `message`)."""
    return {"update_id": update_id, "callback_query": {
        "id": f"cb-{update_id}", "from": {"id": user_id, "is_bot": False, "first_name": "Someone", "username": f"user{user_id}"},
        "message": message, "chat_instance": "123456", "data": data}}


async def post_update(tg: Platform, update: dict[str, Any], secret: str | None = TELEGRAM_SECRET) -> int:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    resp = await tg.client.post("/telegram/webhook", json=update, headers=headers)
    return resp.status


@pytest.fixture
async def tg(make_platform, telegram_api) -> Platform:
    return await make_platform(telegram_env(telegram_api), telegram_channel)


async def _card(tg: Platform, telegram_api, shared_eval) -> dict[str, Any]:
    assert await post_update(tg, text_update(shared_eval, "/task add send the invoice", update_id=20001)) == 200
    await tg.work()
    [sent] = telegram_api.calls_to("sendMessage")
    assert sent.params["parse_mode"] == "HTML"
    return sent


async def test_wrong_or_missing_secret_is_403_and_nothing_is_queued(tg, shared_eval):
    assert await post_update(tg, text_update(shared_eval, "/task add forged"), secret="guess") == 403
    assert await post_update(tg, text_update(shared_eval, "/task add forged"), secret=None) == 403
    assert tg.queued() == 0
    assert await tg.services.refusals.counts() == {"telegram:wrong-secret": 2}


async def test_start_is_answered_in_the_chat_as_a_reply(tg, telegram_api, shared_eval):
    assert await post_update(tg, text_update(shared_eval, "/start")) == 200
    await tg.work()
    [sent] = telegram_api.calls_to("sendMessage")
    assert sent.params["chat_id"] == TELEGRAM_OPERATOR
    assert sent.params["reply_parameters"]["message_id"] == 1365
    assert "/remember" in sent.params["text"] and "/task" in sent.params["text"]


async def test_webhook_is_registered_with_the_secret_and_the_command_menu(tg, telegram_api):
    await until(lambda: telegram_api.calls_to("setWebhook"), timeout=5, what="setWebhook")
    [hook] = telegram_api.calls_to("setWebhook")
    assert hook.params["url"] == "https://deputy.example.com/telegram/webhook"
    assert hook.params["secret_token"] == TELEGRAM_SECRET
    [menu] = telegram_api.calls_to("setMyCommands")
    assert [c["command"] for c in menu.params["commands"]] == [c.name for c in COMMANDS]


async def test_an_update_nobody_can_read_is_let_go_rather_than_redelivered_forever(tg, shared_eval):
    legacy = payload(shared_eval, "telegram/telegram_docs_message_start.json")  # its sender has no is_bot
    assert await post_update(tg, legacy) == 200
    assert tg.queued() == 0
    assert tg.recent("inbound.unreadable")[0].data["update_id"] == legacy["update_id"]


async def test_duplicate_update_id_is_processed_once(tg, telegram_api, shared_eval):
    update = text_update(shared_eval, "/task add pay the rent", update_id=30001)
    assert [await post_update(tg, update) for _ in range(3)] == [200, 200, 200]
    assert tg.queued() == 1
    await tg.work()
    assert len(telegram_api.calls_to("sendMessage")) == 1
    assert [t.title for t in TaskStore(tg.redis, "default").list()] == ["pay the rent"]


async def test_operator_click_is_answered_at_once_and_the_card_is_edited(tg, telegram_api, shared_eval):
    sent = await _card(tg, telegram_api, shared_eval)
    [[button, *others]] = sent.params["reply_markup"]["inline_keyboard"]
    assert [b["text"] for b in others] == ["Snooze to tomorrow", "Delete"]
    assert button["text"] == "Mark done" and len(button["callback_data"].encode()) <= 64
    card_message = {"message_id": 500, "date": 1441645600, "chat": {"id": TELEGRAM_OPERATOR, "type": "private"},
                    "from": {"id": 4242, "is_bot": True, "first_name": "Deputy"}, "text": sent.params["text"]}

    assert await post_update(tg, callback_update(20002, TELEGRAM_OPERATOR, card_message, button["callback_data"])) == 200
    [answer] = telegram_api.calls_to("answerCallbackQuery")
    assert answer.params["callback_query_id"] == "cb-20002" and answer.params["text"] == "Got it."
    await tg.work()

    [edit] = telegram_api.calls_to("editMessageText")
    assert edit.params["chat_id"] == TELEGRAM_OPERATOR and edit.params["message_id"] == 500
    assert "reply_markup" not in edit.params  # the keyboard is gone
    assert "Done ✓" in edit.params["text"] and "by user1111111" in edit.params["text"]
    assert TaskStore(tg.redis, "default").list() == []

    # the old button is dead now: a second click is told so and changes nothing
    assert await post_update(tg, callback_update(20003, TELEGRAM_OPERATOR, card_message, button["callback_data"])) == 200
    assert telegram_api.calls_to("answerCallbackQuery")[-1].params["text"] == INVALID_BUTTON
    assert tg.queued() == 0


async def test_click_by_someone_else_is_refused_and_changes_nothing(tg, telegram_api, shared_eval):
    sent = await _card(tg, telegram_api, shared_eval)
    [[button, *_]] = sent.params["reply_markup"]["inline_keyboard"]
    assert button["text"] == "Mark done"
    card_message = {"message_id": 500, "date": 1441645600, "chat": {"id": TELEGRAM_OPERATOR, "type": "private"}, "text": "card"}

    assert await post_update(tg, callback_update(20010, 2222, card_message, button["callback_data"])) == 200
    [answer] = telegram_api.calls_to("answerCallbackQuery")
    assert answer.params["show_alert"] is True and "Only the operator" in answer.params["text"]
    await tg.work()
    assert telegram_api.calls_to("editMessageText") == []
    assert [t.title for t in TaskStore(tg.redis, "default").list()] == ["send the invoice"]
    [refused] = tg.recent("request.refused")
    assert refused.data["source"] == "telegram-2222" and refused.data["reason"] == "not an operator"


async def test_forged_callback_data_gets_an_error_and_changes_nothing(tg, telegram_api, shared_eval):
    await _card(tg, telegram_api, shared_eval)
    # teloxide's real CallbackQuery ("some_data"), wrapped in an Update as Telegram sends it
    sample = {"update_id": 40001, "callback_query": payload(shared_eval, "telegram/teloxide_callback_query_object.json")}
    card_message = {"message_id": 500, "date": 1441645600, "chat": {"id": TELEGRAM_OPERATOR, "type": "private"}, "text": "card"}
    well_formed = callback_update(40002, TELEGRAM_OPERATOR, card_message, "AAAAAAAAAAAAAAAA")
    assert await post_update(tg, sample) == 200
    assert await post_update(tg, well_formed) == 200

    answers = telegram_api.calls_to("answerCallbackQuery")
    assert [a.params["text"] for a in answers] == [INVALID_BUTTON, INVALID_BUTTON]
    assert all(a.params["show_alert"] is True for a in answers)
    assert tg.queued() == 0
    assert tg.recent("decision.received") == []
    assert await tg.services.refusals.counts() == {"telegram:unknown-button": 2}
    clickers = {f"telegram-{sample['callback_query']['from']['id']}", f"telegram-{TELEGRAM_OPERATOR}"}
    assert {e.data["source"] for e in tg.recent("request.refused")} == clickers
    assert [t.title for t in TaskStore(tg.redis, "default").list()] == ["send the invoice"]


async def test_stranger_in_a_group_gets_the_refusal_in_reply(tg, telegram_api, shared_eval):
    update = payload(shared_eval, "telegram/teloxide_supergroup_command_reply.json")  # "/report" from a real supergroup
    assert await post_update(tg, update) == 200
    await tg.work()
    [sent] = telegram_api.calls_to("sendMessage")
    assert sent.params["chat_id"] == update["message"]["chat"]["id"]
    assert sent.params["reply_parameters"]["message_id"] == update["message"]["message_id"]
    assert "only take instructions" in sent.params["text"]
    assert tg.recent("request.refused")[0].data["source"] == f"telegram-{update['message']['from']['id']}"


async def test_rate_limited_reply_is_retried_after_retry_after_and_delivered_once(tg, telegram_api, shared_eval):
    telegram_api.fail("sendMessage", status=429, retry_after=1)
    assert await post_update(tg, text_update(shared_eval, "/remember VAT number 123")) == 200
    await tg.work()
    attempts = telegram_api.calls_to("sendMessage", ok_only=False)
    assert [a.status for a in attempts] == [429, 200]
    assert len(tg.recent("reply.delivered")) == 1 and tg.recent("reply.failed") == []


async def test_redis_down_gives_telegram_a_5xx(make_platform, telegram_api, shared_eval):
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    tg = await make_platform(telegram_env(telegram_api), telegram_channel, redis_for_gateway=dead)
    assert await post_update(tg, text_update(shared_eval, "/remember lost?")) >= 500


async def test_polling_confirms_an_offset_only_once_its_update_is_durable(make_platform, telegram_api, shared_eval, monkeypatch):
    first = payload(shared_eval, "telegram/teloxide_private_plain_text.json")  # update 306197398, "4"
    second = payload(shared_eval, "telegram/teloxide_private_text_message.json")  # update 892252934, "hello there"
    first["message"]["from"]["id"] = second["message"]["from"]["id"] = TELEGRAM_OPERATOR
    await telegram_api.queue_update(first)
    await telegram_api.queue_update(second)
    real_accept = Gateway.accept
    failures = iter([True])

    async def flaky_accept(self, inbound):  # Redis drops out once, while the second update is being stored
        if inbound.event_id == "892252934" and next(failures, False):
            raise RedisConnectionError("connection refused")
        return await real_accept(self, inbound)

    monkeypatch.setattr(Gateway, "accept", flaky_accept)
    tg = await make_platform(telegram_env(telegram_api, TELEGRAM_PUBLIC_URL=""), telegram_channel)
    await until(lambda: 892252935 in telegram_api.offsets, timeout=10, what="the second update to be confirmed")

    # both came in one batch; the first was confirmed, the second asked for again, stored, then confirmed
    assert telegram_api.offsets[:3] == [None, 306197399, 892252935]
    assert tg.queued() == 2
    assert sorted(e.data["event_id"] for e in tg.recent("inbound.received")) == ["306197398", "892252934"]
    assert telegram_api.calls_to("deleteWebhook")  # polling and a webhook cannot both be active


async def test_an_update_that_breaks_a_handler_does_not_hold_back_later_ones(tg, telegram_api, shared_eval, monkeypatch):
    real_accept = tg.services.gateway.accept

    async def broken_once(inbound):
        if inbound.event_id == "50001":
            raise ValueError("a bug, not an outage")
        return await real_accept(inbound)

    monkeypatch.setattr(tg.services.gateway, "accept", broken_once)
    assert await post_update(tg, text_update(shared_eval, "/remember one", update_id=50001)) == 200
    assert await post_update(tg, text_update(shared_eval, "/remember two", update_id=50002)) == 200
    assert tg.queued() == 1
    assert tg.recent("inbound.failed")[0].data["update_id"] == 50001


async def test_a_reply_with_a_picture_sends_the_text_then_the_photo(tg, telegram_api):
    import base64

    from agents.spend_chart import png
    from kernel.messages import Reply
    from kernel.outbox import Outbox

    from datetime import date

    chart = png([(date(2026, 11, d), cents) for d, cents in ((1, 0), (2, 200), (3, 100), (4, 500))], cap=400)
    Outbox(tg.redis).put(Reply(channel="telegram", thread_id="42", text="Your digest", reply_to={"chat_id": "42"},
                               image_png=base64.b64encode(chart).decode()))
    assert await tg.deliver() == 1
    [text] = telegram_api.calls_to("sendMessage")
    [photo] = telegram_api.calls_to("sendPhoto")
    assert text.params["text"] == "Your digest"
    assert photo.params["photo"]["size"] == len(chart)


async def test_the_command_menu_is_every_command_within_telegrams_rules(tg, telegram_api):
    await until(lambda: telegram_api.calls_to("setMyCommands"), timeout=5, what="setMyCommands")
    [menu] = telegram_api.calls_to("setMyCommands")
    commands = menu.params["commands"]
    assert [c["command"] for c in commands] == [c.name for c in COMMANDS]
    assert all(re.fullmatch(r"[a-z0-9_]{1,32}", c["command"]) and 3 <= len(c["description"]) <= 256 for c in commands)


async def test_every_menu_command_reaches_deputy_as_that_command(tg, telegram_api, shared_eval):
    for n, command in enumerate(COMMANDS):
        assert await post_update(tg, text_update(shared_eval, f"/{command.name}", update_id=60000 + n)) == 200
    intents = [e.data["intent"] for e in tg.recent("intent.recognized")]
    # a command without its arguments is still that command: its usage comes back, not "I don't know"
    assert len(intents) == len(COMMANDS) and "unrecognised" not in intents


async def test_replies_render_deputys_markup_as_telegram_html(tg, telegram_api):
    Outbox(tg.redis).put(Reply(channel="telegram", thread_id="42", reply_to={"chat_id": "42"},
                               text="*Digest* for _today_: 2 < 3 & `task_id` stays"))
    assert await tg.deliver() == 1
    [sent] = telegram_api.calls_to("sendMessage")
    assert sent.params["parse_mode"] == "HTML"
    assert sent.params["text"] == "<b>Digest</b> for <i>today</i>: 2 &lt; 3 &amp; <code>task_id</code> stays"


async def test_a_reply_too_long_for_html_goes_out_as_plain_text(tg, telegram_api):
    text = "*" + "&" * 1500 + "*"  # 1,502 characters; escaped, over Telegram's 4,096
    Outbox(tg.redis).put(Reply(channel="telegram", thread_id="42", reply_to={"chat_id": "42"}, text=text))
    assert await tg.deliver() == 1
    [sent] = telegram_api.calls_to("sendMessage")
    assert "parse_mode" not in sent.params and sent.params["text"] == "&" * 1500


async def test_the_chat_shows_typing_as_soon_as_a_message_is_taken(tg, telegram_api, shared_eval):
    assert await post_update(tg, text_update(shared_eval, "/remember the VAT number is ES-B12345678", update_id=61000)) == 200
    [typing] = await until(lambda: telegram_api.calls_to("sendChatAction"), timeout=5, what="sendChatAction")
    assert typing.params["chat_id"] == TELEGRAM_OPERATOR and typing.params["action"] == "typing"
    assert tg.queued() == 1  # nothing was done yet: the sign is all there is until a worker runs


async def test_telegram_asks_the_time_zone_once_with_the_first_time_and_remembers_the_answer(tg, telegram_api, shared_eval):
    assert await post_update(tg, text_update(shared_eval, "/remind call Ana tomorrow 10am", update_id=62000)) == 200
    await tg.work()
    assert ZONE_QUESTION in telegram_api.calls_to("sendMessage")[-1].params["text"]
    assert await post_update(tg, text_update(shared_eval, "Madrid", update_id=62001)) == 200
    await tg.work()
    answer = telegram_api.calls_to("sendMessage")[-1].params["text"]
    assert answer.startswith("Thanks — I'll use Europe/Madrid for your times.") and "10:00" in answer
    assert Profiles(tg.redis, "default").get(str(TELEGRAM_OPERATOR)).timezone == "Europe/Madrid"

    assert await post_update(tg, text_update(shared_eval, "/remind call Bob tomorrow 11am", update_id=62002)) == 200
    await tg.work()
    assert ZONE_QUESTION not in telegram_api.calls_to("sendMessage")[-1].params["text"]
