"""Reminders: "remind me to call Ana Friday 10am" or "every Monday at 9" → a job at that moment → a
message in the same thread with Snooze / Done buttons.

Each firing is keyed by (reminder, occurrence time): a snooze schedules a new job and the old one, if
it still runs, finds its due time stale and stays quiet; a retried or duplicated job cannot post twice.
A recurring reminder moves on to its next occurrence in the same transaction that claims this one."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError

from kernel.messages import Frozen
from agents.recurrence import Repeat, find_repeat
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


HOW = "Try e.g. '/remind call Ana Friday 10am', '/remind in 20 minutes to stretch' or '/remind every Monday at 9 to send invoices'."


class Draft(Frozen):
    what: str
    due: datetime
    repeat: Repeat | None = None


def _what(text: str) -> str:
    text = " ".join(text.split())
    return re.sub(r"^(?:to|about|that)\s+|\s+(?:on|at|by|to)$", "", text, flags=re.I).strip(" ,.")


def parse(text: str, tz: str, now: datetime) -> Draft:
    """Split a request into what to be reminded of and when, in the operator's time zone."""
    from dateparser.search import search_dates

    zone = ZoneInfo(tz)
    local_now = now.astimezone(zone)
    cleaned = LEADS.sub("", text.strip())
    recurring = find_repeat(cleaned, tz, now)
    if recurring is not None:
        repeat, rest = recurring
        what = _what(LEADS.sub("", rest))
        if not what:
            raise ReminderError(f"What should I remind you of {repeat.label()}? {HOW}")
        return Draft(what=what, due=repeat.next_after(now), repeat=repeat)
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
    what = _what(cleaned.replace(phrase, " ", 1))
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
    due: float  # unix seconds: the next firing (for a recurring reminder, its next occurrence)
    channel: str
    thread_id: str
    reply_to: dict[str, str] = {}
    status: str = "pending"  # pending | done | cancelled
    created_by: str = ""
    trace_id: str = ""
    snoozes: int = 0
    # the number the operator sees in /reminders and cancels by
    number: int = 0
    repeat: Repeat | None = None

    def local_due(self, tz: str) -> datetime:
        return datetime.fromtimestamp(self.due, timezone.utc).astimezone(ZoneInfo(tz))

    def when(self, tz: str) -> str:
        """When it fires, for people: "Mon 10 Mar 09:00 WET", and the rule for a recurring one."""
        due = self.local_due(self.repeat.tz if self.repeat else tz)
        at = f"{due:%a %d %b %H:%M} {due.tzname()}"
        return f"{self.repeat.label()} (next {at})" if self.repeat else at


class ReminderBook(WorkspaceStore):
    """Reminders of one workspace, each with a job scheduled for its due time."""

    def __init__(self, redis: Redis, workspace: str, scheduler: JobScheduler, timezone: str = "UTC") -> None:
        super().__init__(redis, workspace)
        self.workspace = workspace
        self.scheduler = scheduler
        self.tz = timezone

    def _key(self, reminder_id: str) -> str:
        return self.keys("reminder", reminder_id)

    def add(self, draft: Draft, channel: str, thread_id: str, reply_to: dict[str, str], created_by: str, trace_id: str,
            reminder_id: str = "") -> Reminder:
        # the trace id makes a retried job find the reminder it already set
        reminder_id = reminder_id or (trace_id or uuid.uuid4().hex)[:16]
        existing = self.get(reminder_id)
        if existing is not None:
            return existing
        reminder = Reminder(id=reminder_id, what=draft.what, due=draft.due.timestamp(), channel=channel, thread_id=thread_id,
                            reply_to=reply_to, created_by=created_by, trace_id=trace_id, repeat=draft.repeat,
                            number=int(self.redis.incr(self.keys("reminder_seq"))))
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

    def pending(self, until: float | None = None, since: float | None = None) -> list[Reminder]:
        ids = self.redis.zrangebyscore(self.keys("reminders", "pending"), "-inf" if since is None else since,
                                       until if until is not None else "+inf")
        rows = [self.get(i.decode()) for i in ids]
        return [r for r in rows if r and r.status == "pending"]

    def _schedule(self, reminder: Reminder) -> None:
        at = datetime.fromtimestamp(reminder.due, timezone.utc)
        payload = {"workspace": self.workspace, "reminder_id": reminder.id, "due": reminder.due}
        # one job per firing: a one-off's by its snooze count, a recurring one's by its occurrence
        seq = f"at{int(reminder.due)}" if reminder.repeat else str(reminder.snoozes)
        self.scheduler.run_at(FIRE_JOB, payload, job_id=f"reminder-{reminder.id}-{seq}", at=at)

    def claim_firing(self, reminder_id: str, due: float, now: datetime | None = None) -> Reminder | None:
        """The reminder to post for its firing at `due` (as it was then): None if it is done or cancelled,
        was snoozed since, or that firing was already posted.

        A recurring reminder moves on to its next occurrence in the transaction that claims this one, and
        the next occurrence's job is scheduled before it. A firing claimed but not marked posted (the
        claimer died) is handed out again; the outbox's reply id keeps its message to one."""
        moment = now or datetime.now(timezone.utc)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    return self._claim(pipe, reminder_id, due, moment)
                except WatchError:
                    continue  # another worker claimed or changed it meanwhile: look again

    def _claim(self, pipe: Pipeline, reminder_id: str, due: float, now: datetime) -> Reminder | None:
        key, fired = self._key(reminder_id), self.keys("reminder", reminder_id, "fired", repr(due))
        pipe.watch(key, fired)
        raw, state = pipe.get(key), pipe.get(fired)
        reminder = Reminder.model_validate_json(raw) if raw else None
        if reminder is None or reminder.status != "pending" or state == b"posted":
            return None
        as_due = reminder.model_copy(update={"due": due})
        if state == b"claimed":
            if reminder.repeat:
                self._schedule(reminder)
            return as_due
        if not self._due_now(reminder, due):
            return None
        later = None
        if reminder.repeat:
            after = max(datetime.fromtimestamp(due, timezone.utc), now)
            later = reminder.model_copy(update={"due": reminder.repeat.next_after(after).timestamp()})
            self._schedule(later)
        pipe.multi()
        pipe.set(fired, "claimed", ex=TTL_S)
        if later is not None:
            pipe.set(key, later.model_dump_json(), xx=True, ex=TTL_S)  # a recurring reminder lives while it repeats
            pipe.zadd(self.keys("reminders", "pending"), {reminder_id: later.due})
        pipe.execute()
        return as_due

    @staticmethod
    def _due_now(reminder: Reminder, due: float) -> bool:
        if abs(reminder.due - due) <= 1e-3:
            return True
        # a later occurrence whose predecessor's job was lost still fires, and the series goes on from it
        return bool(reminder.repeat and due > reminder.due
                    and reminder.repeat.is_occurrence(datetime.fromtimestamp(due, timezone.utc)))

    def posted(self, reminder_id: str, due: float) -> None:
        """The firing at `due` is in the outbox: it is never handed out again."""
        self.redis.set(self.keys("reminder", reminder_id, "fired", repr(due)), "posted", ex=TTL_S)

    def snooze(self, reminder_id: str, minutes: int, now: datetime, seq: int) -> tuple[Reminder | None, bool]:
        """(reminder, whether this click snoozed it). One snooze per fired card: a second click on
        the same card changes nothing. A recurring reminder keeps its rule; the snooze is a one-off copy."""
        reminder = self.get(reminder_id)
        if reminder is None or reminder.status != "pending" or (reminder.repeat is None and reminder.snoozes != seq):
            return reminder, False
        if not self.redis.set(self.keys("reminder", reminder_id, "snoozed", seq), "1", nx=True, ex=TTL_S):
            return self.get(reminder_id), False
        due = now + timedelta(minutes=minutes)
        if reminder.repeat is not None:
            copy = Draft(what=reminder.what, due=due)
            return self.add(copy, reminder.channel, reminder.thread_id, reminder.reply_to, reminder.created_by,
                            reminder.trace_id, reminder_id=f"{reminder_id}s{seq}"), True
        later = reminder.model_copy(update={"due": due.timestamp(), "snoozes": seq + 1})
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self._key(reminder_id), later.model_dump_json(), xx=True, keepttl=True)
        pipe.zadd(self.keys("reminders", "pending"), {reminder_id: later.due})
        pipe.execute()
        self._schedule(later)
        return later, True

    def done(self, reminder_id: str, status: str = "done") -> tuple[Reminder | None, bool]:
        """Close a reminder (status "done", or "cancelled"): no firing of it posts any more, a recurring
        one's future occurrences included. Returns it and whether this call closed it."""
        reminder = self.get(reminder_id)
        if reminder is None or reminder.status != "pending":
            return reminder, False
        closed = reminder.model_copy(update={"status": status})
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self._key(reminder_id), closed.model_dump_json(), xx=True, keepttl=True)
        pipe.zrem(self.keys("reminders", "pending"), reminder_id)
        pipe.execute()
        return closed, True

    def cancel(self, reminder_id: str) -> tuple[Reminder | None, bool]:
        return self.done(reminder_id, status="cancelled")

    def acknowledge(self, reminder_id: str, seq: int) -> bool:
        """Done on one occurrence's card of a recurring reminder: that card is answered, the series goes on."""
        return bool(self.redis.set(self.keys("reminder", reminder_id, "acked", seq), "1", nx=True, ex=TTL_S))
