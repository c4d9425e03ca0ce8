"""Requests Deputy understands before it can fully carry them out: undo.

Each answers honestly with what the operator can do meanwhile; none pretends to have done the job."""
from __future__ import annotations

from kernel.messages import Intent, Outcome
from agents.skill_context import SkillContext


def undo(ctx: SkillContext, intent: Intent) -> Outcome:
    return Outcome(text="I can't undo yet, so nothing was changed. What you can do instead: a task — /task delete N; "
                        "a reminder — /reminders cancel N; a card you haven't approved yet — press Reject, and nothing happens.")
