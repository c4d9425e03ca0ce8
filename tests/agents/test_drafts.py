"""/draft → a draft card → Send (the email playbook's approval) → exactly one email; Discard sends nothing."""
from __future__ import annotations

import asyncio
import json

import pytest

from agents.drafts import DraftStore
from kernel.live_text import console_live_channel
from memory.events import EventLog


async def click(deputy, button: dict, client_id: str = "c1") -> None:
    resp = await deputy.client.post("/api/decisions", json={"thread_id": "t1", "action": button["action"], "value": button["value"],
                                                           "client_id": client_id})
    assert resp.status == 202
    await deputy.work()


def button(card: dict, label: str) -> dict:
    return next(b for b in card["buttons"] if b["label"] == label)


async def draft(deputy, text: str) -> tuple[dict, dict]:
    ack = await deputy.say(text)
    await deputy.work()
    last = (await deputy.messages())[-1]
    assert last["card"] is not None and last["card"]["title"] == "Draft email", last["text"]
    return ack, last["card"]


def kinds(deputy, settings, trace_id: str) -> list[str]:
    return [e.kind for e in EventLog(deputy.redis, settings.workspace).timeline(trace_id)]


async def test_offline_draft_send_approve_sends_exactly_that_email_once(deputy, smtp, settings):
    ack, card = await draft(deputy, "/draft ana@acme.io about the invoice for May")
    assert smtp.messages == []
    fields = {f["label"]: f["value"] for f in card["fields"]}
    assert fields["To"] == "ana@acme.io" and fields["Subject"] == "The invoice for May"
    assert card["preview"].startswith("To: ana@acme.io\nSubject: The invoice for May\n\nHi Ana,")
    assert [b["label"] for b in card["buttons"]] == ["Send", "Discard"]
    assert "draft.created" in kinds(deputy, settings, ack["trace_id"])

    await click(deputy, button(card, "Send"))
    approval = (await deputy.messages())[-1]["card"]
    assert smtp.messages == []  # Send asks first, like any email
    assert approval["title"] == "Send this email?" and approval["preview"] == card["preview"]
    # a second Send on the same draft starts nothing new
    await click(deputy, button(card, "Send"), client_id="c2")
    # the answer goes onto the draft's own card, which now says what became of it
    resolved = next(m for m in await deputy.messages() if m["card"] and m["card"]["card_id"] == card["card_id"])
    assert "already sent for approval" in resolved["text"] and resolved["card"]["buttons"] == []
    assert sum(1 for m in await deputy.messages() if m["card"] and m["card"]["title"] == "Send this email?") == 1

    await click(deputy, button(approval, "Approve"), client_id="c3")
    assert len(smtp.messages) == 1
    sent = smtp.messages[0]
    assert sent["To"] == "ana@acme.io" and sent["Subject"] == "The invoice for May"
    assert "I'm writing about the invoice for May." in sent.get_content()
    assert "Sent “The invoice for May” to ana@acme.io" in (await deputy.messages())[-1]["text"]


async def test_discard_sends_nothing_and_a_later_send_is_refused(deputy, smtp):
    _, card = await draft(deputy, "/draft bob@studio.example re the Friday workshop")
    await click(deputy, button(card, "Discard"))
    last = (await deputy.messages())[-1]
    assert "Discarded" in last["text"]
    resolved = next(m for m in await deputy.messages() if m["card"] and m["card"]["card_id"] == card["card_id"])
    assert resolved["card"]["resolution"] == "Discarded by operator" and resolved["card"]["buttons"] == []
    await click(deputy, button(card, "Send"), client_id="late")
    assert any("That draft was discarded" in m["text"] for m in await deputy.messages())
    assert smtp.messages == []


async def test_a_changed_or_unknown_draft_is_not_sent(deputy, smtp, settings):
    _, card = await draft(deputy, "/draft ana@acme.io about the invoice")
    send = button(card, "Send")
    draft_id = send["value"].split(".")[0]
    store = DraftStore(deputy.redis, settings.workspace)
    stored, _ = store.get(draft_id)
    key = store._key(draft_id)
    deputy.redis.hset(key, "draft", stored.model_copy(update={"to": ("x@evil.example",)}).model_dump_json())
    await click(deputy, send)
    assert "changed after I showed it to you" in (await deputy.messages())[-1]["text"]

    await click(deputy, {"action": "draft.send", "value": "0000000000.abcdefabcdef"}, client_id="forged")
    assert "I no longer have that draft" in (await deputy.messages())[-1]["text"]
    await deputy.work()
    assert smtp.messages == []


async def test_a_draft_without_an_address_offers_only_discard(deputy, smtp):
    _, card = await draft(deputy, "/draft a thank-you note to Lisa")
    assert [b["label"] for b in card["buttons"]] == ["Discard"]
    assert "Add an address" in (await deputy.messages())[-1]["text"]


async def test_free_text_draft_intent_makes_a_draft(deputy, smtp):
    await deputy.say("draft an email to sarah@example.com with the new prices")
    await deputy.work()
    card = (await deputy.messages())[-1]["card"]
    assert card["title"] == "Draft email" and card["preview"].startswith("To: sarah@example.com\n")
    assert smtp.messages == []


class TestWithModel:
    @pytest.fixture
    def settings(self, settings, openai_server, monkeypatch):  # type: ignore[no-untyped-def]
        from kernel.settings import load_settings

        monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
        return load_settings()

    async def test_the_model_writes_the_draft_from_the_request_and_memory(self, deputy, smtp, openai_server):
        await deputy.say("/remember Ana's invoice #42 is due on 30 June")
        await deputy.work()
        openai_server.answer({"tool_calls": [{"name": "write_email", "arguments": {
            "subject": "Invoice #42 reminder", "body": "Hi Ana,\n\na friendly reminder that invoice #42 is due on 30 June.\n\nThanks"}}]})
        _, card = await draft(deputy, "/draft ana@acme.io about invoice 42 being due")
        request = next(r["body"] for r in openai_server.requests if r["body"].get("tools")
                       and r["body"]["tools"][0]["function"]["name"] == "write_email")
        prompt = json.dumps(request["messages"])
        assert "invoice 42 being due" in prompt and "ana@acme.io" in prompt
        assert "is due on 30 June" in prompt  # what was remembered reaches the model
        assert card["preview"] == "To: ana@acme.io\nSubject: Invoice #42 reminder\n\nHi Ana,\n\na friendly reminder that invoice #42 is due on 30 June.\n\nThanks"
        assert {f["label"]: f["value"] for f in card["fields"]}["Written by"] == "the language model"

        await click(deputy, button(card, "Send"))
        approval = (await deputy.messages())[-1]["card"]
        await click(deputy, button(approval, "Approve"), client_id="c2")
        assert [m["Subject"] for m in smtp.messages] == ["Invoice #42 reminder"]

    async def test_an_unreachable_model_falls_back_to_the_template(self, deputy, smtp, openai_server):
        openai_server.answer({"status": 500})
        _, card = await draft(deputy, "/draft ana@acme.io about the invoice")
        assert {f["label"]: f["value"] for f in card["fields"]}["Written by"] == "a template (no model)"
        assert "from a template" in (await deputy.messages())[-1]["text"]
        assert smtp.messages == []

    async def test_a_draft_cut_at_max_tokens_says_so(self, deputy, smtp, openai_server):
        openai_server.answer({"tool_calls": [{"name": "write_email", "arguments": '{"subject": "Invoice", "body": "Hi Ana, the'}],
                              "finish_reason": "length", "usage": {"prompt_tokens": 80, "completion_tokens": 600}})
        _, card = await draft(deputy, "/draft ana@acme.io about the invoice")
        text = (await deputy.messages())[-1]["text"]
        assert "from a template: the model's draft was cut off at 600 tokens" in text, text
        assert {f["label"]: f["value"] for f in card["fields"]}["Written by"] == "a template (no model)"

    async def test_a_model_slower_than_the_timeout_is_retried_then_the_template_is_used(self, deputy, smtp, openai_server,
                                                                                        settings, monkeypatch):
        monkeypatch.setenv("OPENAI_TIMEOUT_S", "0.3")
        openai_server.answer({"delay_s": 1.0, "content": "too late"})
        ack, card = await draft(deputy, "/draft ana@acme.io about the invoice")
        text = (await deputy.messages())[-1]["text"]
        assert "from a template: the model gave no answer within 0.3 s, tried 2 times" in text, text
        assert kinds(deputy, settings, ack["trace_id"]).count("llm.timeout") == 2
        assert "llm.retry" in kinds(deputy, settings, ack["trace_id"])

    async def test_the_console_sees_the_draft_being_written_and_then_the_reply_once(self, deputy, smtp, openai_server, settings):
        body = "Hi Ana,\n\nthank you for paying invoice #42 so quickly. It was a pleasure working with you.\n\nBest regards"
        openai_server.answer({"tool_calls": [{"name": "write_email", "arguments": {"subject": "Invoice #42", "body": body}}],
                              "chunk_delay_s": 0.03})
        listening = deputy.redis.pubsub()
        listening.subscribe(console_live_channel(settings.workspace))
        ack, card = await draft(deputy, "/draft ana@acme.io thanks for paying invoice 42")

        updates = []
        while (item := listening.get_message(timeout=0.1)) is not None:
            if item["type"] == "message":
                updates.append(json.loads(item["data"]))
        listening.close()
        # the channel is shared by every test on this Redis: only this request's updates count
        updates = [u for u in updates if u.get("trace_id", u.get("message", {}).get("trace_id")) == ack["trace_id"]]
        partials = [u["text"] for u in updates if u["type"] == "partial"]
        assert len(partials) >= 2 and partials[0].startswith("Subject: Inv") and body[:20] in partials[-1]
        assert all(len(later) >= len(earlier) for earlier, later in zip(partials, partials[1:]))
        replies = [u for u in updates if u["type"] == "message" and u["message"]["role"] == "deputy"]
        assert len(replies) == 1 and replies[0]["message"]["card"]["card_id"] == card["card_id"]
        assert updates.index(replies[0]) > max(i for i, u in enumerate(updates) if u["type"] == "partial")
        assert card["preview"].endswith(body)

        request = next(r["body"] for r in openai_server.requests if r["body"].get("tool_choice"))
        assert request["stream"] is True and request["max_tokens"] == 600
        assert request["tool_choice"] == {"type": "function", "function": {"name": "write_email"}}
