"""Skills for action intents: each starts a run (plan → inspect → execute), and the approval buttons."""
from __future__ import annotations

from typing import TYPE_CHECKING

from agents.messages import Intent, Outcome
from agents.plan import Origin

if TYPE_CHECKING:
    from agents.skills import SkillContext

NOT_WIRED = Outcome(text="I cannot act from here: this process has no agent configured.", ok=False)


def act(ctx: "SkillContext", intent: Intent) -> Outcome:
    if ctx.agent is None:
        return NOT_WIRED
    content = intent.slots.get("content")
    # what someone else wrote (an email, a form) travels separately, as data, never as the goal itself
    untrusted = (str(content),) if content else ()
    origin = Origin(channel=ctx.channel or "console", thread_id=ctx.thread_id, actor=ctx.actor, reply_to=dict(ctx.reply_to))
    return ctx.agent.start(intent, origin, ctx.trace_id, untrusted)


def approve(ctx: "SkillContext", value: str) -> Outcome:
    if ctx.agent is None:
        return NOT_WIRED
    return ctx.agent.decide(value, ctx.actor, "approved", ctx.trace_id)


def reject(ctx: "SkillContext", value: str) -> Outcome:
    if ctx.agent is None:
        return NOT_WIRED
    return ctx.agent.decide(value, ctx.actor, "rejected", ctx.trace_id)
