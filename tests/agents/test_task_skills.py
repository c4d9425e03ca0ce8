"""Managing the to-do list: edit, delete and snooze by command, by the words of a request, and by the card's buttons."""
from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Iterator

import pytest

from agents.conversation import answered
from agents.intents.commands import parse_command
from agents.skill_context import SkillContext
from agents.skills import DECISIONS, SKILLS
from jobs.runtime import open_runtime
from jobs.skill_contexts import skill_context
from kernel.messages import Intent, Outcome
from kernel.settings import load_settings


@pytest.fixture
def ctx(settings, redis) -> Iterator[SkillContext]:  # type: ignore[no-untyped-def]
    with open_runtime(load_settings(), redis) as rt:
        yield skill_context(rt, "trace-1", "operator", "t1", "console")


def run(ctx: SkillContext, text: str) -> Outcome:
    intent = parse_command(text)
    assert intent is not None
    # each message is a request of its own (its own trace id, which keys an added task)
    return SKILLS[intent.name](replace(ctx, trace_id=uuid.uuid4().hex), intent)


def said(ctx: SkillContext, text: str, action: str, query: str) -> Outcome:
    """Free text as the recogniser hands it over: the action and the words that name the task."""
    return SKILLS["task"](ctx, Intent(name="task", text=text, slots={"action": action, "query": query}))


def open_titles(ctx: SkillContext) -> list[str]:
    return [line.split(" ", 1)[1] for line in run(ctx, "/task list").text.splitlines()[1:] if line.startswith("#")]


def test_edit_and_delete_by_number(ctx):
    run(ctx, "/task add send invoice")
    run(ctx, "/task add call the bank")
    edited = run(ctx, "/task edit 1 send the invoice to Acme #billing")
    assert edited.text == "Changed task #1: send the invoice to Acme"
    assert edited.card is not None and [f.value for f in edited.card.fields] == ["send the invoice to Acme", "billing"]
    assert run(ctx, "/task edit 1 #admin").card.fields[1].value == "admin"  # the project alone

    deleted = run(ctx, "/task delete 2")
    assert deleted.text == "Deleted task #2: call the bank"
    assert deleted.card is not None and deleted.card.resolution == "Deleted" and deleted.card.buttons == ()
    assert open_titles(ctx) == ["send the invoice to Acme (admin)"]
    again = run(ctx, "/task delete 2")
    assert again.ok is False and "There is no task #2" in again.text


def test_a_snoozed_task_leaves_the_list_until_it_is_due(ctx):
    run(ctx, "/task add renew the domain")
    run(ctx, "/task add file the VAT return")
    snoozed = run(ctx, "/task snooze 1 tomorrow 9am")
    assert snoozed.text.startswith("Snoozed task #1 until ") and "09:00" in snoozed.text
    listing = run(ctx, "/task list").text
    assert "renew the domain" not in listing and "(+1 snoozed: /task list snoozed)" in listing
    hidden = run(ctx, "/task list snoozed").text
    assert hidden.startswith("Snoozed tasks:\n#1 renew the domain — snoozed until ") and "09:00" in hidden
    # once the time has come it is back on the list by itself
    ctx.tasks.snooze(1, time.time() - 1)
    assert open_titles(ctx) == ["renew the domain", "file the VAT return"]
    assert run(ctx, "/task snooze 2 yesterday").ok is False


def test_bad_task_commands_say_how_to_type_them():
    for text, problem in (("/task edit two x", "Which task?"), ("/task snooze 3", "Until when?"),
                          ("/task edit 3", "What should it say?"), ("/task delete 3 now", "only the task's number")):
        with pytest.raises(ValueError, match=problem):
            parse_command(text)


def test_free_text_finds_the_task_by_its_words(ctx):
    run(ctx, "/task add send the invoice to Acme")
    run(ctx, "/task add renew the domain")
    done = said(ctx, "mark the invoice task done", "done", "the invoice task")
    assert done.text == "Done: #1 send the invoice to Acme"
    assert said(ctx, "tick off renew the domain", "done", "tick off renew the domain").text == "Done: #2 renew the domain"
    run(ctx, "/task add book flights to Berlin")
    snoozed = said(ctx, "snooze the flights until friday", "snooze", "the flights until friday")
    assert snoozed.text.startswith("Snoozed task #3 until Fri")
    renamed = said(ctx, "rename the flights task to book flights to Lisbon", "edit", "the flights task to book flights to Lisbon")
    assert renamed.text == "Changed task #3: book flights to Lisbon"
    assert said(ctx, "delete task 3", "delete", "task 3").text == "Deleted task #3: book flights to Lisbon"


def test_when_several_tasks_match_deputy_asks_which_one(ctx):
    run(ctx, "/task add send the invoice to Acme")
    run(ctx, "/task add chase the invoice from Bolt")
    asked = said(ctx, "mark the invoice done", "done", "the invoice")
    assert asked.text.startswith("Which task should I mark done? #1 send the invoice to Acme; #2 chase the invoice from Bolt")
    assert asked.card is not None and [b.label for b in asked.card.buttons] == ["#1 send the invoice to Acme",
                                                                               "#2 chase the invoice from Bolt"]
    # the answer in the thread finishes the job
    chosen = answered(ctx, "the one from Bolt", SKILLS)
    assert chosen is not None and chosen.text == "Done: #2 chase the invoice from Bolt"
    nothing = said(ctx, "mark the dentist done", "done", "the dentist")
    assert nothing.ok is False and "could not find an open task matching 'the dentist'" in nothing.text


def test_task_cards_carry_done_snooze_and_delete(ctx):
    added = run(ctx, "/task add order business cards")
    assert added.card is not None
    assert [(b.label, b.action) for b in added.card.buttons] == [
        ("Mark done", "task.done"), ("Snooze to tomorrow", "task.snooze"), ("Delete", "task.delete")]
    snoozed = DECISIONS["task.snooze"](ctx, "1")
    assert snoozed.text.startswith("Snoozed task #1 until ") and snoozed.card is not None
    assert snoozed.card.card_id == "task-1" and "Snoozed until" in [f.label for f in snoozed.card.fields]
    assert "order business cards" not in run(ctx, "/task list").text
    deleted = DECISIONS["task.delete"](ctx, "1")
    assert deleted.card is not None and deleted.card.resolution == "Deleted"
    assert DECISIONS["task.delete"](ctx, "1").ok is False
