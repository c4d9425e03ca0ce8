"""When a calendar request means, in the operator's zone: the window an agenda question asks about ("Thursday
afternoon", "next week", "at 3pm tomorrow"), and the new time a move asks for ("to 4pm" keeps the day, "to Thursday"
keeps the clock time, "an hour later" shifts both)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time as clock, timedelta
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from agents import answers
from agents.intents.slots import DAY_WORDS, When, find_when
from integrations.calendar_models import day_text

# parts of a day, [start, end) hours; the afternoon runs to the end of the working day when that is later
PARTS = {"morning": (8, 12), "afternoon": (12, 17), "evening": (17, 21), "tonight": (17, 21)}
_PART = re.compile(r"\b(morning|afternoon|evening|tonight)\b", re.I)
_NEXT_WEEK = re.compile(r"\bnext week\b", re.I)
_THIS_WEEK = re.compile(r"\b(?:this|my|the|whole) week\b|\bweek ahead\b|\brest of the week\b", re.I)
_WEEKEND = re.compile(r"\bweek-?end\b", re.I)
_TYPOS = {"tmrw": "tomorrow", "tmr": "tomorrow", "tomorow": "tomorrow", "tommorow": "tomorrow", "tommorrow": "tomorrow",
          "2moro": "tomorrow", "tdy": "today", "2day": "today"}
_SHIFT = re.compile(r"\b(?:by\s+)?(an?|one|two|three|half an|\d+(?:\.\d+)?)\s*(minutes?|mins?|hours?|hrs?|h|days?|weeks?)\b"
                    r"(?:\s+(later|earlier|sooner|back|forward))?", re.I)
_EARLIER = re.compile(r"\b(?:earlier|sooner|forward)\b", re.I)
_AMOUNTS = {"a": 1.0, "an": 1.0, "one": 1.0, "two": 2.0, "three": 3.0, "half an": 0.5}
_UNIT_MIN = {"m": 1, "h": 60, "d": 1440, "w": 10080}
# "the 12th" alone is a day of this month or the next (dateparser reads the number as a month)
_ORDINAL = re.compile(r"\b(?:on\s+)?(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)\b(?!\s+(?:of\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))", re.I)
_MONTH_NAME = re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b", re.I)
_TO = re.compile(r"\s(?:to|for|until|till|til|by)\s", re.I)


def plain(text: str) -> str:
    """The request with possessives and common typos undone: "friday's" → "friday", "tmrw" → "tomorrow"."""
    text = re.sub(r"(\w)['’]s\b", r"\1", text)
    return re.sub(r"\b\w+\b", lambda m: _TYPOS.get(m.group(0).lower(), m.group(0)), text)


def when_in(text: str, timezone: str, now: datetime) -> When | None:
    """The first date or time in `text` (agents/intents/slots.py find_when), with "the 12th" read as a day of the month."""
    ordinal = _ORDINAL.search(text)
    if ordinal is not None and not _MONTH_NAME.search(text):
        today = now.astimezone(ZoneInfo(timezone)).date()
        for ahead in range(3):
            month, year = (today.month + ahead - 1) % 12 + 1, today.year + (today.month + ahead - 1) // 12
            try:
                day = date(year, month, int(ordinal.group(1)))
            except ValueError:
                continue
            if day >= today:
                return When(iso=day.isoformat(), phrase=ordinal.group(0), has_time=False)
    return find_when(text, timezone, now)


@dataclass(frozen=True)
class Window:
    """What an agenda question asks about: [start, end) and how to say it ("tomorrow (Tue 8 Dec)")."""

    start: datetime
    end: datetime
    label: str

    @property
    def one_day(self) -> bool:
        return self.end - self.start <= timedelta(days=1) and (self.end - timedelta(microseconds=1)).date() == self.start.date()


def relative(day: date, today: date) -> str:
    """"today", "tomorrow", "on Thursday" (within a week), else "on Thu 10 Dec"."""
    delta = (day - today).days
    if delta == 0:
        return "today"
    if delta == 1:
        return "tomorrow"
    return f"on {day:%A}" if 1 < delta < 7 else f"on {day_text(day)}"


def _at(day: date, hour: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock(0), zone) + timedelta(hours=hour)


def _weeks(text: str, today: date, zone: ZoneInfo) -> Window | None:
    if _NEXT_WEEK.search(text):
        monday = today + timedelta(days=7 - today.weekday())
        return Window(_at(monday, 0, zone), _at(monday + timedelta(days=7), 0, zone), f"next week ({day_text(monday)} – "
                      f"{day_text(monday + timedelta(days=6))})")
    if _WEEKEND.search(text):
        saturday = today if today.weekday() == 5 else today - timedelta(days=1) if today.weekday() == 6 \
            else today + timedelta(days=5 - today.weekday())
        return Window(_at(max(saturday, today), 0, zone), _at(saturday + timedelta(days=2), 0, zone), "this weekend")
    if _THIS_WEEK.search(text):
        return Window(_at(today, 0, zone), _at(today + timedelta(days=7 - today.weekday()), 0, zone), "this week")
    return None


def asked_window(slots: Mapping[str, Any], text: str, timezone: str, work_hours: tuple[int, int], minutes: int,
                 now: datetime) -> Window:
    """The window an agenda question means; the whole of today when it names no time."""
    zone = ZoneInfo(timezone)
    text = plain(text)
    today = now.astimezone(zone).date()
    weeks = _weeks(text, today, zone)
    if weeks is not None:
        return weeks
    # read again in the operator's zone (the recogniser reads in the deployment's); its slot where the text has none
    found = when_in(text, timezone, now)
    when = found.iso if found is not None else str(slots.get("when") or "")
    day = date.fromisoformat(when[:10]) if when else today
    part = _PART.search(text)
    if part:
        name = part.group(1).lower()
        first, last = PARTS[name]
        if name == "afternoon":
            last = max(last, min(work_hours[1], 21))
        said = f"{relative(day, today).removeprefix('on ')} {'evening' if name == 'tonight' else name}"
        said = {"today evening": "tonight", "today morning": "this morning", "today afternoon": "this afternoon"}.get(said, said)
        return Window(_at(day, first, zone), _at(day, last, zone), f"{said} ({day_text(day)}, {first:02d}:00–{last:02d}:00)")
    at = answers.clock_time(text) if "T" in when else None
    if at is not None:
        start = datetime.combine(day, clock.fromisoformat(at), zone)
        end = start + timedelta(minutes=minutes)
        return Window(start, end, f"{relative(day, today)} {start:%H:%M}–{end:%H:%M}" + ("" if relative(day, today).startswith("on")
                                                                                          else f" ({day_text(day)})"))
    label = relative(day, today)
    return Window(_at(day, 0, zone), _at(day + timedelta(days=1), 0, zone), label if label.startswith("on") else f"{label} ({day_text(day)})")


@dataclass(frozen=True)
class Change:
    """A new time for an event: a day and/or a clock time, or a shift; a length when one was said."""

    day: date | None = None
    at: clock | None = None
    shift: timedelta | None = None
    minutes: int | None = None

    def applied(self, start: datetime, end: datetime) -> tuple[datetime, datetime]:
        """The event's new start and end: what is not said is kept (its day, its clock time, its length)."""
        if self.shift is not None:
            new_start = start + self.shift
        else:
            new_start = datetime.combine(self.day or start.date(), self.at or start.timetz().replace(tzinfo=None), start.tzinfo)
        length = timedelta(minutes=self.minutes) if self.minutes else end - start
        return new_start, new_start + length


def shift_in(text: str) -> tuple[timedelta, str] | None:
    """"an hour later" → +1 h, "by 30 minutes" → +30 min, "a day earlier" → -1 day; with the phrase found."""
    match = _SHIFT.search(text)
    if match is None:
        return None
    amount = _AMOUNTS.get(match.group(1).lower()) or float(match.group(1))
    unit = _UNIT_MIN[match.group(2).lower()[0]]
    sign = -1 if _EARLIER.search(text) else 1
    return timedelta(minutes=sign * amount * unit), match.group(0)


def change_in(text: str, timezone: str, now: datetime) -> Change | None:
    """The new time a phrase names ("4pm", "Thursday 10am", "next week", "an hour later"); None when it names none."""
    text = plain(text)
    shifted = shift_in(text)
    if shifted is not None:
        return Change(shift=shifted[0])
    at = answers.clock_time(text)
    when = when_in(text, timezone, now)
    day = date.fromisoformat(when.iso[:10]) if when is not None and DAY_WORDS.search(when.phrase) else None
    if at is None and when is not None and when.has_time and "T" in when.iso and not _PART.search(when.phrase):
        at = when.iso[11:16]
    if day is None and at is None:
        return None
    return Change(day=day, at=clock.fromisoformat(at) if at else None)


def split_move(text: str, timezone: str, now: datetime) -> tuple[str, Change | None]:
    """A move request split into the meeting it means and the new time: "move my call with Ana to 4pm" →
    ("move my call with Ana", 16:00)."""
    for match in reversed(list(_TO.finditer(text))):
        change = change_in(text[match.end():], timezone, now)
        if change is not None and change.shift is not None and _EARLIER.search(text):
            change = Change(shift=-abs(change.shift))  # "bring the review forward by an hour"
        if change is not None:
            return text[: match.start()], change
    shifted = shift_in(plain(text))
    if shifted is not None:
        return plain(text).replace(shifted[1], " "), Change(shift=shifted[0])
    return text, None


def change_from(slots: Mapping[str, Any], said: Change | None, timezone: str, now: datetime) -> Change | None:
    """The new time: a correction's or an earlier answer's date/time slots first, then an answer to "when to?",
    then the request's own words."""
    minutes = int(str(slots["duration_min"])) if str(slots.get("duration_min") or "").isdigit() else None
    if slots.get("date") or slots.get("time"):
        day = date.fromisoformat(str(slots["date"])) if slots.get("date") else None
        at = clock.fromisoformat(str(slots["time"])) if slots.get("time") else None
        return Change(day=day, at=at, minutes=minutes)
    if slots.get("new_time"):
        said = change_in(str(slots["new_time"]), timezone, now)
    if said is None:
        return None
    return Change(day=said.day, at=said.at, shift=said.shift, minutes=minutes)
