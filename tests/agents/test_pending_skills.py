"""Undo, understood before it exists: it says plainly what it did instead (contacts are real now: test_contact_skills)."""
from __future__ import annotations

from typing import Iterator

import pytest

from agents.skill_context import SkillContext
from agents.skills import SKILLS
from jobs.runtime import open_runtime
from jobs.skill_contexts import skill_context
from kernel.messages import Intent
from kernel.settings import load_settings


@pytest.fixture
def ctx(settings, redis) -> Iterator[SkillContext]:  # type: ignore[no-untyped-def]
    with open_runtime(load_settings(), redis) as rt:
        yield skill_context(rt, "trace-1", "operator", "t1", "console")


def say(ctx: SkillContext, intent: str, text: str, **slots: str) -> str:
    return SKILLS[intent](ctx, Intent(name=intent, text=text, slots={"intent": intent, **slots})).text


def test_undo_says_it_cannot_and_what_to_do_instead(ctx: SkillContext):
    reply = say(ctx, "undo", "undo that")
    assert "can't undo" in reply and "/task delete" in reply and "/reminders cancel" in reply
