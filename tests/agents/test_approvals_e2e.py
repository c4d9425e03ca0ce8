"""Plan → approval card → click → exactly one email, through the console, gateway, queue and worker."""
from __future__ import annotations

import asyncio
import time

from kernel.messages import Decision
from memory.events import EventLog

EMAIL = "/email ana@acme.io Your invoice | Hi Ana, the invoice is attached."


async def click(deputy, value: str, action: str = "approval.approve", client_id: str = "c1") -> dict:
    resp = await deputy.client.post("/api/decisions", json={"thread_id": "t1", "action": action, "value": value, "client_id": client_id})
    assert resp.status == 202
    return await resp.json()


async def ask_to_send(deputy) -> tuple[dict, dict]:
    ack = await deputy.say(EMAIL)
    await deputy.work()
    card = (await deputy.messages())[-1]["card"]
    assert card is not None
    return ack, card


async def test_email_waits_for_approval_then_is_sent_exactly_once(deputy, smtp, settings):
    ack, card = await ask_to_send(deputy)
    assert smtp.messages == []  # nothing leaves before the click
    fields = {f["label"]: f["value"] for f in card["fields"]}
    assert fields["Action"] == "email.send" and fields["Target"] == "ana@acme.io"
    assert "/100" in fields["Risk score"] and "cannot be undone" in fields["Risk score"]
    assert "Subject: Your invoice" in card["preview"] and "the invoice is attached" in card["preview"]
    assert [b["action"] for b in card["buttons"]] == ["approval.approve", "approval.reject"]

    await click(deputy, card["buttons"][0]["value"])
    await deputy.work()

    assert len(smtp.messages) == 1
    assert smtp.messages[0]["Subject"] == "Your invoice"
    messages = await deputy.messages()
    updated = next(m for m in messages if m["card"] and m["card"]["card_id"] == card["card_id"])
    assert updated["card"]["resolution"].startswith("Approved by operator at") and updated["card"]["buttons"] == []
    assert "Sent “Your invoice” to ana@acme.io" in messages[-1]["text"]

    kinds = [e.kind for e in EventLog(deputy.redis, settings.workspace).timeline(ack["trace_id"])]
    for kind in ("plan.made", "step.assessed", "approval.requested", "approval.decided", "step.done", "run.finished"):
        assert kind in kinds, kind
    assessed = next(e for e in EventLog(deputy.redis, settings.workspace).timeline(ack["trace_id"]) if e.kind == "step.assessed")
    assert assessed.data["decision"] == "approve" and assessed.data["risk"] > 0 and assessed.data["rationale"]


async def test_double_click_and_two_approvers_execute_once(deputy, smtp):
    _, card = await ask_to_send(deputy)
    approval_id = card["buttons"][0]["value"]
    await asyncio.gather(*(click(deputy, approval_id, client_id=f"c{i}") for i in range(4)))
    zed = Decision(channel="console", event_id="zed-1", user_id="zed", thread_id="t1", action="approval.approve", value=approval_id)
    await deputy.services.gateway.decide(zed)
    await deputy.work()
    assert len(smtp.messages) == 1
    texts = [m["text"] for m in await deputy.messages()]
    assert sum("Already decided: approved by operator" in t for t in texts) >= 1


async def test_wrong_approver_is_refused_and_nothing_changes(deputy, smtp, settings):
    ack, card = await ask_to_send(deputy)
    approval_id = card["buttons"][0]["value"]
    zed = Decision(channel="console", event_id="zed-1", user_id="zed", thread_id="t1", action="approval.approve", value=approval_id)
    await deputy.services.gateway.decide(zed)
    await deputy.work()
    assert smtp.messages == []
    assert "Only operator may decide this. Nothing was changed." in (await deputy.messages())[-1]["text"]
    kinds = [e.kind for e in EventLog(deputy.redis, settings.workspace).timeline(ack["trace_id"])]
    assert "approval.refused" in kinds
    # the rightful approver can still decide
    await click(deputy, approval_id)
    await deputy.work()
    assert len(smtp.messages) == 1


async def test_rejected_approval_sends_nothing(deputy, smtp):
    _, card = await ask_to_send(deputy)
    await click(deputy, card["buttons"][1]["value"], action="approval.reject")
    await deputy.work()
    assert smtp.messages == []
    last = (await deputy.messages())
    resolved = next(m for m in last if m["card"] and m["card"]["card_id"] == card["card_id"])
    assert resolved["card"]["resolution"].startswith("Rejected by operator")
    await click(deputy, card["buttons"][0]["value"], client_id="late")
    await deputy.work()
    assert smtp.messages == []
    assert "Already decided: rejected by operator" in (await deputy.messages())[-1]["text"]


async def test_expired_approval_is_refused(deputy, smtp, monkeypatch):
    monkeypatch.setattr(time, "time", time.time)  # keep the real clock; expiry is moved instead
    _, card = await ask_to_send(deputy)
    approval_id = card["buttons"][0]["value"]
    from kernel.keys import Keys

    deputy.redis.hset(Keys("default")("approval", approval_id, "state"), "expires_at", repr(time.time() - 1))
    await click(deputy, approval_id)
    await deputy.work()
    assert smtp.messages == []
    texts = [m["text"] for m in await deputy.messages()]
    assert any("expired" in t and "nothing was done" in t for t in texts)


async def test_arguments_changed_after_approval_are_refused(deputy, smtp, settings):
    from agents.run_store import RunStore

    ack, card = await ask_to_send(deputy)
    runs = RunStore(deputy.redis, settings.workspace)
    plan = runs.plan(f"run-{ack['trace_id']}")
    step = plan.steps[0]
    tampered = plan.model_copy(update={"steps": (step.model_copy(update={"args": {**step.args, "to": ["x@evil.example"]}}),)})
    runs.replace_plan(tampered)

    await click(deputy, card["buttons"][0]["value"])
    await deputy.work()
    assert smtp.messages == []
    assert "changed after it was approved" in (await deputy.messages())[-1]["text"]
    kinds = [e.kind for e in EventLog(deputy.redis, settings.workspace).timeline(ack["trace_id"])]
    assert "approval.mismatch" in kinds and "step.done" not in kinds


async def test_smtp_failing_is_retried_then_the_breaker_opens_and_the_operator_is_told(deputy, smtp, settings, monkeypatch):
    from integrations import invoke

    monkeypatch.setattr(invoke.time, "sleep", lambda s: None)
    smtp.recorder.fail_data.extend(["451 4.3.0 try later"] * 20)
    _, card = await ask_to_send(deputy)
    # the executor's sleep is time.sleep; keep the test quick
    monkeypatch.setattr("agents.executor.time.sleep", lambda s: None)
    await click(deputy, card["buttons"][0]["value"])
    await deputy.work()
    assert smtp.messages == []
    assert smtp.recorder.data_attempts == 3  # the breaker opened after 3 failures and stopped the 4th attempt
    last = (await deputy.messages())[-1]
    assert last["ok"] is False and "email.send is failing repeatedly" in last["text"]


async def test_deciding_a_card_updates_its_digest_copy_too(deputy, smtp, monkeypatch):
    """An approval waiting overnight is shown again in the digest; deciding it clears the buttons of both."""
    from datetime import datetime, timezone

    from tests.jobs.test_cron import tick

    monkeypatch.setenv("DIGEST_TIME", "07:00")
    _, card = await ask_to_send(deputy)
    tick(deputy.redis, datetime(2025, 6, 2, 7, 0, tzinfo=timezone.utc))
    await deputy.deliver()
    [copy] = [m["card"] for m in await deputy.messages("digest") if m["card"]]
    assert copy["card_id"] != card["card_id"] and copy["buttons"]

    await click(deputy, card["buttons"][0]["value"])  # decided on the original, in its own thread
    await deputy.work()
    await deputy.deliver()

    assert len(smtp.messages) == 1
    original = next(m["card"] for m in await deputy.messages() if m["card"] and m["card"]["card_id"] == card["card_id"])
    [copy] = [m["card"] for m in await deputy.messages("digest") if m["card"]]
    for shown in (original, copy):
        assert shown["buttons"] == [] and shown["resolution"].startswith("Approved by operator at")
