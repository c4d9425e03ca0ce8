"""/forget shows what would go and removes it only on Forget; /project NAME retention sets a project's retention."""
from __future__ import annotations

from typing import Iterator

import pytest

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


def run(ctx: SkillContext, intent: str, text: str, **slots: str) -> Outcome:
    return SKILLS[intent](ctx, Intent(name=intent, text=text, slots=slots))


def test_forget_previews_then_removes_on_forget(ctx: SkillContext) -> None:
    ctx.notes.add("the gate code is 2291", author="operator")
    preview = run(ctx, "forget", "forget the gate code", query="the gate code")
    assert preview.card is not None and [b.label for b in preview.card.buttons] == ["Forget", "Keep"]
    assert {f.label: f.value for f in preview.card.fields}["notes"] == "1" and "2291" in preview.card.preview
    assert ctx.notes.search("gate code")  # nothing goes before the click
    done = DECISIONS["forget.confirm"](ctx, preview.card.buttons[0].value)
    assert done.card is not None and "Forgotten by operator" in done.card.resolution and "2291" not in done.text
    assert ctx.notes.search("gate code") == []
    again = DECISIONS["forget.confirm"](ctx, preview.card.buttons[0].value)
    assert not again.ok and "expired" in again.text


def test_keep_removes_nothing(ctx: SkillContext) -> None:
    ctx.notes.add("the gate code is 2291", author="operator")
    preview = run(ctx, "forget", "/forget gate code", query="gate code")
    kept = DECISIONS["forget.keep"](ctx, preview.card.buttons[1].value)  # type: ignore[union-attr]
    assert "nothing was removed" in kept.text and ctx.notes.search("gate code")


def test_a_project_retention_is_set_and_turned_off_in_chat(ctx: SkillContext) -> None:
    assert "older than 90 days" in run(ctx, "project", "sales retention 90d").text
    assert ctx.workspaces is not None and ctx.workspaces.project(ctx.workspace, "sales").retention_days == 90  # type: ignore[union-attr]
    assert "kept until you forget" in run(ctx, "project", "sales retention off").text
    assert ctx.workspaces.project(ctx.workspace, "sales").retention_days is None  # type: ignore[union-attr]
    assert not run(ctx, "project", "sales keep forever").ok


def test_said_in_words_the_lead_in_is_not_part_of_what_is_forgotten(ctx: SkillContext) -> None:
    ctx.notes.add("Bob's favourite wine is Rioja Gran Reserva 2015", author="operator")
    ctx.notes.add("Bob's favourite beer is a pale ale", author="operator")
    preview = SKILLS["forget"](ctx, Intent(name="forget", text="forget what I told you about Bob's wine",
                                           slots={"query": "what I told you about Bob's wine"}, source="classifier"))
    assert preview.card is not None and {f.label: f.value for f in preview.card.fields}["notes"] == "1"
    assert "Rioja" in preview.card.preview and "pale ale" not in preview.card.preview
