"""Operator intents that name a capability: a one-step plan through the agent (inspector, policy, approval)."""
from __future__ import annotations

import pytest

from memory.events import EventLog

INTENTS = """
intents:
  - name: tell_accountant
    description: Send a note to my accountant
    capability: email.send
    text_slot: body
    defaults: {to: [books@ledger.example], subject: Note from the studio}
    strip: [tell the accountant that, tell the accountant, let the accountant know that, let the accountant know]
    examples:
      - tell the accountant that the van was sold
      - let the accountant know the vat return is ready
      - tell the accountant we opened a new bank account
      - let the accountant know that the invoices are uploaded
      - tell the accountant the receipts are in the shared folder
  - name: mail_supplier
    description: Email the supplier
    capability: email.send
    text_slot: body
    strip: [mail the supplier that, mail the supplier]
    examples:
      - mail the supplier that the pallets arrived damaged
      - mail the supplier the order number is wrong
      - mail the supplier that we need twice the cardboard
      - mail the supplier about the late delivery of pallets
      - mail the supplier that the crates are cracked
  - name: refund_order
    description: Refund a customer's order
    capability: payments.refund_everything
    text_slot: order
    strip: [refund order, refund the order, refund]
    examples:
      - refund order 1234 in full
      - refund the order from yesterday's customer
      - give the customer of order 881 their money back
      - refund order 77 please
      - issue a full refund for order 5521
"""


@pytest.fixture
def settings(settings, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from kernel.settings import load_settings

    path = tmp_path / "intents.yaml"
    path.write_text(INTENTS, encoding="utf-8")
    monkeypatch.setenv("INTENTS_FILE", str(path))
    return load_settings()


async def click(deputy, button: dict, client_id: str) -> None:
    resp = await deputy.client.post("/api/decisions", json={"thread_id": "t1", "action": button["action"], "value": button["value"],
                                                           "client_id": client_id})
    assert resp.status == 202
    await deputy.work()


def timeline(deputy, settings, trace_id: str):  # type: ignore[no-untyped-def]
    return EventLog(deputy.redis, settings.workspace).timeline(trace_id)


async def test_a_capability_intent_asks_for_approval_then_acts_once(deputy, smtp, settings):
    ack = await deputy.say("tell the accountant that the van was sold in March")
    await deputy.work()
    card = (await deputy.messages())[-1]["card"]
    assert smtp.messages == []
    assert card["title"] == "Send this email?"
    assert card["preview"].startswith("To: books@ledger.example\nSubject: Note from the studio\n\n")
    assert "van was sold in March" in card["preview"]
    plan = next(e for e in timeline(deputy, settings, ack["trace_id"]) if e.kind == "plan.made")
    assert plan.data["source"] == "playbook:tell_accountant" and plan.data["allowed"] == ["email.send"]

    approve = next(b for b in card["buttons"] if b["label"] == "Approve")
    await click(deputy, approve, "c1")
    await click(deputy, approve, "c2")  # a second click does nothing more
    assert len(smtp.messages) == 1
    assert smtp.messages[0]["To"] == "books@ledger.example" and smtp.messages[0]["Subject"] == "Note from the studio"
    kinds = [e.kind for e in timeline(deputy, settings, ack["trace_id"])]
    assert kinds.count("step.done") == 1 and "approval.decided" in kinds


async def test_a_missing_argument_gets_a_question_and_nothing_runs(deputy, smtp, settings):
    ack = await deputy.say("mail the supplier that the pallets arrived damaged")
    await deputy.work()
    last = (await deputy.messages())[-1]
    assert last["card"] is None and last["ok"] is False
    assert "To do 'mail_supplier' I still need: to" in last["text"] and "subject" in last["text"]
    kinds = [e.kind for e in timeline(deputy, settings, ack["trace_id"])]
    assert "plan.made" not in kinds and "approval.requested" not in kinds
    assert smtp.messages == []


async def test_an_unknown_capability_is_refused_with_the_reason(deputy, smtp, settings):
    ack = await deputy.say("refund order 1234 in full")
    await deputy.work()
    last = (await deputy.messages())[-1]
    assert last["ok"] is False and last["card"] is None
    assert "I did not act" in last["text"] and "payments.refund_everything, which I do not have" in last["text"]
    events = timeline(deputy, settings, ack["trace_id"])
    assert [e.data["status"] for e in events if e.kind == "run.finished"] == ["blocked"]
    assert not any(e.kind in ("approval.requested", "step.done") for e in events)
