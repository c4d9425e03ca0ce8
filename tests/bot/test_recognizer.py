"""Intent recognition end to end: console → gateway → worker → reply, with the real classifier."""
from __future__ import annotations

import pytest
from rq import Queue
from rq.registry import ScheduledJobRegistry

import agents.intents.recognizers
from agents.intents.features import MemoEmbedder
from memory.embeddings import MiniLmEmbedder
from memory.events import EventLog
from memory.tasks import TaskStore


@pytest.fixture(scope="module")
def shared_embedder() -> MemoEmbedder:
    # one model load and one embedding of the example phrases for the whole module
    return MemoEmbedder(MiniLmEmbedder())


@pytest.fixture(autouse=True)
def fast_embedder(monkeypatch: pytest.MonkeyPatch, shared_embedder: MemoEmbedder) -> None:
    monkeypatch.setattr(agents.intents.recognizers, "local_embedder", lambda settings: shared_embedder)


def events(deputy, trace_id: str) -> list:
    return EventLog(deputy.redis, "default").timeline(trace_id)


def effect_keys(deputy) -> list[str]:
    """Keys a side effect would leave: tasks, notes, reminders, agent runs, memories, approvals."""
    words = ("task", "note", "remind", "run", "memor", "approval", "fact")
    return [k.decode() for k in deputy.redis.keys("dp:default:*") if any(w in k.decode() for w in words)]


def nothing_left_queued(deputy) -> bool:
    queues = [Queue(name, connection=deputy.redis) for name in ("interactive", "default", "background")]
    return all(q.count == 0 for q in queues) and all(len(ScheduledJobRegistry(queue=q)) == 0 for q in queues)


async def click(deputy, button: dict, client_id: str) -> None:
    resp = await deputy.client.post("/api/decisions", json={"thread_id": "t1", "action": button["action"], "value": button["value"],
                                                           "client_id": client_id})
    assert resp.status == 202
    await deputy.work()


@pytest.mark.parametrize(
    ("text", "usage"),
    [("/draft", "Usage: /draft"), ("/budget set lots", "Usage: /budget"), ("/trace not-an-id!", "Usage: /trace"),
     ("/task done soon", "Usage: /task"), ("/remember", "Usage: /remember TEXT"), ("/frobnicate now", "I don't know /frobnicate")],
)
async def test_commands_with_bad_arguments_get_usage_help(deputy, text: str, usage: str):
    ack = await deputy.say(text)
    await deputy.work()
    assert usage in (await deputy.messages())[-1]["text"]
    recognized = [e for e in events(deputy, ack["trace_id"]) if e.kind == "intent.recognized"]
    assert [e.data["intent"] for e in recognized] == ["usage_error"]  # exact commands never reach the classifier
    assert effect_keys(deputy) == []


async def test_a_draft_command_answers_with_a_draft_card_and_sends_nothing(deputy):
    await deputy.say("/draft a thank-you note to Lisa")
    await deputy.work()
    last = (await deputy.messages())[-1]
    assert last["card"]["title"] == "Draft email" and effect_keys(deputy) == []


async def test_free_text_is_classified_in_the_worker_with_slots(deputy, settings):
    ack = await deputy.say("can you remind me to call Ana tomorrow at 9am")
    await deputy.work()
    recognized = [e for e in events(deputy, ack["trace_id"]) if e.kind == "intent.recognized"]
    # the gateway passes free text on; the worker classifies it
    assert [(e.actor, e.data["intent"]) for e in recognized] == [("gateway", "unrecognised"), ("worker", "remind")]
    worker = recognized[1].data
    assert worker["source"] == "classifier" and worker["confidence"] >= settings.intent.threshold
    assert worker["slots"]["text"] == "call Ana" and worker["slots"]["when"].endswith("T09:00+00:00")
    assert "remind you to call Ana" in (await deputy.messages())[-1]["text"]


async def test_out_of_scope_text_gets_a_question_and_nothing_is_done(deputy):
    ack = await deputy.say("how do magnets work")
    await deputy.work()
    reply = (await deputy.messages())[-1]
    assert "not sure what you mean" in reply["text"]
    buttons = reply["card"]["buttons"]
    assert [b["action"] for b in buttons] == ["intent.choose"] * 3 and buttons[-1]["label"] == "Neither"
    kinds = [e.kind for e in events(deputy, ack["trace_id"])]
    assert "intent.clarify" in kinds and kinds.count("job.started") == 1
    assert effect_keys(deputy) == [] and nothing_left_queued(deputy)


async def test_clicking_a_suggestion_carries_it_out_on_the_original_text_once(deputy):
    # terse enough to ask about; its two likeliest readings are a new task or a done one
    await deputy.say("website fix")
    await deputy.work()
    card = (await deputy.messages())[-1]["card"]
    offered = {b["value"].split(":")[1]: b for b in card["buttons"]}
    assert "add_task" in offered, card

    await click(deputy, offered["add_task"], "click-1")
    tasks = TaskStore(deputy.redis, "default").list()
    assert [t.title for t in tasks] == ["website fix"]
    updated = (await deputy.messages())[-1]
    assert updated["card"]["resolution"].startswith("Chose:") and updated["card"]["buttons"] == []

    # a second click, or the other button, does not run anything again
    other = next(b for name, b in offered.items() if name != "add_task")
    await click(deputy, other, "click-2")
    assert "Already decided" in (await deputy.messages())[-1]["text"]
    assert len(TaskStore(deputy.redis, "default").list()) == 1


async def test_forged_or_stale_choices_do_nothing(deputy):
    ack = await deputy.say("the bank. call them")
    await deputy.work()
    offered = {b["value"].split(":")[1] for b in (await deputy.messages())[-1]["card"]["buttons"]}
    not_offered = next(n for n in ("trace", "set_budget", "follow_up", "help") if n not in offered)
    for value in (f"{ack['trace_id']}:{not_offered}", "0123456789abcdef:add_task", "garbage"):
        await click(deputy, {"action": "intent.choose", "value": value}, f"forged-{value}")
        assert "not valid" in (await deputy.messages())[-1]["text"]
    assert effect_keys(deputy) == []


async def test_an_intent_added_to_the_operators_file_is_recognised(deputy, settings):
    path = settings.data_dir / "intents.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "intents:\n"
        "  - name: invoice_status\n"
        "    description: Check whether an invoice was paid\n"
        "    playbook: invoice_status\n"
        "    examples: [has acme paid invoice 42, is the march invoice paid yet, did the client pay the last invoice,\n"
        "               which invoices are still unpaid, check if invoice 17 was settled]\n"
    )
    ack = await deputy.say("has bob paid invoice 7 yet")
    await deputy.work()
    worker = [e for e in events(deputy, ack["trace_id"]) if e.kind == "intent.recognized"][-1].data
    assert worker["matched"] == "invoice_status" and worker["intent"] == "playbook"
    # the agent is asked to plan that playbook by name
    assert "invoice_status" in (await deputy.messages())[-1]["text"]


async def test_model_resolves_unclear_text_and_model_down_falls_back(deputy, settings, openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    openai_server.answer({"tool_calls": [{"name": "add_task", "arguments": {"title": "call the bank"}}]})
    ack = await deputy.say("the bank. call them")
    await deputy.work()
    worker = [e for e in events(deputy, ack["trace_id"]) if e.kind == "intent.recognized"][-1].data
    assert worker["source"] == "llm" and worker["slots"]["title"] == "call the bank"
    assert [t.title for t in TaskStore(deputy.redis, "default").list()] == ["call the bank"]
    assert any(r["body"].get("tools") for r in openai_server.requests)

    openai_server.answer({"status": 500})
    ack = await deputy.say("remind me to call Ana tomorrow at 9am")
    await deputy.work()
    timeline = events(deputy, ack["trace_id"])
    down = [e for e in timeline if e.kind == "intent.llm_unavailable"]
    assert down and down[0].data["fallback"] == "remind"
    assert [e.data["source"] for e in timeline if e.kind == "intent.recognized"][-1] == "classifier"
    assert "remind you to call Ana" in (await deputy.messages())[-1]["text"]
