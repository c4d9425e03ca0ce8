"""How a card looks on each platform, what its Telegram buttons carry, and how Slack posting is paced: no network."""
from __future__ import annotations

import html
import re

from kernel.messages import Button, Card, CardField
from bot.channels.slack_cards import card_blocks, parse_action_id
from bot.channels.slack_sender import ChannelPacer
from bot.channels.telegram_cards import MESSAGE_MAX, ButtonTokens, Pressed, card_html, keyboard

APPROVAL = Card(
    card_id="appr-7f3a",
    title="Send an email to ana@example.com?",
    fields=(CardField(label="Action", value="email.send"), CardField(label="Target", value="ana@example.com"),
            CardField(label="Amount", value="$1,200 <invoice>"), CardField(label="Risk score", value="0.72 (high)")),
    rationale="Ana asked for the invoice & it is overdue.",
    preview="Hi Ana,\n```the invoice``` is attached.",
    buttons=(Button(label="Approve", action="approval.approve", value="appr-7f3a", style="primary"),
             Button(label="Reject", action="approval.reject", value="appr-7f3a", style="danger")),
)


def test_slack_card_shows_every_part_and_buttons_carry_the_approval_id():
    blocks = card_blocks(APPROVAL, "I need your approval")
    kinds = [b["type"] for b in blocks]
    assert kinds == ["section", "header", "section", "section", "section", "actions"]
    fields = [f["text"] for f in blocks[2]["fields"]]
    assert fields[2] == "*Amount*\n$1,200 &lt;invoice&gt;"  # user text never becomes Slack markup
    assert "&amp;" in blocks[3]["text"]["text"]
    assert blocks[4]["text"]["text"].startswith("```") and blocks[4]["text"]["text"].count("```") == 2
    approve, reject = blocks[-1]["elements"]
    assert (approve["value"], approve["style"], parse_action_id(approve["action_id"])) == ("appr-7f3a", "primary", "approval.approve")
    assert (reject["value"], reject["style"], parse_action_id(reject["action_id"])) == ("appr-7f3a", "danger", "approval.reject")


def test_decided_slack_card_has_no_buttons_and_says_who_and_when():
    decided = APPROVAL.model_copy(update={"resolution": "Approved", "buttons": ()})
    blocks = card_blocks(decided, "Sent.", decided_by="W222", decided_at="1700000000")
    assert "actions" not in [b["type"] for b in blocks]
    line = blocks[-1]["elements"][0]["text"]
    assert line.startswith("Approved · Decided by <@W222>") and "<!date^1700000000^" in line and "2023-11-14 22:13 UTC" in line


def test_slack_limits_are_respected_for_huge_text():
    huge = APPROVAL.model_copy(update={"title": "t" * 500, "preview": "p" * 10_000})
    blocks = card_blocks(huge)
    assert len(blocks[0]["text"]["text"]) <= 150
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section" and "text" in b)


def test_telegram_card_is_escaped_html_within_one_message():
    text = card_html(APPROVAL, "I need your approval")
    assert "<b>Amount:</b> $1,200 &lt;invoice&gt;" in text
    assert "<pre>" in text and "&amp; it is overdue" in text
    huge = card_html(APPROVAL.model_copy(update={"preview": "<&>" * 5_000}))
    assert len(huge) <= MESSAGE_MAX and huge.endswith("</pre>")
    inner = huge.split("<pre>")[1].removesuffix("</pre>")
    assert inner.endswith("…") and not re.search(r"&[#a-z0-9]*…$", inner)  # never cut inside an entity
    assert html.unescape(inner).startswith("<&><&>")


def test_decided_telegram_card_says_who_and_when():
    decided = APPROVAL.model_copy(update={"resolution": "Rejected", "buttons": ()})
    text = card_html(decided, decided_by="ana_ops", decided_at="1700000000")
    assert text.endswith("✔ Rejected — by ana_ops at 2023-11-14 22:13 UTC")


async def test_telegram_buttons_fit_any_value_in_callback_data_and_only_issued_ones_come_back(redis_url):
    from redis.asyncio import Redis as AsyncRedis

    aredis = AsyncRedis.from_url(redis_url)
    tokens = ButtonTokens(aredis, "ws")
    long = APPROVAL.model_copy(update={"buttons": (Button(label="Approve", action="approval.approve", value="v" * 500),
                                                   Button(label="Reject", action="approval.reject", value="w" * 500))})
    try:
        markup, issued = await keyboard(long, tokens)
        assert markup is not None
        data = [b.callback_data for row in markup.inline_keyboard for b in row]
        # Telegram refuses a button whose callback_data is over 64 bytes
        assert data == issued and all(len(d.encode()) <= 64 for d in data)
        assert await tokens.resolve(data[0]) == Pressed("approval.approve", "v" * 500, "appr-7f3a")
        assert await tokens.resolve(data[1]) == Pressed("approval.reject", "w" * 500, "appr-7f3a")
        # callback data a client made up stands for nothing; neither does a button of a replaced card
        assert await tokens.resolve("approval.approve:appr-7f3a") is None
        await tokens.revoke(issued)
        assert await tokens.resolve(data[0]) is None
        assert await keyboard(long.model_copy(update={"resolution": "Approved"}), tokens) == (None, [])
    finally:
        await aredis.aclose()


async def test_pacer_spaces_messages_per_channel_and_backs_off_after_a_429():
    now = [100.0]
    slept: list[tuple[str, float]] = []
    current = [""]

    async def sleep(seconds: float) -> None:
        slept.append((current[0], seconds))

    pacer = ChannelPacer(1.0, clock=lambda: now[0], sleep=sleep)
    for channel in ("C1", "C1", "C1", "C2"):
        current[0] = channel
        await pacer.wait(channel)
    assert slept == [("C1", 1.0), ("C1", 2.0)]  # C2 is not held back by C1

    slept.clear()
    now[0] = 110.0
    pacer.defer("C2", 30)  # Slack said Retry-After: 30 for C2
    current[0] = "C2"
    await pacer.wait("C2")
    assert slept == [("C2", 30.0)]
