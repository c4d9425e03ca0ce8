"""Greetings, thanks and "ok cool": a short human reply, never the help text."""
from __future__ import annotations

from typing import Iterator

import pytest

from agents.skill_context import SkillContext
from agents.skills import SKILLS
from agents.smalltalk import GREETING_REPLY, THANKS_REPLY
from jobs.runtime import open_runtime
from jobs.skill_contexts import skill_context
from kernel.messages import Intent
from kernel.settings import load_settings


@pytest.fixture
def ctx(settings, redis) -> Iterator[SkillContext]:  # type: ignore[no-untyped-def]
    with open_runtime(load_settings(), redis) as rt:
        yield skill_context(rt, "trace-1", "operator", "t1", "console")


def say(ctx: SkillContext, text: str) -> str:
    """What the operator sees for a message the recogniser took as smalltalk."""
    return SKILLS["smalltalk"](ctx, Intent(name="smalltalk", text=text, slots={"intent": "smalltalk"})).text


@pytest.mark.parametrize("text", ["hi", "Hello!", "hey deputy", "good morning", "thanks!", "thank you so much",
                                  "ok cool", "great job", "how are you?", "bye", "👍"])
def test_replies_are_short_and_never_the_help_text(ctx: SkillContext, text: str):
    reply = say(ctx, text)
    assert 0 < len(reply) <= 50
    assert ctx.help_text not in reply and reply not in ctx.help_text


def test_a_greeting_is_greeted_and_thanks_are_welcomed(ctx: SkillContext):
    assert say(ctx, "hey there") == GREETING_REPLY
    assert say(ctx, "Good afternoon") == GREETING_REPLY
    assert say(ctx, "ok thanks") == THANKS_REPLY
    assert say(ctx, "cheers, that was quick") == THANKS_REPLY
