"""Conversation state per thread: the question Deputy is waiting on, and the action still waiting for approval.

A skill that lacks a detail returns `ask(...)`: the question goes into the thread (with quick-reply buttons where
the answer is a choice), and the operator's next message there — or a click — fills that slot and runs the same
skill again. "cancel" / "never mind" ends it; an answer after PENDING_QUESTION_TTL is told the question expired.
A correction before approval ("make it 4pm", "add bob@acme.io") retires the pending approval and asks again
with the corrected action (agents/corrections.py)."""
from __future__ import annotations

import re
import time
import uuid
from typing import Mapping

from agents import answers
from agents.skill_context import Skill, SkillContext
from kernel.messages import Button, Card, CardField, Intent, Outcome
from memory.conversations import Kind, Question
from agents.zones import zone_in

ANSWER = "conversation.answer"
CANCEL = re.compile(r"^\s*(?:cancel|cancel (?:it|that)|never ?mind|nevermind|forget it|stop|nvm|no thanks|scratch that)\s*[.!]*\s*$", re.I)


def ask(ctx: SkillContext, intent: Intent, slot: str, prompt: str, kind: Kind = "text",
        options: tuple[tuple[str, str], ...] = (), default: str = "") -> Outcome:
    """Ask for `slot` in this thread; the answer runs `intent`'s skill again with it filled."""
    conv = ctx.conversation
    if conv is None:
        return Outcome(text=prompt + " (Tell me again with it included.)", ok=False)
    now = conv.clock()
    question = Question(id=uuid.uuid4().hex[:10], intent=intent, slot=slot, kind=kind, prompt=prompt, options=options,
                        asked_at=now, expires_at=now + conv.ttl_s, actor=ctx.actor)
    conv.ask(ctx.channel, ctx.thread_id, question)
    ctx.events.record(ctx.trace_id, "conversation.asked", actor="deputy", question_id=question.id, slot=slot, answer_kind=kind,
                      skill=intent.name, options=[v for _, v in options])
    hint = ' Say "cancel" to drop it.'
    return Outcome(text=prompt + hint, card=question_card(question, default) if options else None)


def question_card(question: Question, default: str = "", resolution: str = "") -> Card:
    buttons = () if resolution else tuple(
        Button(label=label, action=ANSWER, value=f"{question.id}:{value}", style="primary" if value == default else "default")
        for label, value in question.options)
    return Card(card_id=f"question-{question.id}", title=question.prompt, buttons=buttons, resolution=resolution,
                fields=(CardField(label="About", value=question.intent.text[:200]),) if question.intent.text else ())


def read_answer(question: Question, text: str) -> str | None:
    """The slot value a message gives for `question`, or None when it is no answer to it."""
    if question.kind == "duration":
        minutes = answers.duration_minutes(text)
        return str(minutes) if minutes else answers.choice(text, question.options)
    if question.kind == "clock":
        return answers.clock_time(text)
    if question.kind == "choice":
        return answers.choice(text, question.options)
    if question.kind == "zone":
        return zone_in(text)
    return text.strip() or None


def answered(ctx: SkillContext, text: str, skills: Mapping[str, Skill]) -> Outcome | None:
    """Handle `text` as the answer to this thread's open question; None when it is not one (a new request)."""
    conv = ctx.conversation
    question = conv.question(ctx.channel, ctx.thread_id) if conv is not None else None
    if conv is None or question is None:
        return None
    if CANCEL.match(text):
        conv.close(ctx.channel, ctx.thread_id, question.id)
        ctx.events.record(ctx.trace_id, "conversation.cancelled", actor=ctx.actor, question_id=question.id)
        return Outcome(text="OK, I dropped that. Nothing was done.", updates=(question_card(question, resolution="Cancelled"),))
    value = read_answer(question, text)
    if conv.clock() >= question.expires_at:
        conv.close(ctx.channel, ctx.thread_id, question.id)
        if value is None:
            return None
        return _late(ctx, question)
    if value is None:
        if len(text.split()) > 4:
            return None  # a new request: the question stays open for its answer
        return Outcome(text=f"Sorry, I didn't get that. {question.prompt}", ok=False)
    return fill(ctx, question, value, skills)


def _late(ctx: SkillContext, question: Question) -> Outcome:
    asked = time.strftime("%H:%M UTC", time.gmtime(question.asked_at))
    minutes = max(1, round((question.expires_at - question.asked_at) / 60))
    ctx.events.record(ctx.trace_id, "conversation.expired", actor=ctx.actor, question_id=question.id)
    return Outcome(text=f"That question expired (I asked at {asked} and wait {minutes} min for an answer), so nothing was done. "
                        f"Tell me again if you still want it: “{question.intent.text}”", ok=False,
                   updates=(question_card(question, resolution="Expired — nothing was done"),))


def fill(ctx: SkillContext, question: Question, value: str, skills: Mapping[str, Skill]) -> Outcome:
    """Put `value` in the question's slot and run its skill again (once: the first answer takes the question)."""
    conv = ctx.conversation
    assert conv is not None
    if not conv.close(ctx.channel, ctx.thread_id, question.id):
        return Outcome(text="That question was already answered.", ok=False)
    ctx.events.record(ctx.trace_id, "conversation.answered", actor=ctx.actor, question_id=question.id, slot=question.slot, value=value)
    intent = question.intent.model_copy(update={"slots": {**question.intent.slots, question.slot: value}})
    skill = skills.get(intent.name) or skills["help"]
    outcome = skill(ctx, intent)
    label = next((lbl for lbl, v in question.options if v == value), value)
    return outcome.model_copy(update={"updates": (*outcome.updates, question_card(question, resolution=f"Answered: {label}"))}) \
        if question.options else outcome


def clicked(ctx: SkillContext, value: str, skills: Mapping[str, Skill]) -> Outcome:
    """A quick-reply button: the same as typing its answer."""
    question_id, _, answer = value.partition(":")
    conv = ctx.conversation
    question = conv.question(ctx.channel, ctx.thread_id) if conv is not None else None
    if conv is None or question is None or question.id != question_id:
        return Outcome(text="That question is closed; nothing was done.", ok=False)
    if conv.clock() >= question.expires_at:
        conv.close(ctx.channel, ctx.thread_id, question.id)
        return _late(ctx, question)
    if answer not in {v for _, v in question.options}:
        return Outcome(text="That button is not valid any more.", ok=False)
    return fill(ctx, question, answer, skills)
