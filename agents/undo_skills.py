"""Undo: a done card's Undo button and "undo that" in its thread. Each runs the action's compensations as a run of
their own (Agent.undo_run), once however often it is asked, and only within UNDO_WINDOW of the action."""
from __future__ import annotations

import time

from agents.plan import Origin
from agents.skill_context import SkillContext
from agents.undo_cards import minutes, undo_card
from kernel.messages import Card, Intent, Outcome
from memory.undo_log import Undoable

NOT_WIRED = Outcome(text="I cannot undo from here: this process has no undo log configured. Nothing was changed.", ok=False)


def _clock(ts: float) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(ts))


def undo_clicked(ctx: SkillContext, value: str) -> Outcome:
    """The Undo button of a done card."""
    if ctx.undo is None or ctx.agent is None:
        return NOT_WIRED
    item = ctx.undo.get(value)
    if item is None:
        return Outcome(text="I no longer have that action to undo (I keep them for a week); nothing was changed.", ok=False)
    return undo(ctx, item)


def undo_that(ctx: SkillContext, intent: Intent) -> Outcome:
    """"undo that": the newest action of this thread that can still be undone."""
    if ctx.undo is None or ctx.agent is None:
        return NOT_WIRED
    item = ctx.undo.last(ctx.thread_id, ctx.undo_window_s)
    if item is None:
        return Outcome(text=_nothing_to_undo(ctx), ok=False)
    return undo(ctx, item)


def undo(ctx: SkillContext, item: Undoable) -> Outcome:
    """Undo `item` once: a late or repeated ask is told why nothing more happens."""
    assert ctx.undo is not None and ctx.agent is not None
    window = ctx.undo_window_s
    if ctx.undo.undone(item.id) and not ctx.undo.claim(item.id, by=ctx.trace_id):
        return _already(ctx, item)
    if not ctx.undo.within(item, window):
        ctx.events.record(ctx.trace_id, "undo.refused", actor=ctx.actor, undo_id=item.id, reason="past the undo window",
                          done_at=item.created_at, window_s=window)
        return Outcome(text=f"Too late to undo that: it was done at {_clock(item.created_at)}, and I undo an action only "
                            f"within {minutes(window)} of it (UNDO_WINDOW). Nothing was changed.\n{item.summary}",
                       updates=_redrawn(item, undo_card(item, window, ctx.undo.clock())), ok=False)
    if not ctx.undo.claim(item.id, by=ctx.trace_id):
        return _already(ctx, item)
    origin = Origin(channel=ctx.channel or "console", thread_id=ctx.thread_id, actor=ctx.actor, reply_to=dict(ctx.reply_to))
    report = ctx.agent.undo_run(item, origin, ctx.trace_id)
    if report.status == "awaiting_approval":
        return ctx.agent.render(report)
    if report.status != "done":
        return Outcome(text=f"I could not undo that: {report.message}",
                       updates=_redrawn(item, undo_card(item, window, ctx.undo.clock(), resolution="Undo failed")), ok=False)
    done = undo_card(item, window, ctx.undo.clock(), resolution=f"Undone by {ctx.actor} at {_clock(time.time())}")
    return Outcome(text=f"Undone. {report.message}", updates=_redrawn(item, done))


def _redrawn(item: Undoable, card: Card) -> tuple[Card, ...]:
    """The done card as it now stands, where there is one: a change a skill made directly showed none, and an
    update to a card never shown would appear as a new one."""
    return (card,) if item.run_id else ()


def _already(ctx: SkillContext, item: Undoable) -> Outcome:
    """A second Undo (a double click, another "undo that"): what became of the first."""
    assert ctx.agent is not None and ctx.undo is not None
    status, detail = ctx.agent.runs.status(f"undo-{item.id}")
    ctx.events.record(ctx.trace_id, "undo.duplicate", actor=ctx.actor, undo_id=item.id, status=status or "starting")
    if status == "done":
        text = f"That was already undone; nothing more was changed. ({detail})" if detail else "That was already undone; nothing more was changed."
    elif status in ("failed", "denied", "blocked", "rejected", "expired"):
        text = f"I already tried to undo that and could not: {detail or status}. Nothing more was changed."
    else:
        text = "I am already undoing that; nothing more will change."
    return Outcome(text=text, ok=False)


def _nothing_to_undo(ctx: SkillContext) -> str:
    """What can be undone, and for how long, when nothing in this thread can be now."""
    assert ctx.agent is not None and ctx.undo is not None
    window = minutes(ctx.undo_window_s)
    undoable = sorted(name for name, c in ctx.agent.executor.capabilities.items() if c.side_effect and c.undo is not None)
    kinds = f" ({', '.join(undoable)})" if undoable else ""
    text = (f"There is nothing in this thread I can undo now, so nothing was changed. I can undo an action I did here "
            f"within {window} of doing it (UNDO_WINDOW): one whose done card shows an Undo button{kinds}. "
            "An email that was sent cannot be unsent.")
    late = ctx.undo.last(ctx.thread_id, float("inf"))
    if late is not None:
        text += f" The last one, done at {_clock(late.created_at)}, is past its {window}: {late.summary}"
    return text
