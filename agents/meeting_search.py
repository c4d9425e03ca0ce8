"""Which meeting a request means: "my call with Ana", "Friday's meeting with Bob", "the Verdant review", "my 3pm".

The request's own words (less the verbs, the time and the filler) must all appear in the event's title, description,
location or attendees (calendar.find); kinds of meeting ("call", "meeting") only break ties; a day narrows the window
to that day and a clock time to the events starting then. One match is the meeting; several are offered as a choice."""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import date, datetime, time as clock, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from agents import answers
from agents.agenda_times import DAY_WORDS, plain, when_in
from agents.conversation import ask
from agents.skill_context import SkillContext
from integrations.calendar_models import CalendarEvent, day_text, query_words
from integrations.capability import CapabilityError
from kernel.messages import Intent, Outcome
from kernel.text import STOPWORDS

# how far ahead a meeting is looked for when the request names no day
LOOKAHEAD_DAYS = 30
CHOICES = 6
# words that say what to do with a meeting, or when, not which meeting
_NOT_WHICH = frozenset(
    "move moving reschedule rescheduled push pushed postpone postponed shift bump delay change time bring forward back "
    "cancel cancelled canceled off scrap drop delete remove clear kill take calendar diary please pls can could we "
    "you i us let lets need needs make it later earlier sooner same happening anymore not won't cant can't make able "
    "today tonight tomorrow yesterday next this week weekend morning afternoon evening noon midnight am pm o'clock "
    "monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun "
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec w all one".split()
) | STOPWORDS
# kinds of meeting: they rank matches but are not required (a "call with Ana" may be called "Ana / Deputy sync")
_CLOCK = re.compile(r"\b(?:at\s+)?\d{1,2}(?:[:.]\d\d)?\s*(?:am|pm)\b|\bat\s+\d{1,2}(?::\d\d)?\b|\b\d{1,2}:\d\d\b", re.I)
_CALL_OFF = re.compile(r"\bcall(?:ed|ing)? off\b", re.I)
KINDS = frozenset("meeting meetings call calls appointment appointments event events meet session chat catchup".split())


@dataclass(frozen=True)
class Wanted:
    """What the request says about the meeting."""

    words: tuple[str, ...]
    kinds: tuple[str, ...]
    day: date | None
    at: clock | None

    def described(self) -> str:
        what = " ".join(self.words + self.kinds) or "any meeting"
        when = f" on {day_text(self.day)}" if self.day else f" in the next {LOOKAHEAD_DAYS} days"
        return f"“{what}”{when}" + (f" starting at {self.at:%H:%M}" if self.at else "")


def _which_words(text: str) -> list[str]:
    found = []
    for word in query_words(text):
        if word in _NOT_WHICH or any(ch.isdigit() for ch in word) or len(word) < 2:
            continue
        # a misspelt verb ("cancle", "rescheduel") is still a verb
        if len(word) >= 5 and difflib.get_close_matches(word, _NOT_WHICH, n=1, cutoff=0.8):
            continue
        found.append(word)
    return found


def wanted_in(text: str, timezone: str, now: datetime) -> Wanted:
    """The meeting `text` describes (a move's text without its new time)."""
    text = _CALL_OFF.sub(" ", plain(text))
    words = _which_words(text)
    # the day alone: the clock time is read below ("the 3pm meeting tomorrow" would otherwise read as today 15:00)
    when = when_in(_CLOCK.sub(" ", text), timezone, now)
    day = date.fromisoformat(when.iso[:10]) if when is not None and DAY_WORDS.search(when.phrase) else None
    at = answers.clock_time(text)
    kinds = tuple(dict.fromkeys(w for w in words if w in KINDS))
    return Wanted(words=tuple(dict.fromkeys(w for w in words if w not in KINDS)), kinds=kinds, day=day,
                  at=clock.fromisoformat(at) if at else None)


def _find(ctx: SkillContext, args: dict[str, Any]) -> list[CalendarEvent]:
    assert ctx.agent is not None
    return list(ctx.agent.executor.read("calendar.find", {"timezone": ctx.timezone, **args}, ctx.trace_id, ctx.workspace).events)


def candidates(ctx: SkillContext, wanted: Wanted, now: datetime) -> list[CalendarEvent]:
    """The meetings that fit, soonest first, one per event."""
    zone = ZoneInfo(ctx.timezone)
    first = wanted.day or now.astimezone(zone).date()
    start = datetime.combine(first, clock(0), zone)
    end = start + timedelta(days=1 if wanted.day else LOOKAHEAD_DAYS)
    found = _find(ctx, {"query": " ".join(wanted.words), "start": start.isoformat(), "end": end.isoformat()})
    if wanted.at is not None:
        found = [e for e in found if not e.all_day and e.start.timetz().replace(tzinfo=None) == wanted.at]
    if wanted.kinds:
        kind = [e for e in found if any(e.matches(k) for k in wanted.kinds)]
        found = kind or found
    unique: dict[str, CalendarEvent] = {}
    for event in found:
        unique.setdefault(event.uid, event)
    return list(unique.values())


def label(event: CalendarEvent) -> str:
    """"Call with Ana — Tue 8 Dec 15:00", as a choice button reads."""
    when = f"{day_text(event.start.date())}" + ("" if event.all_day else f" {event.start:%H:%M}")
    return f"{event.summary or '(no title)'} — {when}"


def the_meeting(ctx: SkillContext, intent: Intent, text: str, verb: str) -> CalendarEvent | Outcome:
    """The one meeting the request means, or what to say instead: a question (several fit), none found, an error.

    An answer to "which one?" (slots["uid"]) settles it."""
    now = datetime.now(ZoneInfo(ctx.timezone))
    try:
        uid = str(intent.slots.get("uid") or "")
        if uid:
            found = _find(ctx, {"uid": uid})
            if not found:
                return Outcome(text="That meeting is no longer in your calendar, so there is nothing to "
                                    f"{verb}. Nothing was changed.", ok=False)
            return found[0]
        wanted = wanted_in(text, ctx.timezone, now)
        fits = candidates(ctx, wanted, now)
    except CapabilityError as err:
        return unreadable(err)
    if not fits:
        return Outcome(text=f"I found no meeting matching {wanted.described()} in your calendar, so there is nothing to "
                            f"{verb}. Try the words of its title or who it is with.", ok=False)
    if len(fits) == 1:
        return fits[0]
    options = tuple((label(e), e.uid) for e in fits[:CHOICES])
    more = f" (the first {CHOICES} of {len(fits)})" if len(fits) > CHOICES else ""
    return ask(ctx, intent, slot="uid", prompt=f"Which meeting do you mean{more}?", kind="choice", options=options)


def unreadable(err: Exception) -> Outcome:
    return Outcome(text=f"I could not read your calendar just now ({err}). Nothing was changed; try again in a minute.", ok=False)
