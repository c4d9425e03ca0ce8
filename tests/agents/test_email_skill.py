"""Sending an email from free text through the real gateway, a burst worker and a real SMTP server: the recipient
and text come from the words, what is missing is asked, and nothing leaves before approval."""
from __future__ import annotations

import uuid
from typing import Any

from tests.bot.conftest import Deputy


async def last(deputy: Deputy) -> dict[str, Any]:
    await deputy.work()
    return (await deputy.messages())[-1]


async def approve(deputy: Deputy, card: dict[str, Any]) -> None:
    button = next(b for b in card["buttons"] if b["label"] == "Approve")
    resp = await deputy.client.post("/api/decisions", json={"thread_id": "t1", "action": button["action"], "value": button["value"],
                                                             "client_id": uuid.uuid4().hex})
    assert resp.status == 202
    await deputy.work()
    await deputy.work()


async def test_an_email_in_plain_words_is_shown_then_sent_after_approval(deputy: Deputy, smtp: Any) -> None:
    await deputy.say("email bob@acme.io that the contract is signed")
    card = (await last(deputy))["card"]
    assert "bob@acme.io" in card["preview"] and "The contract is signed" in card["preview"]
    assert smtp.messages == []
    await approve(deputy, card)
    [sent] = smtp.messages
    assert sent["To"] == "bob@acme.io" and "The contract is signed" in sent.get_content()


async def test_an_unknown_name_asks_for_the_address_and_a_missing_text_is_asked_for(deputy: Deputy, smtp: Any) -> None:
    await deputy.say("please email sarah and tell her i'm running late")
    assert (await last(deputy))["text"].startswith("What is Sarah's email address?")
    await deputy.say("sarah@studio.example")
    card = (await last(deputy))["card"]
    assert "sarah@studio.example" in card["preview"] and "I'm running late" in card["preview"]

    await deputy.say("send an email to dan@acme.io", thread_id="t2")
    await deputy.work()
    assert (await deputy.messages("t2"))[-1]["text"].startswith("What should the email to dan@acme.io say?")
    assert smtp.messages == []


async def test_the_subject_is_a_whole_clause_and_can_be_corrected_before_approval(deputy: Deputy, smtp: Any) -> None:
    await deputy.say("email bob@acme.io that the contract is signed and i will send the invoice tomorrow")
    reply = await last(deputy)
    assert reply["text"].startswith("Send this email? I need your approval first")
    assert "Subject: The contract is signed\n" in reply["card"]["preview"] and "['" not in reply["card"]["rationale"]
    await deputy.say("change the subject to Contract signed")
    card = (await last(deputy))["card"]
    await approve(deputy, card)
    [sent] = smtp.messages
    assert sent["Subject"] == "Contract signed"
