"""What the calendar capabilities take and give: validated inputs (times in a named IANA zone) and
the events read back, and how an event's time reads to the operator. The client that speaks CalDAV is
integrations/calendar.py."""
from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, ConfigDict, Field, field_validator, model_validator

from integrations.capability import Input, Output


def zone(name: str) -> ZoneInfo:
    """The IANA zone called `name`, or a ValueError that says what is expected."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Europe/Lisbon") from err


class _In(Input):
    model_config = ConfigDict(str_strip_whitespace=True)

    @field_validator("timezone", check_fields=False)
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        # "" (a template slot left empty) means the operator's zone, as None does
        if value:
            zone(value)
        return value or None


class AgendaRequest(_In):
    day: dt.date
    timezone: str | None = None


class CalendarEvent(Output):
    uid: str
    summary: str
    start: dt.datetime
    end: dt.datetime
    all_day: bool = False
    location: str = ""
    description: str = ""
    attendees: list[str] = Field(default_factory=list)


    def words(self) -> set[str]:
        """The words a search matches: summary, description, location and attendees' addresses."""
        return set(WORD.findall(" ".join([self.summary, self.description, self.location, *self.attendees]).lower()))

    def matches(self, query: str) -> bool:
        """Every word of `query` starts a word of the event (case-insensitive); an empty query matches all."""
        mine = self.words()
        return all(any(w.startswith(q) for w in mine) for q in query_words(query))

    def span(self) -> str:
        """"Tue 8 Dec 15:00–15:30", in the zone the event was read in."""
        return span(self.start, self.end, self.all_day)


WORD = re.compile(r"[^\W_]+")


def query_words(query: str) -> list[str]:
    return WORD.findall(query.lower())


def day_text(day: dt.date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def span(start: dt.datetime, end: dt.datetime, all_day: bool = False) -> str:
    """A time range as the operator reads it: "Tue 8 Dec 15:00–15:30", "Fri 11 Dec (all day)"."""
    if all_day:
        last = (end - dt.timedelta(days=1)).date() if end > start else start.date()
        return f"{day_text(start.date())} (all day)" if last <= start.date() else f"{day_text(start.date())} – {day_text(last)} (all day)"
    if end.date() == start.date() or end == dt.datetime.combine(start.date() + dt.timedelta(days=1), dt.time(0), start.tzinfo):
        return f"{day_text(start.date())} {start:%H:%M}–{end:%H:%M}"
    return f"{day_text(start.date())} {start:%H:%M} – {day_text(end.date())} {end:%H:%M}"


class Agenda(Output):
    day: dt.date
    timezone: str
    events: list[CalendarEvent]


class FindEvents(_In):
    # words that must all appear in the summary, description, location or attendees; empty: every event
    query: str = Field(default="", max_length=300)
    # the window, naive meaning the zone below; from now for 30 days when unset
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    timezone: str | None = None
    # one event by its UID, wherever it is (the window and query are then ignored)
    uid: str | None = Field(default=None, max_length=300)
    limit: int = Field(default=50, ge=1, le=500)

    @model_validator(mode="after")
    def _window(self) -> "FindEvents":
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("the window must end after it starts")
        return self


class FoundEvents(Output):
    query: str
    start: dt.datetime
    end: dt.datetime
    timezone: str
    events: list[CalendarEvent]


class CreateEvent(_In):
    # "title" is accepted too: planners and playbooks name it either way
    summary: str = Field(min_length=1, max_length=300, validation_alias=AliasChoices("summary", "title"))
    start: dt.datetime
    end: dt.datetime | None = None
    duration_min: int = Field(default=30, ge=1, le=24 * 60 * 14)
    timezone: str | None = None
    location: str = Field(default="", max_length=300)
    description: str = Field(default="", max_length=4_000)
    attendees: list[str] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _ends_after_start(self) -> "CreateEvent":
        if self.end is not None and (self.end.tzinfo is None) != (self.start.tzinfo is None):
            raise ValueError("give start and end both with or both without a UTC offset")
        if self.end is not None and self.end <= self.start:
            raise ValueError("the event must end after it starts")
        return self


class EventCreated(Output):
    event: CalendarEvent


class MoveEvent(_In):
    uid: str = Field(min_length=1, max_length=300)
    start: dt.datetime
    # when unset the event keeps its length
    end: dt.datetime | None = None
    timezone: str | None = None


class EventMoved(Output):
    event: CalendarEvent
    # where it was: the compensation (calendar.move back) needs these
    previous_start: dt.datetime
    previous_end: dt.datetime


class CancelEvent(_In):
    uid: str = Field(min_length=1, max_length=300)


class EventCancelled(Output):
    uid: str
    # False when there was no such event (already cancelled): nothing changed
    cancelled: bool
    summary: str = ""
