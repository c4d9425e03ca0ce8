"""The calendar, asked and changed in everyday words: "what's on my calendar tomorrow", "am I free Thursday
afternoon", "move my call with Ana to 4pm", "cancel Friday's meeting with Bob".

Questions are answered from the calendar at once (read-only, no approval). A move or a cancel finds the meeting
(asking which one when several fit), then asks approval with the event before → after on the card; a correction
before approval ("make it 5pm") changes the move."""
from __future__ import annotations

import re
from datetime import datetime, time as clock, timedelta
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from agents import setup_hints
from agents.agenda_times import Window, asked_window, change_from, split_move
from agents.approval_cards import asks_approval
from agents.conversation import ask
from agents.corrections import hold
from agents.meeting_search import candidates, the_meeting, unreadable, wanted_in
from agents.plan import Origin
from agents.skill_context import SkillContext
from integrations.calendar_models import CalendarEvent, day_text, span
from integrations.capability import CapabilityError
from kernel.messages import Intent, Outcome

# "am I free …", "do I have time for …", "is my afternoon free"
_FREE = re.compile(r"\b(?:free|busy|available|availability|booked|time for)\b", re.I)
# "when is my next meeting", "what time is my call with Ana"
_LOOKUP = re.compile(r"^\s*(?:when(?:'s|\s+is|\s+are)|what\s+time\s+(?:is|are))\b|\bnext (?:meeting|call|appointment|event)\b", re.I)
# a free gap shorter than this is not worth offering
MIN_GAP = timedelta(minutes=15)
NOT_WIRED = Outcome(text="I cannot reach the calendar from here: this process has no agent configured.", ok=False)


def _not_set_up(ctx: SkillContext, capability: str, would: str) -> Outcome | None:
    hint = setup_hints.unconfigured(ctx, capability, would=would)
    if hint is not None:
        return hint
    return NOT_WIRED if ctx.agent is None else None


def line(event: CalendarEvent) -> str:
    """"• 15:00–15:30 Call with Ana (ana@acme.io)"."""
    when = "all day" if event.all_day else f"{event.start:%H:%M}–{event.end:%H:%M}"
    who = f" ({', '.join(event.attendees)})" if event.attendees else ""
    where = f" @ {event.location}" if event.location else ""
    return f"• {when} {event.summary or '(no title)'}{who}{where}"


def _by_day(events: Sequence[CalendarEvent]) -> list[str]:
    lines: list[str] = []
    for event in events:
        header = f"{day_text(event.start.date())}:"
        if header not in lines:
            lines.append(header)
        lines.append(line(event))
    return lines


def _events(ctx: SkillContext, window: Window) -> list[CalendarEvent]:
    assert ctx.agent is not None
    read = ctx.agent.executor.read
    if window.one_day:
        found = read("calendar.agenda", {"day": window.start.date().isoformat(), "timezone": ctx.timezone},
                     ctx.trace_id, ctx.workspace).events
    else:
        found = read("calendar.find", {"start": window.start.isoformat(), "end": window.end.isoformat(), "timezone": ctx.timezone,
                                       "limit": 200}, ctx.trace_id, ctx.workspace).events
    return [e for e in found if e.start < window.end and e.end > window.start]


def agenda(ctx: SkillContext, intent: Intent) -> Outcome:
    """What is on the calendar for a day, part of a day or a week; whether the operator is free then."""
    blocked = _not_set_up(ctx, "calendar.agenda", would="read your calendar and tell you what is on it")
    if blocked is not None:
        return blocked
    now = datetime.now(ZoneInfo(ctx.timezone))
    text = intent.text or ""
    if _LOOKUP.search(text):
        return _lookup(ctx, text, now)
    window = asked_window(intent.slots, text, ctx.timezone, ctx.work_hours, ctx.default_duration_min, now)
    try:
        events = _events(ctx, window)
    except CapabilityError as err:
        return unreadable(err)
    if _FREE.search(text) and window.one_day:
        return Outcome(text=_free(ctx, window, events, now))
    if not events:
        return Outcome(text=f"Nothing on your calendar {window.label}.")
    whole_days = window.start.timetz().replace(tzinfo=None) == clock(0) and window.end.timetz().replace(tzinfo=None) == clock(0)
    if whole_days:
        return Outcome(text="\n".join(_by_day(events)))
    return Outcome(text="\n".join([f"{window.label[:1].upper()}{window.label[1:]}:", *(line(e) for e in events)]))


def gaps(start: datetime, end: datetime, busy: Sequence[CalendarEvent]) -> list[tuple[datetime, datetime]]:
    """The free stretches of [start, end) between the busy events, each at least MIN_GAP long."""
    found: list[tuple[datetime, datetime]] = []
    cursor = start
    for event in sorted(busy, key=lambda e: e.start):
        if event.start - cursor >= MIN_GAP:
            found.append((cursor, min(event.start, end)))
        cursor = max(cursor, event.end)
        if cursor >= end:
            return found
    if end - cursor >= MIN_GAP:
        found.append((cursor, end))
    return found


def _free(ctx: SkillContext, window: Window, events: list[CalendarEvent], now: datetime) -> str:
    """Yes or no, what overlaps, and the free gaps within working hours."""
    busy = [e for e in events if not e.all_day]
    all_day = [e.summary for e in events if e.all_day]
    note = f"\n(All day: {', '.join(all_day)}.)" if all_day else ""
    if not busy:
        return f"Yes — you're free {window.label}.{note}"
    day = window.start.date()
    zone = ZoneInfo(ctx.timezone)
    work_start = datetime.combine(day, clock(0), zone) + timedelta(hours=ctx.work_hours[0])
    work_end = datetime.combine(day, clock(0), zone) + timedelta(hours=ctx.work_hours[1])
    start, end = max(window.start, work_start), min(window.end, work_end)
    if start >= end:  # asked about a time outside working hours: the gaps are within what was asked
        start, end = window.start, window.end
    start = max(start, now.replace(second=0, microsecond=0) + timedelta(minutes=-now.minute % 5))
    free = gaps(start, end, busy) if start < end else []
    lines = [f"No — {window.label} you have:", *(line(e) for e in busy)]
    if free:
        lines.append("Free: " + ", ".join(f"{a:%H:%M}–{b:%H:%M}" for a, b in free) + ".")
    else:
        lines.append("No free time left then within your working hours.")
    return "\n".join(lines) + note


def _lookup(ctx: SkillContext, text: str, now: datetime) -> Outcome:
    """"When is my next meeting", "what time is my call with Ana": the soonest ones that fit."""
    wanted = wanted_in(text, ctx.timezone, now)
    try:
        fits = [e for e in candidates(ctx, wanted, now) if e.end > now]
    except CapabilityError as err:
        return unreadable(err)
    if not fits:
        return Outcome(text=f"I found nothing matching {wanted.described()} in your calendar.")
    first, *rest = fits
    lines = [f"“{first.summary}”: {first.span()}" + (f" ({', '.join(first.attendees)})" if first.attendees else "")]
    lines += [f"Then: “{e.summary}”: {e.span()}" for e in rest[:2]]
    return Outcome(text="\n".join(lines))


def _plan(ctx: SkillContext, intent: Intent, playbook: str, slots: dict[str, Any], said: str) -> Outcome:
    """The change as a run of `playbook`; its approval card, with `said` as the reply's text."""
    assert ctx.agent is not None
    origin = Origin(channel=ctx.channel or "console", thread_id=ctx.thread_id, actor=ctx.actor, reply_to=dict(ctx.reply_to))
    outcome = ctx.agent.start(Intent(name=playbook, text=intent.text, slots=slots, confidence=intent.confidence), origin, ctx.trace_id)
    if outcome.card is None or not asks_approval(outcome.card):
        return outcome
    return outcome.model_copy(update={"text": said})


def move_meeting(ctx: SkillContext, intent: Intent) -> Outcome:
    """"Move my call with Ana to 4pm": find it, then ask approval for the new time (before → after)."""
    blocked = _not_set_up(ctx, "calendar.move", would=f"find the meeting and move it (“{intent.text}”)")
    if blocked is not None:
        return blocked
    now = datetime.now(ZoneInfo(ctx.timezone))
    which, said = split_move(intent.text or str(intent.slots.get("query") or ""), ctx.timezone, now)
    found = the_meeting(ctx, intent, which, verb="move")
    if isinstance(found, Outcome):
        return found
    change = change_from(intent.slots, said, ctx.timezone, now)
    settled = intent.model_copy(update={"slots": {**intent.slots, "uid": found.uid}})
    if change is None:
        return ask(ctx, settled, slot="new_time", prompt=f"When should “{found.summary}” ({found.span()}) move to? "
                                                           "(e.g. 4pm, Thursday 10am, an hour later)", kind="text")
    start, end = change.applied(found.start, found.end)
    if start < now - timedelta(minutes=5):
        fresh = {k: v for k, v in settled.slots.items() if k not in ("date", "time", "new_time")}
        return ask(ctx, settled.model_copy(update={"slots": fresh}), slot="new_time", kind="text",
                   prompt=f"{span(start, end)} has already passed. When should “{found.summary}” move to instead?")
    if (start, end) == (found.start, found.end):
        return Outcome(text=f"“{found.summary}” is already at {found.span()}; nothing to move.")
    before_after = f"Move “{found.summary}” from {found.span()} to {span(start, end)}."
    slots = {"uid": found.uid, "start": start.isoformat(), "end": end.isoformat(), "timezone": ctx.timezone, "change": before_after}
    outcome = _plan(ctx, intent, "move", slots, f"{before_after} Approve below and I'll move it; or correct me (“make it 5pm”).")
    kept = {k: v for k, v in settled.slots.items() if k not in ("new_time", "start")}
    held = settled.model_copy(update={"slots": {**kept, "date": start.date().isoformat(), "time": f"{start:%H:%M}",
                                                "duration_min": str(int((end - start).total_seconds() // 60))}})
    return hold(ctx, held, outcome)


def cancel_meeting(ctx: SkillContext, intent: Intent) -> Outcome:
    """"Cancel Friday's meeting with Bob": find it, then ask approval to delete it (it cannot be undone)."""
    blocked = _not_set_up(ctx, "calendar.cancel", would=f"find the meeting and cancel it (“{intent.text}”)")
    if blocked is not None:
        return blocked
    found = the_meeting(ctx, intent, intent.text or str(intent.slots.get("query") or ""), verb="cancel")
    if isinstance(found, Outcome):
        return found
    with_whom = f" with {', '.join(found.attendees)}" if found.attendees else ""
    what = f"Cancel “{found.summary}” on {found.span()}{with_whom}: it is deleted from your calendar and cannot be undone."
    return _plan(ctx, intent, "cancel", {"uid": found.uid, "change": what}, f"{what} Approve below to cancel it.")
