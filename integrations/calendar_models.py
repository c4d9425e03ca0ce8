"""What the calendar capabilities take and give: validated inputs (times in a named IANA zone) and
the events read back. The client that speaks CalDAV is integrations/calendar.py."""
from __future__ import annotations

import datetime as dt
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
        if value is not None:
            zone(value)
        return value


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


class Agenda(Output):
    day: dt.date
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
