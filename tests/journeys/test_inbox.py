"""The inbox as an everyday job, against an IMAP server holding the operator's mail: "what's new in my inbox" shows
each new email with Reply / Make task / Ignore, and "reply to Ana's last email" drafts a reply in her thread that
reaches the mail server, after approval, with In-Reply-To and References naming her message."""
from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate

import pytest

from tests.journeys.world import ClusterConfig

ANA_ID = "<workshop-2@lopez.example>"


def mail(sender: str, subject: str, body: str, message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "me@studio.example"
    message["Subject"] = subject
    message["Date"] = formatdate()
    message["Message-ID"] = message_id
    message.set_content(body)
    return message


@pytest.fixture(scope="module")
def cluster_config() -> ClusterConfig:
    return ClusterConfig(slack=False, telegram=False, caldav=False, imap=True, mailbox=(
        mail("Ana Lopez <ana@lopez.example>", "Workshop dates", "Could we move the workshop to Tuesday?", ANA_ID),
        mail("Bob Reyes <bob@reyes.example>", "Invoice 2025-014", "The invoice is attached, due in 30 days.", "<inv-14@reyes.example>"),
    ))


def test_whats_new_lists_each_new_email_with_its_buttons(console, cluster):
    summary = console.ask("what's new in my inbox")

    assert summary.text.startswith("2 new emails")
    assert "Ana Lopez — Workshop dates" in summary.text and "Bob Reyes — Invoice 2025-014" in summary.text
    cards = [console.reply(where=lambda said: said.card is not None and said.card.title == "New email") for _ in range(2)]
    assert sorted(c.card.fields["From"] for c in cards) == ["Ana Lopez <ana@lopez.example>", "Bob Reyes <bob@reyes.example>"]
    assert all(c.card.labels == ["Reply", "Make task", "Ignore"] for c in cards)
    # showing mail changes nothing in the mailbox
    assert all(cluster.imap.flags(uid) == set() for uid in (1, 2))


def test_reply_to_anas_last_email_is_sent_in_her_thread_after_approval(console, cluster):
    draft = console.ask("reply to Ana's last email saying thanks, Tuesday works")

    assert draft.card is not None and draft.card.title == "Draft email"
    assert (draft.card.fields["To"], draft.card.fields["Subject"]) == ("ana@lopez.example", "Re: Workshop dates")
    assert "Thanks, Tuesday works" in draft.card.preview
    console.click("Send", on=draft)
    approval = console.reply(where=lambda said: said.card is not None and said.card.labels == ["Approve", "Reject"])
    assert cluster.emails() == []

    console.click("Approve", on=approval)
    console.reply(containing="Sent")

    [sent] = cluster.emails()
    assert sent.to == ("ana@lopez.example",) and sent.subject == "Re: Workshop dates"
    assert sent.message["In-Reply-To"] == ANA_ID and sent.message["References"] == ANA_ID
