"""What a skill changes directly can be undone: the undo log holds the restore, and running it puts things back once."""
from __future__ import annotations

from dataclasses import replace

from redis import Redis

from agents import contact_skills, deal_skills, task_skills
from agents.skill_context import SkillContext
from agents.skills import SKILLS
from integrations.breaker import CircuitBreaker
from integrations.capability import EffectContext
from integrations.invoke import Invocation, call
from integrations.ledger import EffectLedger
from integrations.registry import build_capabilities
from kernel.messages import Intent
from kernel.settings import Settings
from memory.events import EventLog
from memory.facts import FactStore
from memory.notes import NoteStore
from memory.tasks import TaskStore
from memory.undo_log import Undoable, UndoLog

WS = "acme"


def _ctx(redis: Redis, trace: str = "t1") -> SkillContext:
    return SkillContext(workspace=WS, trace_id=trace, actor="operator", thread_id="th", tasks=TaskStore(redis, WS),
                        facts=FactStore(redis, WS), notes=NoteStore(redis, WS), events=EventLog(redis, WS), help_text="",
                        undo=UndoLog(redis, WS))


def _run(ctx: SkillContext, item: Undoable, run_id: str) -> list[Invocation]:
    """What the undo engine does with an undoable: its steps, as a run of their own."""
    caps = build_capabilities(Settings(workspace=WS), ctx.tasks.redis)
    ledger, breaker = EffectLedger(ctx.tasks.redis, WS), CircuitBreaker(ctx.tasks.redis, "undo", WS)
    return [call(caps[s.capability], s.args, EffectContext(f"{run_id}:{i}", WS, "t-undo", run_id), ledger, breaker)
            for i, s in enumerate(item.steps)]


def _undo_last(ctx: SkillContext) -> list[Invocation]:
    assert ctx.undo is not None
    item = ctx.undo.last(ctx.thread_id, ctx.undo_window_s)
    assert item is not None and ctx.undo.claim(item.id)
    return _run(ctx, item, f"undo-{item.id}")


def _task(ctx: SkillContext, trace: str, **slots: object) -> str:
    return task_skills.task(replace(ctx, trace_id=trace), Intent(name="task", text="", slots=slots)).text


def test_task_changes_are_undone_newest_first(redis):
    ctx = _ctx(redis)
    assert _task(ctx, "a1", action="add", title="Call Ana") == "Added task #1: Call Ana"
    _task(ctx, "a2", action="edit", task_id=1, title="Call Ana about the invoice")
    _task(ctx, "a3", action="done", task_id=1)
    _task(ctx, "a4", action="delete", task_id=1)

    _undo_last(ctx)  # the delete
    assert ctx.tasks.get(1).status == "done"
    _undo_last(ctx)  # the done
    assert [t.title for t in ctx.tasks.list("open")] == ["Call Ana about the invoice"]
    _undo_last(ctx)  # the edit
    assert ctx.tasks.get(1).title == "Call Ana"
    _undo_last(ctx)  # the add
    assert ctx.tasks.get(1) is None and ctx.tasks.list("open") == []
    assert ctx.undo.last(ctx.thread_id, ctx.undo_window_s) is None


def test_a_saved_number_is_undone_once_and_the_history_says_so(redis):
    ctx = _ctx(redis)
    contact_skills.save_contact(replace(ctx, trace_id="c1"), Intent(name="save_contact", text="Ana Lopez's phone is +34 600 000 001"))
    said = contact_skills.save_contact(replace(ctx, trace_id="c2"), Intent(name="save_contact", text="Ana's number is +34 611 111 111"))
    assert "was +34 600 000 001" in said.text

    item = ctx.undo.last(ctx.thread_id, ctx.undo_window_s)
    [first] = _undo_last(ctx)
    assert first.output.attributes == {"phone": "restored"}
    facts = ctx.facts.history("person:ana-lopez/phone")
    assert facts[-1].value == "+34 600 000 001" and facts[-1].restored_from == 1 and facts[-2].undone
    # the same undo carried out again: by its own run, nothing is done twice; by another, there is nothing left to do
    assert all(i.replayed for i in _run(ctx, item, f"undo-{item.id}"))
    assert _run(ctx, item, "undo-again")[0].output.attributes == {"phone": "already"}
    assert len(ctx.facts.history("person:ana-lopez/phone")) == 3


def test_a_deal_move_and_a_note_are_undone(redis):
    ctx = _ctx(redis)
    deal_skills.update_deal(replace(ctx, trace_id="d1"), Intent(name="update_deal", text="the Acme deal is in proposal"))
    deal_skills.update_deal(replace(ctx, trace_id="d2"), Intent(name="update_deal", text="move the Acme deal to won"))
    _undo_last(ctx)
    assert contact_skills.crm_of(ctx).deals.find("Acme").get("stage") == "proposal"

    assert SKILLS["remember"](replace(ctx, trace_id="n1"), Intent(name="remember", slots={"text": "Ana prefers calls"})).text.startswith("Noted")
    _undo_last(ctx)
    assert ctx.notes.search("Ana prefers calls") == []


def test_nothing_is_offered_for_a_change_that_changed_nothing_or_where_no_undo_log_is_wired(redis):
    ctx = _ctx(redis)
    contact_skills.save_contact(replace(ctx, trace_id="c1"), Intent(name="save_contact", text="Ana Lopez's phone is +34 600 000 001"))
    contact_skills.save_contact(replace(ctx, trace_id="c2"), Intent(name="save_contact", text="Ana's phone is +34 600 000 001"))
    _task(replace(ctx, undo=None), "x1", action="add", title="Unwired")
    assert ctx.undo is not None and ctx.undo.last("th", 900).trace_id == "c1"


def test_undo_that_twice_takes_back_the_newest_change_then_the_one_before(redis):
    ctx = _ctx(redis)
    contact_skills.save_contact(replace(ctx, trace_id="c1"), Intent(name="save_contact", text="Bo Stone's email is bo@stone.example"))
    contact_skills.save_contact(replace(ctx, trace_id="c2"), Intent(name="save_contact", text="Bo's email is bo@new.example"))
    _undo_last(ctx)
    assert contact_skills.crm_of(ctx).contacts.by_email("bo@stone.example").name == "Bo Stone"
    _undo_last(ctx)  # the save that made Bo: he is gone, and neither address finds him
    crm = contact_skills.crm_of(ctx)
    assert crm.contacts.find("Bo") == [] and crm.contacts.by_email("bo@stone.example") is None
    assert crm.contacts.by_email("bo@new.example") is None
