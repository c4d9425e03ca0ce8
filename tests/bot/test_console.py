"""A message in the web console, through gateway, queue and worker, back into the same thread."""
from __future__ import annotations

from rq import Queue

from agents import skills
from agents.intents.clarification import HELP_POINTER
from memory.events import EventLog
from memory.tasks import TaskStore


async def test_message_is_answered_in_the_same_thread_with_a_full_trace(deputy, settings):
    ack = await deputy.say("/remember Ana prefers calls after 10am", thread_id="abc")
    assert ack["status"] == "accepted"
    await deputy.work()

    messages = await deputy.messages("abc")
    assert [m["role"] for m in messages] == ["user", "deputy"]
    assert messages[1]["text"].startswith("Noted.")
    assert messages[1]["trace_id"] == ack["trace_id"]

    kinds = [e.kind for e in EventLog(deputy.redis, settings.workspace).timeline(ack["trace_id"])]
    # the note can be taken back with "undo that": the trace says it was offered
    assert kinds == ["inbound.received", "intent.recognized", "job.enqueued", "job.started", "undo.recorded", "reply.queued",
                     "job.finished", "reply.delivered"]

    await deputy.say("/ask when does Ana prefer calls?", thread_id="abc")
    await deputy.work()
    assert "after 10am" in (await deputy.messages("abc"))[-1]["text"]


async def test_same_event_three_times_is_one_job_and_one_reply(deputy):
    acks = [await deputy.say("/task add call the bank", client_id="same-id") for _ in range(3)]
    assert [a["status"] for a in acks] == ["accepted", "duplicate", "duplicate"]
    assert len({a["trace_id"] for a in acks}) == 1
    assert Queue("interactive", connection=deputy.redis).count == 1
    await deputy.work()
    messages = await deputy.messages()
    assert [m["role"] for m in messages] == ["user", "deputy"]
    assert len(TaskStore(deputy.redis, "default").list()) == 1


async def test_card_button_marks_task_done_and_updates_the_card_in_place(deputy):
    await deputy.say("/task add send the invoice #billing")
    await deputy.work()
    card_msg = (await deputy.messages())[-1]
    button = card_msg["card"]["buttons"][0]
    assert button["action"] == "task.done"

    resp = await deputy.client.post("/api/decisions", json={"thread_id": "t1", "action": button["action"], "value": button["value"], "client_id": "click-1"})
    assert resp.status == 202
    await deputy.work()

    messages = await deputy.messages()
    assert len(messages) == 2  # the card was replaced, not posted again
    assert messages[-1]["card"]["resolution"] == "Done ✓"
    assert messages[-1]["card"]["buttons"] == []
    assert TaskStore(deputy.redis, "default").list() == []


async def test_failing_job_is_retried_then_the_operator_is_told(deputy, settings, monkeypatch):
    calls = []

    def broken(ctx, intent):
        calls.append(intent)
        raise ConnectionError("notes backend unreachable")

    monkeypatch.setitem(skills.SKILLS, "remember", broken)
    ack = await deputy.say("/remember this will fail")
    await deputy.work()

    assert len(calls) == settings.job.retries + 1
    last = (await deputy.messages())[-1]
    assert last["role"] == "deputy" and last["ok"] is False
    assert "could not finish" in last["text"] and "notes backend unreachable" in last["text"]
    assert ack["trace_id"] in last["text"]
    kinds = [e.kind for e in EventLog(deputy.redis, settings.workspace).timeline(ack["trace_id"])]
    assert kinds.count("job.started") == settings.job.retries + 1
    assert kinds.count("job.retry") == settings.job.retries
    assert kinds[0] == "inbound.received" and "job.failed" in kinds and kinds[-1] == "reply.delivered"


async def test_unknown_text_gets_a_helpful_answer(deputy):
    await deputy.say("what's the weather on mars")
    await deputy.work()
    text = (await deputy.messages())[-1]["text"]
    # a short question that points at /help, rather than the whole of /help pasted into the thread
    assert text.startswith("I'm not sure what you mean.") and text.endswith(HELP_POINTER)
    assert "/remember" not in text and "/task" not in text


async def test_bad_command_arguments_get_usage(deputy):
    await deputy.say("/task done soon")
    await deputy.work()
    text = (await deputy.messages())[-1]["text"]
    assert "Usage: /task" in text


async def test_malformed_bodies_get_a_4xx_with_a_reason(deputy):
    cases = [
        ("not json", {"data": b"{nope", "headers": {"Content-Type": "application/json"}}),
        ("array", {"json": [1, 2]}),
        ("missing text", {"json": {"thread_id": "t", "client_id": "x"}}),
        ("text not a string", {"json": {"thread_id": "t", "client_id": "x", "text": {"a": 1}}}),
        ("empty text", {"json": {"thread_id": "t", "client_id": "x", "text": "   "}}),
        ("missing client id", {"json": {"thread_id": "t", "text": "hi"}}),
        ("huge text", {"json": {"thread_id": "t", "client_id": "x", "text": "a" * 9000}}),
        ("invalid utf-8", {"data": b'{"text": "\xff"}', "headers": {"Content-Type": "application/json"}}),
    ]
    for name, kwargs in cases:
        resp = await deputy.client.post("/api/messages", **kwargs)
        assert 400 <= resp.status < 500, name
        assert "error" in (await resp.json()), name
    resp = await deputy.client.post("/api/decisions", json={"action": 5})
    assert resp.status == 400
    assert Queue("interactive", connection=deputy.redis).count == 0


async def test_threads_are_listed(deputy):
    resp = await deputy.client.post("/api/threads", json={"title": "Invoices"})
    thread = await resp.json()
    await deputy.say("/help", thread_id=thread["id"])
    listed = (await (await deputy.client.get("/api/threads")).json())["threads"]
    assert listed[0]["id"] == thread["id"] and listed[0]["title"] == "Invoices"


async def test_replies_in_one_thread_are_delivered_in_the_order_they_were_queued(deputy, monkeypatch):
    import asyncio
    import random

    from kernel.messages import Reply
    from kernel.outbox import Outbox

    delivered: list[str] = []
    from bot.server import DISPATCHER

    sender = deputy.client.server.app[DISPATCHER].senders["console"]
    original = sender.send

    async def jittery(reply):  # type: ignore[no-untyped-def]
        await asyncio.sleep(random.random() / 100)  # platforms answer in their own time
        delivered.append(reply.text)
        await original(reply)

    monkeypatch.setattr(sender, "send", jittery)
    outbox = Outbox(deputy.redis)
    for i in range(20):
        outbox.put(Reply(channel="console", thread_id="ordered", text=f"part {i}"))
        outbox.put(Reply(channel="console", thread_id=f"other-{i}", text=f"other {i}"))
    await deputy.deliver()
    assert [t for t in delivered if t.startswith("part")] == [f"part {i}" for i in range(20)]
    assert [m["text"] for m in await deputy.messages("ordered")] == [f"part {i}" for i in range(20)]


async def test_a_reply_with_a_picture_shows_it_in_the_console(deputy):
    import base64

    from agents.spend_chart import png
    from kernel.messages import Reply
    from kernel.outbox import Outbox

    from datetime import date

    encoded = base64.b64encode(png([(date(2026, 11, 1), 100), (date(2026, 11, 2), 300)])).decode()
    Outbox(deputy.redis).put(Reply(channel="console", thread_id="pics", text="spend", image_png=encoded))
    await deputy.deliver()
    [message] = await deputy.messages("pics")
    assert base64.b64decode(message["image_png"]).startswith(b"\x89PNG")
