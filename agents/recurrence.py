"""Recurring reminders: "every Monday at 9", "every weekday at 9", "on the 1st of each month" → a rule,
and the rule's next occurrence in the operator's time zone.

Occurrences are computed on the local wall clock (dateutil's rrule) and only then placed in the zone,
so "every day at 8" stays at 08:00 across daylight-saving changes."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

from dateutil import rrule

from kernel.messages import Frozen

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY = r"(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day)?s?"
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "last": 31}
_NTH = r"(\d{1,2})(?:st|nd|rd|th)?|(first|second|third|fourth|fifth|last)"
_MONTHLY = re.compile(
    rf"\b(?:on\s+)?the\s+(?:{_NTH})(?:\s+day)?\s+of\s+(?:each|every|the)\s+month\b"
    rf"|\b(?:every|each)\s+month\s+on\s+the\s+(?:{_NTH})\b|\bmonthly\s+on\s+the\s+(?:{_NTH})\b"
    r"|\b(?:every|each)\s+month\b|\bmonthly\b(?=\s+at\b|\s*$)", re.I)
_WEEKDAYS = re.compile(r"\b(?:every|each|on)\s+(?:working\s+day|work\s*day|week\s*day)s?\b|\bweekdays\b", re.I)
_WEEKLY = re.compile(rf"\b(?:(?:every|each)\s+(?:week\s+on\s+)?|weekly\s+on\s+|on\s+(?=\w+days\b))({_DAY}(?:\s*(?:,|and|&)\s*{_DAY})*)\b"
                     r"|\b(?:every|each)\s+week\b|\bweekly\b(?=\s+at\b|\s*$)", re.I)
# "daily", "weekly" alone only where they end the request or precede its time: "the monthly report" is no rule
_DAILY = re.compile(r"\b(?:every|each)\s+(day|morning|evening|night)\b|\bdaily\b(?=\s+at\b|\s*$)", re.I)
_TIME = re.compile(r"\b(?:at\s+)?(\d{1,2})(?:[:.](\d\d))?\s*(am|pm)\b|\b(?:at\s+)?(\d{1,2})[:.](\d\d)\b|\bat\s+(\d{1,2})\b(?!\s*%)"
                   r"|\b(?:at\s+)?(noon|midday)\b", re.I)
# "every morning" without a time means the start of the working day; "every evening" the end of it
_PART_OF_DAY = {"morning": 9, "evening": 18, "night": 21}
DEFAULT_HOUR = 9


class Repeat(Frozen):
    """A recurrence on the local wall clock of `tz`."""

    freq: Literal["daily", "weekly", "monthly"]
    hour: int
    minute: int = 0
    weekdays: tuple[int, ...] = ()  # 0 = Monday, for weekly rules
    monthday: int = 0  # 1..31; a day a month lacks means that month's last day
    tz: str = "UTC"

    def label(self) -> str:
        at = f"at {self.hour:02d}:{self.minute:02d}"
        if self.freq == "daily":
            return f"every day {at}"
        if self.freq == "weekly":
            if self.weekdays == (0, 1, 2, 3, 4):
                return f"every weekday {at}"
            return "every " + " and ".join(DAYS[d].capitalize() for d in self.weekdays) + f" {at}"
        day = "last day" if self.monthday == 31 else _ordinal(self.monthday)
        return f"on the {day} of each month {at}"

    def _rule(self, start: datetime) -> rrule.rrule:
        freq = {"daily": rrule.DAILY, "weekly": rrule.WEEKLY, "monthly": rrule.MONTHLY}[self.freq]
        extra: dict[str, object] = {}
        if self.freq == "weekly":
            extra["byweekday"] = self.weekdays
        if self.freq == "monthly":
            # the 31st of a 30-day month is its 30th: the last of the candidate days that month has
            extra["bymonthday"] = tuple(range(28, self.monthday + 1)) if self.monthday > 28 else self.monthday
            if self.monthday > 28:
                extra["bysetpos"] = -1
        return rrule.rrule(freq, dtstart=start, byhour=self.hour, byminute=self.minute, bysecond=0, **extra)

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment` (an aware datetime), aware in the rule's zone."""
        zone = ZoneInfo(self.tz)
        local = moment.astimezone(zone).replace(tzinfo=None)
        start = local.replace(second=0, microsecond=0) - timedelta(days=1)
        after = self._rule(start).after(local, inc=False)
        while after is not None:
            # a wall-clock time skipped by a DST change still counts, once, at the moment it maps to
            placed = after.replace(tzinfo=zone)
            if placed.timestamp() > moment.timestamp():
                return placed.astimezone(timezone.utc).astimezone(zone)
            after = self._rule(start).after(after, inc=False)
        raise ValueError(f"{self.label()} has no occurrence after {moment}")

    def is_occurrence(self, moment: datetime) -> bool:
        return self.next_after(moment - timedelta(seconds=1)).timestamp() == moment.timestamp()


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _nth(match: re.Match[str]) -> int | None:
    for digits, word in zip(match.groups()[0::2], match.groups()[1::2]):
        if digits:
            return int(digits)
        if word:
            return _ORDINALS[word.lower()]
    return None


def _weekdays(phrase: str) -> tuple[int, ...]:
    words = [w.rstrip("s") if w.endswith("days") else w for w in re.findall(r"[a-z]+", phrase.lower())]
    return tuple(sorted({i for i, day in enumerate(DAYS) for w in words if len(w) >= 3 and day.startswith(w.rstrip("s"))}))


def _time(text: str) -> tuple[tuple[int, int] | None, str]:
    """The time of day said in `text` (hour, minute), and the text without it."""
    m = _TIME.search(text)
    if not m:
        return None, text
    hour_s, minute_s, ampm, hour24, minute24, bare, noon = m.groups()
    if noon:
        hour, minute = 12, 0
    elif hour24:
        hour, minute = int(hour24), int(minute24)
    else:
        hour, minute = int(hour_s or bare), int(minute_s or 0)
        if ampm and ampm.lower() == "pm" and hour < 12:
            hour += 12
        if ampm and ampm.lower() == "am" and hour == 12:
            hour = 0
    if hour > 23 or minute > 59:
        return None, text
    return (hour, minute), text[: m.start()] + " " + text[m.end():]


def find_repeat(text: str, tz: str, now: datetime) -> tuple[Repeat, str] | None:
    """The recurrence in a request and the request without it (and without its time of day), or None."""
    local = now.astimezone(ZoneInfo(tz))
    for pattern, build in ((_MONTHLY, _monthly), (_WEEKDAYS, _on_weekdays), (_WEEKLY, _weekly), (_DAILY, _daily)):
        m = pattern.search(text)
        if m:
            rest = text[: m.start()] + " " + text[m.end():]
            clock, rest = _time(rest)
            freq, extra, hour = build(m, local)
            hour_minute = clock or (hour, 0)
            repeat = Repeat(freq=freq, hour=hour_minute[0], minute=hour_minute[1], tz=tz, **extra)
            return repeat, " ".join(rest.split())
    return None


def _monthly(m: re.Match[str], local: datetime) -> tuple[str, dict, int]:
    day = _nth(m) or local.day
    return "monthly", {"monthday": min(max(day, 1), 31)}, DEFAULT_HOUR


def _on_weekdays(m: re.Match[str], local: datetime) -> tuple[str, dict, int]:
    return "weekly", {"weekdays": (0, 1, 2, 3, 4)}, DEFAULT_HOUR


def _weekly(m: re.Match[str], local: datetime) -> tuple[str, dict, int]:
    days = _weekdays(m.group(1) or "") or (local.weekday(),)
    return "weekly", {"weekdays": days}, DEFAULT_HOUR


def _daily(m: re.Match[str], local: datetime) -> tuple[str, dict, int]:
    return "daily", {}, _PART_OF_DAY.get((m.group(1) or "").lower(), DEFAULT_HOUR)
