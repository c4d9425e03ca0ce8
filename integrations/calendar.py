"""The operator's calendar over CalDAV (the `caldav` library): agenda for a day, search, create, move, cancel.

Times are aware datetimes. A naive time from the planner means the operator's time zone (or the
one the step names); everything is stored with a TZID and a VTIMEZONE, and read back in the zone
asked for, so 09:00 in Lisbon stays 09:00 in Lisbon across daylight-saving changes.

A created event's UID is derived from the effect's idempotency key: the event lives at <UID>.ics,
so a second PUT of the same step (a worker died before the ledger recorded it) rewrites the same
event instead of adding a twin."""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import caldav
import icalendar
from caldav.lib import error as dav_error
from integrations.calendar_models import (
    Agenda, AgendaRequest, CalendarEvent, CancelEvent, CreateEvent, EventCancelled, EventCreated, EventMoved,
    FindEvents, FoundEvents, MoveEvent, zone,
)
from integrations.capability import Health, PermanentError, TransientError
from kernel.settings_models import CalDavSettings


HEALTH_TIMEOUT_S = 5.0
# how far ahead a search looks when it is given no end
SEARCH_DAYS = 30


def uid_for(key: str) -> str:
    """The same idempotency key always gives the same event UID."""
    return f"{hashlib.sha256(key.encode()).hexdigest()[:32]}@deputy"


def _localize(value: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Naive means wall-clock time in `zone`; aware is converted to `zone` (so the stored TZID is a real zone)."""
    return value.replace(tzinfo=zone) if value.tzinfo is None else value.astimezone(zone)


def _classify(err: Exception, where: str) -> Exception:
    if isinstance(err, dav_error.AuthorizationError):
        return PermanentError(f"{where}: the server refused our login; check CALDAV_USERNAME and CALDAV_PASSWORD")
    if isinstance(err, dav_error.RateLimitError):
        return TransientError(f"{where}: rate limited ({err.reason})")
    if isinstance(err, dav_error.DAVError):
        status = err.status or 0
        if status >= 500 or status == 0 and "timed out" in str(err.reason).lower():
            return TransientError(f"{where}: {err}")
        return PermanentError(f"{where}: {err}")
    name = type(err).__name__
    if isinstance(err, (OSError, TimeoutError)) or "Timeout" in name or "ConnectionError" in name:
        return TransientError(f"{where}: {name}: {err}")
    return err


class CalendarClient:
    """One calendar on one CalDAV server; each call opens its own short session."""

    def __init__(self, config: CalDavSettings, timezone: str = "UTC") -> None:
        self.config = config
        # times without a zone are in this one (the operator's)
        self.timezone = timezone
        self.where = f"CalDAV {config.url}"
        self._calendar_url: str | None = None

    def _calendar(self, client: caldav.DAVClient) -> Any:
        calendars = client.principal().calendars()
        if self.config.calendar:
            for candidate in calendars:
                if candidate.get_display_name() == self.config.calendar:
                    return candidate
            names = ", ".join(str(c.get_display_name()) for c in calendars) or "none"
            raise PermanentError(f"{self.where}: no calendar named {self.config.calendar!r} (found: {names}); check CALDAV_CALENDAR")
        if not calendars:
            raise PermanentError(f"{self.where}: this account has no calendar yet; create one, or set CALDAV_CALENDAR")
        return calendars[0]

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        password = self.config.password.get_secret_value() if self.config.password else None
        try:
            with caldav.DAVClient(url=self.config.url, username=self.config.username, password=password,
                                  timeout=int(max(1, self.config.timeout_s))) as client:
                # discovery (principal, calendar list) is two round trips: done once, then the URL is reused
                if self._calendar_url is None:
                    self._calendar_url = str(self._calendar(client).url)
                yield client.calendar(url=self._calendar_url)
        except PermanentError:
            raise
        except Exception as err:
            # the calendar may have moved or gone: discover it again next time
            self._calendar_url = None
            raise _classify(err, self.where) from err

    def zone(self, name: str | None) -> ZoneInfo:
        return zone(name or self.timezone)

    def agenda(self, request: AgendaRequest) -> Agenda:
        zone = self.zone(request.timezone)
        start = dt.datetime.combine(request.day, dt.time(0), zone)
        end = dt.datetime.combine(request.day + dt.timedelta(days=1), dt.time(0), zone)
        with self._session() as calendar:
            found = calendar.search(start=start, end=end, event=True, expand=True)
            events = [_event(obj.icalendar_component, zone) for obj in found]
        events = [e for e in events if e.end > start and e.start < end]
        return Agenda(day=request.day, timezone=str(zone.key), events=sorted(events, key=lambda e: (e.start, e.summary)))

    def search(self, request: FindEvents) -> FoundEvents:
        """Events in a window (from now, 30 days, when unset) matching every word of the query, soonest first."""
        zone = self.zone(request.timezone)
        start = _localize(request.start, zone) if request.start else dt.datetime.now(zone).replace(microsecond=0)
        end = _localize(request.end, zone) if request.end else start + dt.timedelta(days=SEARCH_DAYS)
        with self._session() as calendar:
            if request.uid:
                events = [_event(obj.icalendar_component, zone) for obj in self._by_uid(calendar, request.uid)]
            else:
                found = calendar.search(start=start, end=end, event=True, expand=True)
                events = [e for e in (_event(obj.icalendar_component, zone) for obj in found)
                          if e.end > start and e.start < end and e.matches(request.query)]
        events.sort(key=lambda e: (e.start, e.summary))
        return FoundEvents(query=request.query, start=start, end=end, timezone=str(zone.key), events=events[: request.limit])

    def create(self, request: CreateEvent, key: str) -> EventCreated:
        zone = self.zone(request.timezone)
        start = _localize(request.start, zone)
        end = _localize(request.end, zone) if request.end else start + dt.timedelta(minutes=request.duration_min)
        uid = uid_for(key)
        cal = icalendar.Calendar()
        cal.add("prodid", "-//Deputy//Calendar//EN")
        cal.add("version", "2.0")
        event = icalendar.Event()
        event.add("uid", uid)
        event.add("dtstamp", dt.datetime.now(dt.timezone.utc))
        event.add("dtstart", start)
        event.add("dtend", end)
        event.add("summary", request.summary)
        event.add("sequence", 0)
        if request.location:
            event.add("location", request.location)
        if request.description:
            event.add("description", request.description)
        for attendee in request.attendees:
            event.add("attendee", f"mailto:{attendee}", parameters={"ROLE": "REQ-PARTICIPANT", "RSVP": "TRUE"})
        cal.add_component(event)
        cal.add_missing_timezones()
        with self._session() as calendar:
            calendar.add_event(cal.to_ical().decode(), increase_seqno=False)
        return EventCreated(event=_event(event, zone))

    def move(self, request: MoveEvent) -> EventMoved:
        zone = self.zone(request.timezone)
        with self._session() as calendar:
            obj = self._find(calendar, request.uid)
            with obj.edit_icalendar_instance() as cal:
                component = next(c for c in cal.walk("VEVENT"))
                before = _event(component, zone)
                start = _localize(request.start, zone)
                end = _localize(request.end, zone) if request.end else start + (before.end - before.start)
                if end <= start:
                    raise PermanentError("the event must end after it starts")
                for name, value in (("DTSTART", start), ("DTEND", end)):
                    component.pop(name, None)
                    component.add(name, value)
                component.pop("DURATION", None)
                cal.add_missing_timezones()
                after = _event(component, zone)
            obj.save()
        return EventMoved(event=after, previous_start=before.start, previous_end=before.end)

    def cancel(self, request: CancelEvent) -> EventCancelled:
        with self._session() as calendar:
            try:
                obj = self._find(calendar, request.uid)
            except PermanentError:
                return EventCancelled(uid=request.uid, cancelled=False)
            summary = str(obj.icalendar_component.get("summary", ""))
            obj.delete()
        return EventCancelled(uid=request.uid, cancelled=True, summary=summary)

    def _find(self, calendar: Any, uid: str) -> Any:
        try:
            return calendar.get_event_by_uid(uid)
        except dav_error.NotFoundError as err:
            raise PermanentError(f"there is no event with UID {uid} (was it cancelled?)") from err

    def _by_uid(self, calendar: Any, uid: str) -> list[Any]:
        try:
            return [calendar.get_event_by_uid(uid)]
        except dav_error.NotFoundError:
            return []

    def health(self) -> Health:
        """Log in, find the calendar, read its name (with a short timeout)."""
        quick_config = self.config.model_copy(update={"timeout_s": min(self.config.timeout_s, HEALTH_TIMEOUT_S)})
        quick = CalendarClient(quick_config, self.timezone)
        try:
            with quick._session() as calendar:
                name = calendar.get_display_name()
        except Exception as err:
            return Health(ok=False, detail=str(err)[:300])
        return Health(ok=True, detail=f"{self.where}: calendar {name!r} reachable")


def _when(value: Any, zone: ZoneInfo) -> tuple[dt.datetime, bool]:
    if isinstance(value, dt.datetime):
        # floating times (no zone) are wall-clock times in the zone asked for
        return (value.replace(tzinfo=zone) if value.tzinfo is None else value.astimezone(zone)), False
    return dt.datetime.combine(value, dt.time(0), zone), True


def _event(component: Any, zone: ZoneInfo) -> CalendarEvent:
    start, all_day = _when(component.decoded("dtstart"), zone)
    if "dtend" in component:
        end, _ = _when(component.decoded("dtend"), zone)
    elif "duration" in component:
        end = start + component.decoded("duration")
    else:
        end = start + (dt.timedelta(days=1) if all_day else dt.timedelta(0))
    attendees = component.get("attendee", [])
    if not isinstance(attendees, list):
        attendees = [attendees]
    return CalendarEvent(
        uid=str(component.get("uid", "")),
        summary=str(component.get("summary", "")),
        start=start,
        end=end,
        all_day=all_day,
        location=str(component.get("location", "")),
        description=str(component.get("description", "")),
        attendees=[str(a).removeprefix("mailto:").removeprefix("MAILTO:") for a in attendees],
    )
