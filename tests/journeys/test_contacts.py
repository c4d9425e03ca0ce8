"""Contacts from chat: saved, updated (the old value kept), followed up by name, and a detail someone else's
webhook proposes becoming a fact only once the operator confirms it."""
from __future__ import annotations

import json
import time
import urllib.request

import pytest

from integrations.webhooks import SIGNATURE_HEADER, sign
from tests.journeys.console_user import ConsoleUser
from tests.journeys.world import ClusterConfig

HOOK_SECRET = "journey-leads-secret"


@pytest.fixture(scope="module")
def cluster_config() -> ClusterConfig:
    return ClusterConfig(slack=False, telegram=False, env={"INBOUND_HOOKS": json.dumps({"leads": HOOK_SECRET})})


def _deliver(cluster, payload: dict) -> int:
    body = json.dumps(payload).encode()
    request = urllib.request.Request(f"{cluster.url}/hooks/leads", data=body, method="POST", headers={
        "Content-Type": "application/json", SIGNATURE_HEADER: sign(HOOK_SECRET, body, int(time.time()))})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_a_contact_saved_and_updated_in_chat_is_followed_up_at_the_current_address(console, cluster):
    saved = console.ask("Ana Lopez's email is ana@lopez.example, she works at Acme")
    assert "Saved Ana Lopez" in saved.text and "ana@lopez.example" in saved.text

    updated = console.ask("Ana's new email is ana@newco.example")
    assert "ana@newco.example" in updated.text and "was ana@lopez.example" in updated.text

    card = console.ask("/followup Ana", where=lambda said: said.card is not None and "Approve" in said.card.labels)
    assert "ana@newco.example" in card.shown
    assert cluster.emails() == []
    console.click("Approve")
    console.reply(containing="task")
    [email] = cluster.emails()
    assert email.to == ("ana@newco.example",)

    tasks = console.ask("/task list")
    assert "Check for a reply from Ana" in tasks.shown
    # the email and the reply task are on Ana's record
    found = console.ask("/contact Ana")
    assert "email.sent" in found.text and "followup" in found.text


def test_whats_anas_email_answers_with_the_current_address_and_what_changed(console):
    answer = console.ask("what's Ana's email")
    assert "ana@newco.example" in answer.text
    assert "before: ana@lopez.example" in answer.text


def test_a_phone_number_a_webhook_proposes_becomes_a_fact_once_confirmed(console, cluster):
    assert _deliver(cluster, {"id": "lead-17", "contact": {"name": "Ana Lopez", "phone": "+34 600 111 222"}}) == 202
    hook = ConsoleUser(cluster, thread_id="hook-leads")
    proposal = hook.reply(where=lambda said: said.card is not None and "Confirm" in said.card.labels)
    assert "+34 600 111 222" in proposal.shown

    before = console.ask("what's Ana's phone number")
    assert "+34 600 111 222" not in before.text

    hook.click("Confirm", on=proposal)
    hook.reply(containing="Saved Ana Lopez")
    after = console.ask("what's Ana's phone number")
    assert "+34 600 111 222" in after.text and "confirmed by you" in after.text
