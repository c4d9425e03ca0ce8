"""Contacts and undo, understood before they exist: each says plainly what it did instead."""
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


def test_a_saved_contact_is_kept_as_a_note_and_found_again(ctx: SkillContext):
    saved = say(ctx, "save_contact", "save Ana's email as ana@acme.io", details="Ana's email as ana@acme.io")
    assert "contact book yet" in saved and "ana@acme.io" in saved
    found = say(ctx, "find_contact", "what's Ana's email", query="Ana's email")
    assert "ana@acme.io" in found
    assert "nothing in your notes" in say(ctx, "find_contact", "what's Bob's number", query="Bob's number")


def test_undo_says_it_cannot_and_what_to_do_instead(ctx: SkillContext):
    reply = say(ctx, "undo", "undo that")
    assert "can't undo" in reply and "/task delete" in reply and "/reminders cancel" in reply
