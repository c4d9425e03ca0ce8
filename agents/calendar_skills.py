"""Scheduling a meeting from free text: ask for what is missing (day, time, length), read the agenda first, show a
conflict with the next free slots as buttons, and ask approval for the exact event.

"schedule a call with Ana next Tuesday at 3pm" → "How long?" [15] [30] [60] → the card: “Call with Ana”,
Tue 8 Dec 15:00–15:30 in the operator's zone, ana@acme.io invited when the contacts know her address."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time as clock, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from agents import answers, setup_hints
from agents.approval_cards import asks_approval
from agents.conversation import ask
from agents.corrections import hold
from agents.intents.slots import find_when
from agents.plan import Origin
from agents.skill_context import SkillContext
from integrations.calendar_models import span
from integrations.capability import CapabilityError
from kernel.messages import Button, Intent, Outcome
from kernel.text import find_emails

SLOT_ACTION = "schedule.slot"
DURATIONS = (("15 min", "15"), ("30 min", "30"), ("60 min", "60"))
# how far ahead free slots are looked for when the asked one is taken
LOOKAHEAD_DAYS = 7
SLOTS_OFFERED = 3
_LENGTH = re.compile(r"\b(?:for\s+)?(?:an?\s+|one\s+|two\s+|half\s+an\s+)?(?:\d+(?:\.\d+)?\s*)?(?:minutes?|mins?|hours?|hrs?|h)\b"
                     r"(?:\s+and\s+a\s+half)?", re.I)
_ARTICLE = re.compile(r"^(?:(?:please|pls|can you|could you|put|add|schedule|book|set up|setup|arrange|organi[sz]e|plan|create|"
                      r"make|get|pencil in|block|time|for)\s+)*(?:a|an|the|my|our|some)?\s*", re.I)


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime


def not_configured(ctx: SkillContext, would: str) -> Outcome | None:
    # the same setup hint as every request whose connector is missing, with Keep as a task
    return setup_hints.unconfigured(ctx, "calendar.create", would)


def title_of(intent: Intent) -> str:
    raw = str(intent.slots.get("title") or "").strip()
    raw = re.sub(r"(?<!\S)w/\s*", "with ", _LENGTH.sub(" ", raw))
    # "a call with ana@acme.io" is a call with Ana: the address is the invitation, the name is the title
    raw = re.sub(r"([\w.+-]+)@\S+", lambda m: re.split(r"[._+-]", m.group(1))[0].capitalize(), raw)
    raw = re.sub(r"\b(?:at|on|for|with|and)\s*$", "", " ".join(raw.split()), flags=re.I).strip(" ,.-")
    raw = _ARTICLE.sub("", raw).strip()
    return (raw[:1].upper() + raw[1:]) if raw else "Meeting"


def _moment(intent: Intent, tz: str, now: datetime) -> tuple[date | None, str | None]:
    """The day and "HH:MM" asked for: answers and corrections first, then the request's own words."""
    slots = intent.slots
    day = date.fromisoformat(str(slots["date"])) if slots.get("date") else None
    at = str(slots["time"]) if slots.get("time") else None
    spoken = str(slots.get("when_answer") or "")
    for text in (spoken, intent.text if not (day and at) else ""):
        if not text:
            continue
        when = find_when(text, tz, now)
        if when is None:
            continue
        day = day or date.fromisoformat(when.iso[:10])
        if when.has_time and at is None and "T" in when.iso:
            at = when.iso[11:16]
        break
    if at is None and spoken:
        at = answers.clock_time(spoken)
    return day, at


def _length(intent: Intent) -> int | None:
    if intent.slots.get("duration_min"):
        return int(str(intent.slots["duration_min"]))
    found = _LENGTH.search(intent.text)
    return answers.duration_minutes(found.group(0)) if found else None


def _attendees(ctx: SkillContext, intent: Intent) -> tuple[list[str], list[str], tuple[str, list[Any]] | None]:
    """Addresses to invite, the names the contacts know no address for, and a name several contacts share
    (with those contacts) when the operator has not said which one they mean yet."""
    emails = [str(e) for e in (intent.slots.get("attendees") or [])] + find_emails(str(intent.slots.get("title") or ""))
    unknown: list[str] = []
    for person in intent.slots.get("people") or []:
        name = str(person)
        picked = intent.slots.get(_pick_slot(name))
        found = [str(picked)] if picked else [c.email for c in _contacts(ctx, name)]
        if len(found) == 1:
            emails.append(found[0])
        elif len(found) > 1:
            return emails, unknown, (name, _contacts(ctx, name))
        elif not any(name.lower() in e.lower() for e in emails):
            unknown.append(name)
    return list(dict.fromkeys(emails)), unknown, None


def _pick_slot(name: str) -> str:
    return "contact_" + re.sub(r"\W+", "_", name.lower())


def _contacts(ctx: SkillContext, name: str) -> list[Any]:
    if ctx.agent is None or "contacts.lookup" not in ctx.agent.executor.capabilities:
        return []
    try:
        found = ctx.agent.executor.read("contacts.lookup", {"query": name}, ctx.trace_id, ctx.workspace)
    except (CapabilityError, ValueError):
        return []
    return [c for c in getattr(found, "contacts", []) if c.email]


def _which(ctx: SkillContext, intent: Intent, name: str, contacts: list[Any]) -> Outcome:
    options = tuple((f"{c.name or c.email}{f' ({c.company})' if c.company else ''} <{c.email}>", c.email) for c in contacts[:6])
    return ask(ctx, intent, _pick_slot(name), f"Which {name} do you mean?", kind="choice", options=options)


def busy(ctx: SkillContext, day: date) -> list[Any] | None:
    """The day's events, or None when the calendar could not be read."""
    assert ctx.agent is not None
    try:
        agenda = ctx.agent.executor.read("calendar.agenda", {"day": day.isoformat(), "timezone": ctx.timezone},
                                         ctx.trace_id, ctx.workspace)
    except (CapabilityError, OSError, ValueError) as err:
        ctx.events.record(ctx.trace_id, "calendar.unread", actor="worker", error=str(err)[:200])
        return None
    return [e for e in agenda.events if not e.all_day]


def overlapping(events: list[Any], slot: Slot) -> list[Any]:
    return [e for e in events if e.start < slot.end and e.end > slot.start]


def free_slots(ctx: SkillContext, wanted: Slot, first_day: list[Any], now: datetime) -> list[Slot]:
    """Free slots of the same length within working hours (weekdays): the asked day's nearest to the asked time
    first, earlier or later, then the following days' earliest."""
    found: list[Slot] = []
    for offset in range(LOOKAHEAD_DAYS):
        day = wanted.start.date() + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        free = _free_on(ctx, day, first_day if offset == 0 else (busy(ctx, day) or []), wanted.end - wanted.start, now)
        if offset == 0:
            # nearest first; between two as near, the later one (people tend to push a meeting back)
            free.sort(key=lambda s: (abs((s.start - wanted.start).total_seconds()), s.start < wanted.start))
        found += free[: SLOTS_OFFERED - len(found)]
        if len(found) >= SLOTS_OFFERED:
            break
    return found


def _free_on(ctx: SkillContext, day: date, events: list[Any], length: timedelta, now: datetime) -> list[Slot]:
    zone = ZoneInfo(ctx.timezone)
    start_hour, end_hour = ctx.work_hours
    cursor = datetime.combine(day, clock(start_hour), zone)
    close = datetime.combine(day, clock(0), zone) + timedelta(hours=end_hour)
    free = []
    while cursor + length <= close:
        slot = Slot(cursor, cursor + length)
        if cursor >= now and not overlapping(events, slot):
            free.append(slot)
        cursor += timedelta(minutes=30)
    return free


def _hours_question(ctx: SkillContext) -> str:
    """Asked once per operator, the first time free slots are offered: the hours they were offered within."""
    profile = ctx.profiles.get(ctx.actor) if ctx.profiles is not None else None
    if ctx.profiles is None or profile is None or profile.work_start is not None or not ctx.profiles.ask_once(ctx.actor, "hours"):
        return ""
    start, end = ctx.work_hours
    return (f" (I offered times between {start}:00 and {end}:00. What are your working hours? Tell me e.g. "
            "“I work 8 to 5” and I'll use them from now on.)")


def _span(slot: Slot) -> str:
    return span(slot.start, slot.end)


def schedule(ctx: SkillContext, intent: Intent) -> Outcome:
    """The schedule_meeting intent: questions until the event is complete, then its approval card."""
    title = title_of(intent)
    missing = not_configured(ctx, f"put “{title}” in your calendar")
    if missing is not None:
        return missing
    now = datetime.now(ZoneInfo(ctx.timezone))
    day, at = _moment(intent, ctx.timezone, now)
    if day is None:
        return ask(ctx, intent, "when_answer", f"When should “{title}” be? (a day and a time, e.g. Tuesday 3pm)", kind="text")
    if at is None:
        return ask(ctx, intent.model_copy(update={"slots": {**intent.slots, "date": day.isoformat()}}), "time",
                   f"What time on {day:%a %-d %b}?", kind="clock")
    minutes = _length(intent)
    if minutes is None:
        fixed = intent.model_copy(update={"slots": {**intent.slots, "date": day.isoformat(), "time": at}})
        return ask(ctx, fixed, "duration_min", f"How long should “{title}” be?", kind="duration", options=DURATIONS,
                   default=str(ctx.default_duration_min))
    start = datetime.combine(day, clock.fromisoformat(at), ZoneInfo(ctx.timezone))
    if start < now - timedelta(minutes=5):
        return ask(ctx, intent.model_copy(update={"slots": {**intent.slots, "date": "", "time": "", "start": ""}}), "when_answer",
                   f"{start:%a %-d %b %H:%M} has already passed. When should “{title}” be instead?", kind="text")
    return _propose(ctx, intent, title, Slot(start, start + timedelta(minutes=minutes)), now)


def _as_asked(intent: Intent, slot: Slot) -> Intent:
    """The intent with the moment and length settled, so an answer to a later question keeps them."""
    minutes = str(int((slot.end - slot.start).total_seconds() // 60))
    return intent.model_copy(update={"slots": {**intent.slots, "date": slot.start.date().isoformat(),
                                                "time": f"{slot.start:%H:%M}", "duration_min": minutes}})


def _propose(ctx: SkillContext, intent: Intent, title: str, slot: Slot, now: datetime) -> Outcome:
    assert ctx.agent is not None
    events = busy(ctx, slot.start.date())
    clashes = overlapping(events or [], slot)
    attendees, unknown, ambiguous = _attendees(ctx, intent)
    if ambiguous is not None:
        return _which(ctx, _as_asked(intent, slot), *ambiguous)
    learned = ctx.profiles is not None and ctx.profiles.get(ctx.actor).timezone
    zone_note = "your time zone" if learned or ctx.timezone != "UTC" else "Deputy's default — tell me “my time zone is …” if yours differs"
    notes = [f" {_span(slot)} {ctx.timezone} ({zone_note}), {int((slot.end - slot.start).total_seconds() // 60)} min."]
    if events is None:
        notes.append(" I could not read your calendar to check for conflicts.")
    alternatives: list[Slot] = []
    if clashes:
        names = ", ".join(f"“{e.summary}” {e.start:%H:%M}–{e.end:%H:%M}" for e in clashes)
        alternatives = free_slots(ctx, slot, events or [], now)
        notes.append(f" ⚠ It overlaps {names}." + (" Free instead: " + "; ".join(_span(s) for s in alternatives) + "."
                                                    if alternatives else ""))
    if unknown:
        notes.append(f" No address for {', '.join(unknown)} in your contacts, so no invitation goes to them.")
    slots = {"title": title, "start": slot.start.isoformat(), "end": slot.end.isoformat(), "attendees": attendees,
             "timezone": ctx.timezone, "note": "".join(notes)}
    origin = Origin(channel=ctx.channel or "console", thread_id=ctx.thread_id, actor=ctx.actor, reply_to=dict(ctx.reply_to))
    outcome = ctx.agent.start(Intent(name="schedule", text=intent.text, slots=slots, confidence=intent.confidence), origin, ctx.trace_id)
    if outcome.card is None or not asks_approval(outcome.card):
        return outcome  # done at once (the policy lets it), or refused: the run's own words
    approve = next((b.value for b in outcome.card.buttons if b.action == "approval.approve"), "")
    extra = tuple(Button(label=f"{s.start:%a %H:%M}", action=SLOT_ACTION, value=f"{approve}:{s.start:%Y-%m-%dT%H:%M}")
                  for s in alternatives)
    outcome = outcome.model_copy(update={"card": outcome.card.model_copy(update={"buttons": (*outcome.card.buttons, *extra)})})
    text = f"“{title}”, {_span(slot)} ({ctx.timezone}): approve to add it to your calendar."
    if clashes:
        text = f"“{title}” at {_span(slot)} clashes with something already in your calendar: pick a free slot below, or approve it anyway."
        text += _hours_question(ctx)
    outcome = outcome.model_copy(update={"text": text})
    kept = intent.model_copy(update={"slots": {k: v for k, v in intent.slots.items() if k not in ("start", "when_answer")}})
    return hold(ctx, _as_asked(kept, slot), outcome)
