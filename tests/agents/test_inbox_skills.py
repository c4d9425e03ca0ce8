"""The inbox as an everyday job, through the real gateway, a burst worker, the IMAP test server and a real SMTP server:
what's new (a card per email, the mailbox untouched), the card's buttons, and a reply drafted in the sender's thread."""
from __future__ import annotations

import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import pytest

from harness.fakes.imap_server import ImapServer
from tests.bot.conftest import Deputy, logged_in_deputy


def mail(sender: str, subject: str, body: str, message_id: str, references: str = "", days_ago: int = 0) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "me@studio.example"
    message["Subject"] = subject
    message["Date"] = formatdate(time.time() - days_ago * 86_400)
    message["Message-ID"] = message_id
    if references:
        message["References"] = references
    message.set_content(body)
    return message


@pytest.fixture
async def deputy(settings: Any, redis: Any, imap: ImapServer, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from kernel.settings import load_settings

    for key, value in {"IMAP_HOST": "127.0.0.1", "IMAP_PORT": str(imap.port), "IMAP_SECURITY": "none",
                       "IMAP_USERNAME": "me", "IMAP_PASSWORD": "inbox-pass"}.items():
        monkeypatch.setenv(key, value)
    async with logged_in_deputy(load_settings(), redis) as running:
        yield running


async def said(deputy: Deputy, text: str, thread_id: str = "t1") -> list[dict[str, Any]]:
    """Deputy's messages that answer `text`."""
    before = len(await deputy.messages(thread_id))
    await deputy.say(text, thread_id=thread_id)
    await deputy.work()
    return [m for m in (await deputy.messages(thread_id))[before:] if m["role"] == "deputy"]


async def click(deputy: Deputy, card: dict[str, Any], label: str) -> dict[str, Any]:
    button = next(b for b in card["buttons"] if b["label"] == label)
    resp = await deputy.client.post("/api/decisions", json={"thread_id": "t1", "action": button["action"], "value": button["value"],
                                                             "client_id": uuid.uuid4().hex})
    assert resp.status == 202
    await deputy.work()
    await deputy.work()
    # a card's update replaces it where it stands: the newest is the latest written, not the last listed
    return max(await deputy.messages(), key=lambda m: m["ts"])


def cards(messages: list[dict[str, Any]], title: str) -> list[dict[str, Any]]:
    return [m["card"] for m in messages if m.get("card") and m["card"]["title"] == title]


async def test_whats_new_shows_each_new_email_with_its_buttons_and_leaves_the_mailbox_as_it_was(deputy: Deputy, imap: ImapServer) -> None:
    ana = imap.deliver(mail("Ana Lopez <ana@lopez.example>", "Workshop dates", "Could we do Tuesday?\nThanks", "<a1@lopez.example>"))
    # read in another mail program, but never shown by Deputy: still new to the operator here
    bob = imap.deliver(mail("bob@client.example", "Invoice 2025-014", "Attached.", "<b1@client.example>"), seen=True)
    imap.deliver(mail("old@client.example", "Last year", "x", "<o1@client.example>", days_ago=400), seen=True)

    answer = await said(deputy, "what's new in my inbox")

    assert answer[0]["text"].startswith("2 new emails, newest first:")
    assert "Ana Lopez — Workshop dates: Could we do Tuesday? Thanks" in answer[0]["text"]
    shown = cards(answer, "New email")
    assert [c["fields"][0]["value"] for c in shown] == ["bob@client.example", "Ana Lopez <ana@lopez.example>"]
    assert all([b["label"] for b in c["buttons"]] == ["Reply", "Make task", "Ignore"] for c in shown)
    assert imap.flags(ana) == set() and imap.flags(bob) == {"\\Seen"}
    # a named sender the contacts do not know is offered as a contact, once
    [proposal] = [m["card"] for m in answer if m.get("card") and m["card"]["title"].startswith("Update ")]
    assert proposal["title"] == "Update Ana Lopez's contact?" and [b["label"] for b in proposal["buttons"]] == ["Confirm", "Reject"]

    assert (await said(deputy, "/inbox"))[0]["text"] == "Nothing new in your inbox since I last showed it to you."
    imap.deliver(mail("carol@shop.example", "Order 1042", "New order", "<c1@shop.example>"))
    again = await said(deputy, "/inbox")
    assert again[0]["text"].startswith("1 new email,") and len(cards(again, "New email")) == 1


async def test_make_task_and_ignore_settle_the_card_once(deputy: Deputy, imap: ImapServer) -> None:
    imap.deliver(mail("Ana Lopez <ana@lopez.example>", "Workshop dates", "Tuesday?", "<a1@lopez.example>"))
    imap.deliver(mail("news@shop.example", "Spring sale", "50% off", "<n1@shop.example>"))
    newest, oldest = cards(await said(deputy, "/inbox"), "New email")

    made = await click(deputy, oldest, "Make task")
    assert made["text"].startswith("Added task #") and made["text"].endswith("Reply to Ana Lopez: Workshop dates")
    assert made["card"]["resolution"].startswith("Task #") and made["card"]["buttons"] == []
    assert (await click(deputy, oldest, "Ignore"))["text"] == "Already done: made a task."

    ignored = await click(deputy, newest, "Ignore")
    assert ignored["text"].startswith("Ignored") and ignored["card"]["resolution"].startswith("Ignored by")


async def test_reply_to_the_last_email_of_a_name_is_a_draft_in_her_thread_sent_after_approval(deputy: Deputy, imap: ImapServer,
                                                                                               smtp: Any) -> None:
    imap.deliver(mail("Ana Lopez <ana@lopez.example>", "Workshop", "First", "<a1@lopez.example>", days_ago=3), seen=True)
    imap.deliver(mail("Ana Lopez <ana@lopez.example>", "Re: Workshop", "Tuesday or Thursday?", "<a2@lopez.example>",
                      references="<a1@lopez.example> <me1@studio.example>", days_ago=1))
    imap.deliver(mail("Banana Co <sales@banana.example>", "Offer", "Buy now", "<x1@banana.example>"))

    [answer] = await said(deputy, "reply to Ana's last email saying thanks, Tuesday works")

    draft = answer["card"]
    fields = {f["label"]: f["value"] for f in draft["fields"]}
    assert (fields["To"], fields["Subject"], fields["In reply to"]) == ("ana@lopez.example", "Re: Workshop", "<a2@lopez.example>")
    assert draft["preview"].endswith("Hi Ana,\n\nThanks, Tuesday works\n\nBest regards")
    approval = await click(deputy, draft, "Send")
    assert approval["card"]["title"] == "Send this email?" and "In-Reply-To: <a2@lopez.example>" in approval["card"]["preview"]
    assert smtp.messages == []

    await click(deputy, approval["card"], "Approve")

    [sent] = smtp.messages
    assert (sent["To"], sent["Subject"], sent["In-Reply-To"]) == ("ana@lopez.example", "Re: Workshop", "<a2@lopez.example>")
    assert sent["References"] == "<a1@lopez.example> <me1@studio.example> <a2@lopez.example>"


async def test_reply_on_a_card_drafts_from_a_template_and_an_unknown_sender_is_said(deputy: Deputy, imap: ImapServer) -> None:
    imap.deliver(mail("bob@client.example", "Quote?", "How much for a logo?", "<q1@client.example>"))
    [card] = cards(await said(deputy, "/inbox"), "New email")

    drafted = await click(deputy, card, "Reply")

    assert drafted["card"]["title"] == "Draft email"
    assert "Thank you for your email about “Quote?”" in drafted["card"]["preview"]
    resolved = [m for m in await deputy.messages() if m.get("card") and m["card"]["card_id"] == card["card_id"]]
    assert resolved[-1]["card"]["resolution"].startswith("Reply drafted by")
    assert (await said(deputy, "/reply zed@nowhere.example"))[0]["text"] == "I found no email from zed@nowhere.example in your inbox."


async def test_without_imap_the_inbox_jobs_say_how_to_set_it_up(settings: Any, redis: Any) -> None:
    async with logged_in_deputy(settings, redis) as plain:
        for asked in ("what's new in my inbox", "/reply Ana | thanks"):
            [hint] = await said(plain, asked)
            assert "incoming email is not set up" in hint["text"] and "IMAP_HOST" in hint["text"]
