"""Corrections before approval: "make it 4pm", "an hour instead", "add bob@acme.io", "call it Kickoff".

The thread's action still waiting for approval (held by the skill that asked) is changed and asked for again:
the old approval is retired (its buttons can no longer approve anything, agents/approvals.py supersede), its card
is redrawn as superseded, and the corrected action gets a new card with a new digest."""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from agents import answers
from agents.approval_cards import approval_card
from agents.approvals import ApprovalState
from agents.intents.slots import DAY_WORDS, find_when
from agents.conversation import CANCEL
from agents.skill_context import Skill, SkillContext
from kernel.messages import Intent, Outcome
from kernel.text import find_emails
from memory.conversations import PendingAction

# how a correction starts: it changes the action just shown, it is not a request of its own
LEADS = re.compile(
    r"^\s*(?:(?:no[,.!]?|actually[,]?|oh[,]?|sorry[,]?|wait[,]?)\s+(?=\S)|"
    r"(?:no[,.!]?\s+|actually[,]?\s+|oh[,]?\s+|sorry[,]?\s+|wait[,]?\s+)*"
    r"(?:make (?:it|that)|change (?:it|that)(?: to)?|move it(?: to)?|push it(?: to)?|instead|rather|"
    r"(?:it|that) should be|should be|let'?s (?:say|do|make it)|add|also (?:add|invite)|invite|and invite|"
    r"call it|name it|rename it(?: to)?|title it|(?:change|set|make) the subject|at \d|for \d|\d{1,2}(?::\d\d)?\s*(?:am|pm)\b))",
    re.I,
)
# "an hour instead", "4pm instead": a correction said the other way round
TRAILING = re.compile(r"\b(?:instead|rather)\s*[.!]?\s*$", re.I)
# "make it 11", "move it to 5": a bare hour after a correcting verb is a clock time
_BARE_HOUR = re.compile(r"\b(?:make (?:it|that)|to|at|move it to|change it to)\s+(\d{1,2})(?::(\d\d))?\s*[.!]?\s*$", re.I)
_SUBJECT = re.compile(r"^\s*(?:change|set|make)\s+the\s+subject\s+(?:to|line to)\s+[\"“']?(.+?)[\"”']?\s*$", re.I)
_TITLE = re.compile(r"^\s*(?:call it|name it|rename it(?: to)?|title it)\s+[\"“']?(.+?)[\"”']?\s*$", re.I)
# the slot an added address goes into, by skill
RECIPIENTS = {"schedule": "attendees", "email": "to", "send_email": "emails"}


def hold(ctx: SkillContext, intent: Intent, outcome: Outcome) -> Outcome:
    """Keep the action behind an approval card, so the next message in the thread may correct it."""
    card = outcome.card
    approve = next((b for b in card.buttons if b.action == "approval.approve"), None) if card is not None else None
    if ctx.conversation is None or card is None or approve is None:
        return outcome
    ttl = ctx.agent.executor.policy.approval_ttl_s if ctx.agent is not None else 3600
    ctx.conversation.hold(ctx.channel, ctx.thread_id, PendingAction(intent=intent, approval_id=approve.value, card=card,
                                                                     trace_id=ctx.trace_id), ttl)
    return outcome


def changes(text: str, intent: Intent, timezone: str) -> dict[str, Any]:
    """The slots a correction changes; empty when it changes nothing this action has."""
    found: dict[str, Any] = {}
    title = _TITLE.match(text) or _SUBJECT.match(text)
    if title:
        return {"subject" if intent.name in RECIPIENTS and intent.name != "schedule" else "title": title.group(1).strip()}
    emails = find_emails(text)
    if emails:
        slot = RECIPIENTS.get(intent.name, "attendees")
        found[slot] = list(dict.fromkeys([*_listed(intent.slots.get(slot)), *emails]))
    minutes = answers.duration_minutes(re.sub(r"\b\d{1,2}(?::\d\d)?\s*(?:am|pm)\b", " ", text, flags=re.I)) \
        if re.search(r"\b(?:min|mins|minutes?|hours?|hrs?|h)\b|\bhalf an hour\b", text, re.I) else None
    if minutes:
        found["duration_min"] = str(minutes)
    clock = answers.clock_time(text) if not minutes or re.search(r"\d\s*(?:am|pm)|\d:\d\d|\bat \d", text, re.I) else None
    bare = _BARE_HOUR.search(text) if clock is None and not minutes else None
    if bare is not None:
        clock = answers.clock_time(f"at {bare.group(1)}:{bare.group(2) or '00'}")
    if clock:
        found["time"] = clock
    when = find_when(text, timezone) if DAY_WORDS.search(text) else None
    if when is not None and DAY_WORDS.search(when.phrase):
        found["date"] = date.fromisoformat(when.iso[:10]).isoformat()
    return found


def _listed(value: Any) -> list[str]:
    if not value:
        return []
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def corrected(ctx: SkillContext, text: str, skills: Mapping[str, Skill]) -> Outcome | None:
    """Apply `text` as a correction of the thread's held action; None when it is not one."""
    conv = ctx.conversation
    held = conv.action(ctx.channel, ctx.thread_id) if conv is not None else None
    if held is None or ctx.agent is None:
        return None
    if CANCEL.match(text):
        return _dropped(ctx, held)
    if not (LEADS.match(text) or TRAILING.search(text)):
        return None
    update = changes(text, held.intent, ctx.timezone)
    return apply(ctx, held, update, text, skills) if update else None


def _dropped(ctx: SkillContext, held: PendingAction) -> Outcome:
    """"never mind" while an action waits for approval: it is rejected, as the Reject button would."""
    assert ctx.agent is not None and ctx.conversation is not None
    ctx.conversation.drop_action(ctx.channel, ctx.thread_id)
    decided = ctx.agent.decide(held.approval_id, ctx.actor, "rejected", ctx.trace_id)
    if decided.card is None:
        return decided
    return Outcome(text="OK, I dropped it: nothing was done.", ok=decided.ok, updates=(decided.card,))


def apply(ctx: SkillContext, held: PendingAction, update: dict[str, Any], said: str, skills: Mapping[str, Skill]) -> Outcome | None:
    """Retire the held approval and run its skill again with `update`; None when it was decided meanwhile."""
    assert ctx.agent is not None and ctx.conversation is not None
    ctx.conversation.drop_action(ctx.channel, ctx.thread_id)
    if not ctx.agent.approvals.supersede(held.approval_id, ctx.trace_id):
        return None  # already decided: this is a new request, not a correction
    old = ctx.agent.approvals.get(held.approval_id)
    ctx.events.record(ctx.trace_id, "action.corrected", actor=ctx.actor, superseded=held.approval_id,
                      superseded_trace=held.trace_id, changed=sorted(update))
    slots = {**held.intent.slots, **update}
    if "time" in update or "date" in update:
        slots.pop("start", None)
        slots.setdefault("date", _date_of(held.intent.slots, ctx.timezone))
    intent = held.intent.model_copy(update={"slots": slots, "text": f"{held.intent.text} ({said.strip()})"})
    outcome = (skills.get(intent.name) or skills["help"])(ctx, intent)
    retired = approval_card(old, ApprovalState("superseded")) if old is not None else held.card
    return outcome.model_copy(update={"updates": (retired, *outcome.updates)})


def pick_slot(ctx: SkillContext, value: str, skills: Mapping[str, Skill]) -> Outcome:
    """A free-slot button on a card whose time clashed: the same as saying "make it <that time>"."""
    approval_id, _, moment = value.partition(":")
    held = ctx.conversation.action(ctx.channel, ctx.thread_id) if ctx.conversation is not None else None
    match = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d)", moment)
    if held is None or held.approval_id != approval_id or match is None or ctx.agent is None:
        return Outcome(text="That choice is no longer open; nothing was changed.", ok=False)
    outcome = apply(ctx, held, {"date": match.group(1), "time": match.group(2)}, f"at {match.group(1)} {match.group(2)}", skills)
    return outcome or Outcome(text="That action was already decided; nothing was changed.", ok=False)


def _date_of(slots: Mapping[str, Any], timezone: str) -> str:
    start = str(slots.get("start") or "")
    if start:
        moment = datetime.fromisoformat(start) if "T" in start else None
        if moment is not None:
            return (moment.astimezone(ZoneInfo(timezone)) if moment.tzinfo else moment).date().isoformat()
        return start[:10]
    return str(slots.get("date") or datetime.now(ZoneInfo(timezone)).date().isoformat())
