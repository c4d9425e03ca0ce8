"""Reminders: "remind me to call Ana Friday 10am" → a job at that moment → a message in the same
thread with Snooze / Done buttons.

Each firing is keyed by (reminder, due time): a snooze schedules a new job and the old one, if it
still runs, finds its due time stale and stays quiet; a retried job cannot post twice."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

from redis import Redis

from kernel.messages import Button, Card, CardField, Frozen
from agents.scheduling import JobScheduler
from kernel.keys import WorkspaceStore
from kernel import job_names

FIRE_JOB = job_names.FIRE_REMINDER
# a date with no time of day ("next monday") means the start of the working day
DEFAULT_HOUR = 9
TTL_S = 400 * 86_400
TIME_WORDS = re.compile(r"\d\s*(?:am|pm|h)\b|\d:\d\d|\bnoon\b|\bmidnight\b|\bin\s+\d+|\bin\s+(?:a|an|one|two|three)\s|\btonight\b|\bmorning\b|\bafternoon\b|\bevening\b", re.I)
LEADS = re.compile(
    r"^\s*(?:(?:please|can you|could you)\s+)?(?:remind\s+me(?:\s+(?:to|about|that))?|set\s+a\s+reminder(?:\s+(?:to|for))?"
    r"|reminder\s+to|(?:ping|nudge)\s+me(?:\s+to)?|don't\s+let\s+me\s+forget\s+to)\b\s*",
    re.I,
)

Clock = Callable[[], datetime]


class ReminderError(ValueError):
    """The operator's reminder could not be understood; the message says how to write one."""


HOW = "Try e.g. '/remind call Ana Friday 10am' or '/remind in 20 minutes to stretch'."


class Draft(Frozen):
    what: str
    due: datetime


def parse(text: str, tz: str, now: datetime) -> Draft:
    """Split a request into what to be reminded of and when, in the operator's time zone."""
    from dateparser.search import search_dates

    zone = ZoneInfo(tz)
    local_now = now.astimezone(zone)
    cleaned = LEADS.sub("", text.strip())
    # dateparser reads a bare "at 9" as nothing; "at 9:00" it reads
    cleaned = re.sub(r"\bat (\d{1,2})\b(?!\s*[:.]\d|\s*(?:am|pm|h)\b)", r"at \1:00", cleaned, flags=re.I)
    settings: dict[str, Any] = {
        "TIMEZONE": tz, "RETURN_AS_TIMEZONE_AWARE": True, "PREFER_DATES_FROM": "future",
        "RELATIVE_BASE": local_now.replace(tzinfo=None),
    }
    found = search_dates(cleaned, languages=["en"], settings=settings) or []
    if not found:
        raise ReminderError(f"I could not find a time in '{text.strip()}'. {HOW}")
    phrase, when = found[0]
    phrase, when = _tighten(phrase, when, settings)
    if not TIME_WORDS.search(phrase):
        when = when.replace(hour=DEFAULT_HOUR, minute=0, second=0, microsecond=0)
    when = when.astimezone(zone)
    what = " ".join((cleaned.replace(phrase, " ", 1)).split())
    what = re.sub(r"^(?:to|about|that)\s+|\s+(?:on|at|by|to)$", "", what, flags=re.I).strip(" ,.")
    if not what:
        raise ReminderError(f"What should I remind you of? {HOW}")
    if when <= local_now and local_now - when < timedelta(days=1) and phrase.lower().lstrip().startswith(("at ", "noon")):
        when += timedelta(days=1)  # "at 5pm" said at 6pm means tomorrow
    if when <= local_now:
        raise ReminderError(f"{when:%a %d %b %H:%M} has already passed. {HOW}")
    return Draft(what=what, due=when)


def _tighten(phrase: str, when: datetime, settings: dict[str, Any]) -> tuple[str, datetime]:
    """dateparser sometimes swallows trailing words ("Friday 10am about the"); drop them while the
    moment stays the same."""
    import dateparser

    words = phrase.split()
    while len(words) > 1:
        shorter = " ".join(words[:-1])
        parsed = dateparser.parse(shorter, languages=["en"], settings=settings)
        if parsed is None or parsed != when:
            break
        words = words[:-1]
    return " ".join(words), when


class Reminder(Frozen):
    id: str
    what: str
    due: float  # unix seconds
    channel: str
    thread_id: str
    reply_to: dict[str, str] = {}
    status: str = "pending"  # pending | done
    created_by: str = ""
    trace_id: str = ""
    snoozes: int = 0

    def local_due(self, tz: str) -> datetime:
        return datetime.fromtimestamp(self.due, timezone.utc).astimezone(ZoneInfo(tz))


def reminder_card(reminder: Reminder, tz: str, seq: int | None = None, note: str = "") -> Card:
    """The card of one firing (seq = how many snoozes came before it): live buttons while pending,
    `note` in their place once answered."""
    seq = reminder.snoozes if seq is None else seq
    when = reminder.local_due(tz)
    live = reminder.status == "pending" and not note
    buttons: tuple[Button, ...] = ()
    if live:
        buttons = (
            *(Button(label=label, action="reminder.snooze", value=f"{reminder.id}:{minutes}:{seq}")
              for label, minutes in (("Snooze 15 min", 15), ("Snooze 1 h", 60), ("Tomorrow", 24 * 60))),
            Button(label="Done", action="reminder.done", value=f"{reminder.id}:{seq}", style="primary"),
        )
    return Card(
        card_id=f"reminder-{reminder.id}-{seq}",
        title="⏰ Reminder",
        fields=(CardField(label="What", value=reminder.what), CardField(label="When", value=f"{when:%a %d %b %H:%M} {when.tzname()}")),
        buttons=buttons,
        resolution=note or ("Done ✓" if reminder.status == "done" else ""),
    )


class ReminderBook(WorkspaceStore):
    """Reminders of one workspace, each with a job scheduled for its due time."""

    def __init__(self, redis: Redis, workspace: str, scheduler: JobScheduler, timezone: str = "UTC") -> None:
        super().__init__(redis, workspace)
        self.workspace = workspace
        self.scheduler = scheduler
        self.tz = timezone

    def _key(self, reminder_id: str) -> str:
        return self.keys("reminder", reminder_id)

    def add(self, draft: Draft, channel: str, thread_id: str, reply_to: dict[str, str], created_by: str, trace_id: str) -> Reminder:
        # the trace id makes a retried job find the reminder it already set
        reminder_id = (trace_id or uuid.uuid4().hex)[:16]
        reminder = Reminder(id=reminder_id, what=draft.what, due=draft.due.timestamp(), channel=channel, thread_id=thread_id,
                            reply_to=reply_to, created_by=created_by, trace_id=trace_id)
        if not self.redis.set(self._key(reminder_id), reminder.model_dump_json(), nx=True, ex=TTL_S):
            existing = self.get(reminder_id)
            assert existing is not None
            return existing
        self.redis.zadd(self.keys("reminders", "pending"), {reminder_id: reminder.due})
        self._schedule(reminder)
        return reminder

    def get(self, reminder_id: str) -> Reminder | None:
        raw = self.redis.get(self._key(reminder_id))
        return Reminder.model_validate_json(raw) if raw else None

    def pending(self, until: float | None = None) -> list[Reminder]:
        ids = self.redis.zrangebyscore(self.keys("reminders", "pending"), "-inf", until if until is not None else "+inf")
        rows = [self.get(i.decode()) for i in ids]
        return [r for r in rows if r and r.status == "pending"]

    def _schedule(self, reminder: Reminder) -> None:
        at = datetime.fromtimestamp(reminder.due, timezone.utc)
        payload = {"workspace": self.workspace, "reminder_id": reminder.id, "due": reminder.due}
        self.scheduler.run_at(FIRE_JOB, payload, job_id=f"reminder-{reminder.id}-{reminder.snoozes}", at=at)

    def claim_firing(self, reminder_id: str, due: float) -> Reminder | None:
        """The reminder to post now, once: None if it is done, was snoozed since, or already fired."""
        reminder = self.get(reminder_id)
        if reminder is None or reminder.status != "pending" or abs(reminder.due - due) > 1e-3:
            return None
        if not self.redis.set(self.keys("reminder", reminder_id, "fired", repr(due)), "1", nx=True, ex=TTL_S):
            return None
        return reminder

    def snooze(self, reminder_id: str, minutes: int, now: datetime, seq: int) -> tuple[Reminder | None, bool]:
        """(reminder, whether this click snoozed it). One snooze per fired card: a second click on
        the same card changes nothing."""
        reminder = self.get(reminder_id)
        if reminder is None or reminder.status != "pending" or reminder.snoozes != seq:
            return reminder, False
        if not self.redis.set(self.keys("reminder", reminder_id, "snoozed", seq), "1", nx=True, ex=TTL_S):
            return self.get(reminder_id), False
        later = reminder.model_copy(update={"due": (now + timedelta(minutes=minutes)).timestamp(), "snoozes": seq + 1})
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self._key(reminder_id), later.model_dump_json(), xx=True, keepttl=True)
        pipe.zadd(self.keys("reminders", "pending"), {reminder_id: later.due})
        pipe.execute()
        self._schedule(later)
        return later, True

    def done(self, reminder_id: str) -> tuple[Reminder | None, bool]:
        reminder = self.get(reminder_id)
        if reminder is None or reminder.status == "done":
            return reminder, False
        closed = reminder.model_copy(update={"status": "done"})
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self._key(reminder_id), closed.model_dump_json(), xx=True, keepttl=True)
        pipe.zrem(self.keys("reminders", "pending"), reminder_id)
        pipe.execute()
        return closed, True
