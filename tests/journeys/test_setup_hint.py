"""Something not set up: a cluster with a calendar but no mail server. Asking for an email says what Deputy would
have done and which settings enable it, and keeps it as a draft; /help and "what can you do" list what works now."""
from __future__ import annotations

import pytest

from tests.journeys.world import ClusterConfig

EMAIL = "/email ana@acme.io Contract | Hi Ana, the signed copy is attached."


@pytest.fixture(scope="module")
def cluster_config() -> ClusterConfig:
    return ClusterConfig(smtp=False, slack=False, telegram=False)


def test_unconfigured_smtp_gives_the_setup_hint_and_keeps_the_email_as_a_draft(console):
    hint = console.ask(EMAIL)
    assert "I would send “Contract” to ana@acme.io, but email is not set up" in hint.text
    assert "SMTP_HOST" in hint.text and "README → Connectors" in hint.text
    assert hint.card is not None and hint.card.labels == ["Keep as draft", "Keep as a task"]

    console.click("Keep as draft", on=hint)
    draft = console.reply(where=lambda said: said.card is not None and said.card.title == "Draft email")
    assert draft.text.startswith("Kept as a draft") and draft.card.fields["To"] == "ana@acme.io"
    assert draft.card.fields["Subject"] == "Contract" and "the signed copy is attached" in draft.card.preview


def test_help_lists_the_calendar_and_names_email_as_not_set_up(console):
    shown = console.ask("/help").text
    assert "/agenda tomorrow" in shown and "/remember" in shown
    not_set_up = shown.split("Not set up yet:", 1)[1]
    assert "email for /email, /followup (set SMTP_HOST, SMTP_FROM)" in not_set_up and "calendar (set" not in not_set_up


def test_what_can_you_do_answers_with_the_same_list(console):
    shown = console.ask("what can you do?").text
    assert "What works now" in shown and "Not set up yet: email" in shown
