"""calendar.* against a real Radicale CalDAV server on loopback (htpasswd auth, temp storage)."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import caldav
import pytest
from pydantic import SecretStr, ValidationError
from redis import Redis

from integrations.breaker import CircuitBreaker
from integrations.calendar import (
    AgendaRequest,
    CalendarClient,
    CancelEvent,
    CreateEvent,
    FindEvents,
    MoveEvent,
    uid_for,
)
from integrations.calendar_capabilities import calendar_capabilities
from integrations.capability import EffectContext, PermanentError, TransientError
from integrations.invoke import call
from integrations.ledger import EffectLedger
from harness.fakes.radicale_server import RadicaleServer, free_port
from kernel.settings import Settings
from kernel.settings_models import CalDavSettings

NY = ZoneInfo("America/New_York")
LISBON = ZoneInfo("Europe/Lisbon")


# the operator's time zone in these tests
ZONE = "America/New_York"


def config(server: RadicaleServer, **extra: object) -> CalDavSettings:
    base: dict[str, object] = dict(url=server.url, username=server.username, password=server.password, calendar="Work", timeout_s=5)
    return CalDavSettings(**(base | extra))


def day(client: CalendarClient, date: dt.date, zone: str | None = None) -> list[tuple[str, dt.datetime, dt.datetime]]:
    return [(e.summary, e.start, e.end) for e in client.agenda(AgendaRequest(day=date, timezone=zone)).events]


def test_create_then_agenda_in_the_operators_zone_across_a_dst_change(radicale: RadicaleServer) -> None:
    client = CalendarClient(config(radicale), ZONE)
    # 2025-03-09 is the day New York springs forward (02:00 → 03:00)
    created = client.create(CreateEvent(summary="Call with Bob", start=dt.datetime(2025, 3, 9, 9, 0), duration_min=45,
                                        attendees=["bob@client.example"]), key="run-1:0")

    assert created.event.uid == uid_for("run-1:0")
    assert created.event.start == dt.datetime(2025, 3, 9, 9, 0, tzinfo=NY)
    assert created.event.start.utcoffset() == dt.timedelta(hours=-4)
    [event] = client.agenda(AgendaRequest(day=dt.date(2025, 3, 9))).events
    assert (event.summary, event.start, event.end) == ("Call with Bob", dt.datetime(2025, 3, 9, 9, 0, tzinfo=NY),
                                                       dt.datetime(2025, 3, 9, 9, 45, tzinfo=NY))
    assert event.attendees == ["bob@client.example"]
    # the same moment, read by someone in Lisbon (still UTC+0 in early March)
    [(_, start, _)] = day(client, dt.date(2025, 3, 9), "Europe/Lisbon")
    assert (start.hour, start.minute, start.utcoffset()) == (13, 0, dt.timedelta(0))


def test_a_late_evening_event_belongs_to_its_local_day(radicale: RadicaleServer) -> None:
    client = CalendarClient(config(radicale), ZONE)
    client.create(CreateEvent(summary="Late review", start=dt.datetime(2025, 11, 10, 23, 30), duration_min=20), key="k")

    assert [s for s, _, _ in day(client, dt.date(2025, 11, 10))] == ["Late review"]
    assert day(client, dt.date(2025, 11, 11)) == []
    # in UTC it is already the next day
    assert [s for s, _, _ in day(client, dt.date(2025, 11, 11), "UTC")] == ["Late review"]
    assert day(client, dt.date(2025, 11, 10), "UTC") == []


def test_an_aware_time_is_kept_as_the_same_instant(radicale: RadicaleServer) -> None:
    client = CalendarClient(config(radicale), "Europe/Lisbon")
    client.create(CreateEvent(summary="Berlin call", start=dt.datetime(2025, 6, 2, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))), key="k")

    [(_, start, end)] = day(client, dt.date(2025, 6, 2))
    assert start == dt.datetime(2025, 6, 2, 8, 0, tzinfo=LISBON) and (end - start) == dt.timedelta(minutes=30)


def test_the_same_key_twice_is_one_event(radicale: RadicaleServer, redis: Redis) -> None:
    create = {c.name: c for c in calendar_capabilities(config(radicale), ZONE)}["calendar.create"]
    ctx = EffectContext(idempotency_key="run-2:1", workspace="w", trace_id="t", run_id="run-2")
    args = {"summary": "Kick-off", "start": "2025-04-01T10:00:00", "end": "2025-04-01T11:00:00"}
    ledger, breaker = EffectLedger(redis, "w"), CircuitBreaker(redis, create.name, "w")

    first = call(create, args, ctx, ledger, breaker)
    second = call(create, args, ctx, ledger, breaker)
    # and even past the ledger (a worker died before recording): the UID makes the server keep one event
    CalendarClient(config(radicale), ZONE).create(CreateEvent.model_validate(args), key="run-2:1")

    assert second.replayed and second.output == first.output
    assert [s for s, _, _ in day(CalendarClient(config(radicale), ZONE), dt.date(2025, 4, 1))] == ["Kick-off"]


def test_move_keeps_the_length_and_can_be_moved_back(radicale: RadicaleServer) -> None:
    client = CalendarClient(config(radicale), ZONE)
    uid = client.create(CreateEvent(summary="Design review", start=dt.datetime(2025, 5, 6, 14, 0), duration_min=90), key="k").event.uid

    moved = client.move(MoveEvent(uid=uid, start=dt.datetime(2025, 5, 7, 9, 30)))

    assert (moved.previous_start, moved.previous_end) == (dt.datetime(2025, 5, 6, 14, 0, tzinfo=NY), dt.datetime(2025, 5, 6, 15, 30, tzinfo=NY))
    assert day(client, dt.date(2025, 5, 6)) == []
    assert day(client, dt.date(2025, 5, 7)) == [("Design review", dt.datetime(2025, 5, 7, 9, 30, tzinfo=NY), dt.datetime(2025, 5, 7, 11, 0, tzinfo=NY))]
    # the compensation: move it back with what the output remembered
    client.move(MoveEvent(uid=uid, start=moved.previous_start, end=moved.previous_end))
    assert [s for s, _, _ in day(client, dt.date(2025, 5, 6))] == ["Design review"]


def test_cancel_removes_the_event_and_a_second_cancel_changes_nothing(radicale: RadicaleServer) -> None:
    client = CalendarClient(config(radicale), ZONE)
    uid = client.create(CreateEvent(summary="Dentist", start=dt.datetime(2025, 7, 1, 8, 0)), key="k").event.uid
    client.create(CreateEvent(summary="Standup", start=dt.datetime(2025, 7, 1, 9, 0)), key="other")

    first = client.cancel(CancelEvent(uid=uid))
    again = client.cancel(CancelEvent(uid=uid))

    assert (first.cancelled, first.summary) == (True, "Dentist") and not again.cancelled
    assert [s for s, _, _ in day(client, dt.date(2025, 7, 1))] == ["Standup"]


def test_moving_an_unknown_event_is_permanent(radicale: RadicaleServer) -> None:
    with pytest.raises(PermanentError, match="no event with UID"):
        CalendarClient(config(radicale), ZONE).move(MoveEvent(uid="nope@deputy", start=dt.datetime(2025, 1, 1, 9)))


def test_events_written_by_other_clients_all_day_and_recurring(radicale: RadicaleServer) -> None:
    with caldav.DAVClient(url=radicale.url, username=radicale.username, password=radicale.password) as dav:
        work = dav.principal().calendars()[0]
        work.add_event("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\nBEGIN:VEVENT\r\nUID:holiday@x\r\n"
                       "DTSTAMP:20250101T000000Z\r\nDTSTART;VALUE=DATE:20250704\r\nDTEND;VALUE=DATE:20250705\r\n"
                       "SUMMARY:Holiday\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
        work.add_event("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\nBEGIN:VEVENT\r\nUID:gym@x\r\n"
                       "DTSTAMP:20250101T000000Z\r\nDTSTART:20250630T110000Z\r\nDTEND:20250630T120000Z\r\n"
                       "RRULE:FREQ=DAILY;COUNT=10\r\nSUMMARY:Gym\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")

    events = CalendarClient(config(radicale), ZONE).agenda(AgendaRequest(day=dt.date(2025, 7, 4))).events

    assert [(e.summary, e.all_day) for e in events] == [("Holiday", True), ("Gym", False)]
    assert events[1].start == dt.datetime(2025, 7, 4, 7, 0, tzinfo=NY)


def test_wrong_password_and_missing_calendar_say_what_to_fix(radicale: RadicaleServer) -> None:
    with pytest.raises(PermanentError, match="CALDAV_PASSWORD"):
        CalendarClient(config(radicale, password=SecretStr("wrong")), ZONE).agenda(AgendaRequest(day=dt.date(2025, 1, 1)))
    with pytest.raises(PermanentError, match="CALDAV_CALENDAR"):
        CalendarClient(config(radicale, calendar="Personal"), ZONE).agenda(AgendaRequest(day=dt.date(2025, 1, 1)))


def test_nobody_listening_is_transient() -> None:
    cfg = CalDavSettings(url=f"http://127.0.0.1:{free_port()}/", username="u", password=SecretStr("p"), timeout_s=2)
    with pytest.raises(TransientError):
        CalendarClient(cfg).agenda(AgendaRequest(day=dt.date(2025, 1, 1)))


@pytest.mark.parametrize("bad", [
    {"summary": "x", "start": "2025-01-01T10:00:00", "end": "2025-01-01T09:00:00"},
    {"summary": "x", "start": "2025-01-01T10:00:00", "timezone": "Mars/Olympus_Mons"},
    {"summary": "", "start": "2025-01-01T10:00:00"},
])
def test_bad_event_input_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CreateEvent.model_validate(bad)


def test_health(radicale: RadicaleServer) -> None:
    assert CalendarClient(config(radicale), ZONE).health().ok
    assert not CalendarClient(config(radicale, password=SecretStr("wrong")), ZONE).health().ok
    down = CalDavSettings(url=f"http://127.0.0.1:{free_port()}/", username="u", password=SecretStr("p"), timeout_s=2)
    assert not CalendarClient(down).health().ok


def test_the_registry_offers_the_calendar_when_caldav_is_configured(radicale: RadicaleServer) -> None:
    from integrations.registry import build_capabilities, check_health

    caldav = CalDavSettings(url=radicale.url, username=radicale.username, password=SecretStr(radicale.password))
    caps = build_capabilities(Settings(caldav=caldav, timezone="Europe/Lisbon"), None)
    names = {n for n in caps if n.startswith("calendar.")}
    assert names == {"calendar.agenda", "calendar.find", "calendar.create", "calendar.move", "calendar.cancel"}
    assert caps["calendar.create"].compensation == "calendar.cancel" and not caps["calendar.cancel"].reversible
    assert all(h.ok for n, h in check_health(caps).items() if n in names)
    # a planner may say "title"; the zone comes from the operator's settings
    created = caps["calendar.create"].run(caps["calendar.create"].parse({"title": "Focus", "start": "2025-08-01T09:00:00"}),
                                          EffectContext(idempotency_key="r:0", workspace="w", trace_id="t", run_id="r"))
    assert created.event.summary == "Focus" and str(created.event.start.tzinfo) == "Europe/Lisbon"


def seeded(radicale: RadicaleServer) -> CalendarClient:
    client = CalendarClient(config(radicale), ZONE)
    client.create(CreateEvent(summary="Call with Ana", start=dt.datetime(2025, 5, 6, 15, 0), attendees=["ana@acme.io"]), key="a")
    client.create(CreateEvent(summary="Verdant sprint review", start=dt.datetime(2025, 5, 7, 10, 0), location="Room 4"), key="v")
    client.create(CreateEvent(summary="Lunch", start=dt.datetime(2025, 5, 8, 12, 30), description="with Bob from Verdant"), key="l")
    client.create(CreateEvent(summary="Call with Ana", start=dt.datetime(2025, 6, 20, 9, 0)), key="later")
    return client


def found(client: CalendarClient, query: str, **window: object) -> list[str]:
    start = window.pop("start", dt.datetime(2025, 5, 1))
    end = window.pop("end", dt.datetime(2025, 5, 31))
    return [f"{e.summary} {e.start:%d %H:%M}" for e in client.search(FindEvents(query=query, start=start, end=end, **window)).events]


def test_find_matches_every_word_in_title_description_location_or_attendees(radicale: RadicaleServer) -> None:
    client = seeded(radicale)

    assert found(client, "ana") == ["Call with Ana 06 15:00"]
    assert found(client, "CALL ana") == ["Call with Ana 06 15:00"]
    assert found(client, "acme") == ["Call with Ana 06 15:00"]  # the attendee's address
    assert found(client, "room 4") == ["Verdant sprint review 07 10:00"]  # the location
    assert found(client, "bob") == ["Lunch 08 12:30"]  # the description
    assert found(client, "verdant") == ["Verdant sprint review 07 10:00", "Lunch 08 12:30"]
    assert found(client, "verdant review") == ["Verdant sprint review 07 10:00"]
    assert found(client, "ana lunch") == []
    # whole words from their start: "an" is no "Lunch"
    assert found(client, "unch") == []
    assert found(client, "") == ["Call with Ana 06 15:00", "Verdant sprint review 07 10:00", "Lunch 08 12:30"]


def test_find_looks_in_its_window_in_the_operators_zone(radicale: RadicaleServer) -> None:
    client = seeded(radicale)

    assert found(client, "ana", start=dt.datetime(2025, 6, 1), end=dt.datetime(2025, 7, 1)) == ["Call with Ana 20 09:00"]
    assert found(client, "", start=dt.datetime(2025, 5, 7), end=dt.datetime(2025, 5, 8)) == ["Verdant sprint review 07 10:00"]
    # 15:00 in New York is 20:00 in Lisbon (and 14:00 in New York is 19:00 there): the window is read in the zone given
    lisbon = client.search(FindEvents(query="ana", start=dt.datetime(2025, 5, 6, 19, 30), end=dt.datetime(2025, 5, 6, 21),
                                      timezone="Europe/Lisbon")).events
    assert [(e.start.hour, str(e.start.tzinfo)) for e in lisbon] == [(20, "Europe/Lisbon")]


def test_find_without_a_window_looks_from_now_for_30_days(radicale: RadicaleServer) -> None:
    client = CalendarClient(config(radicale), ZONE)
    today = dt.datetime.now(NY).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    for summary, days in (("Yesterday's sync", -1), ("Tomorrow's sync", 1), ("Sync in six weeks", 42)):
        client.create(CreateEvent(summary=summary, start=today + dt.timedelta(days=days, hours=10)), key=summary)

    result = client.search(FindEvents(query="sync"))

    assert [e.summary for e in result.events] == ["Tomorrow's sync"]
    assert dt.timedelta(days=29) < result.end - result.start <= dt.timedelta(days=30)


def test_find_one_event_by_uid_wherever_it_is(radicale: RadicaleServer) -> None:
    client = seeded(radicale)
    uid = client.search(FindEvents(query="verdant review", start=dt.datetime(2025, 5, 1), end=dt.datetime(2025, 6, 1))).events[0].uid

    [event] = client.search(FindEvents(uid=uid)).events
    assert event.summary == "Verdant sprint review" and event.location == "Room 4"
    assert client.search(FindEvents(uid="gone@deputy")).events == []


def test_move_and_cancel_cards_show_the_event_as_the_calendar_holds_it(radicale: RadicaleServer) -> None:
    caps = {c.name: c for c in calendar_capabilities(config(radicale), ZONE)}
    client = seeded(radicale)
    uid = client.search(FindEvents(query="ana", start=dt.datetime(2025, 5, 1), end=dt.datetime(2025, 5, 31))).events[0].uid

    move = caps["calendar.move"].preview({"uid": uid, "start": "2025-05-06T16:00:00", "end": "2025-05-06T16:30:00",
                                          "timezone": ZONE})
    cancel = caps["calendar.cancel"].preview({"uid": uid})

    assert move.splitlines() == ["Event: Call with Ana", "With: ana@acme.io", "Before: Tue 6 May 15:00–15:30",
                                 "After: Tue 6 May 16:00–16:30", "Time zone: America/New_York"]
    assert "Event: Call with Ana" in cancel and "When: Tue 6 May 15:00–15:30" in cancel and "cannot be undone" in cancel
    # an event that is gone still gets a card that says so
    assert "no event with this UID" in caps["calendar.cancel"].preview({"uid": "gone@deputy"})
    assert (caps["calendar.find"].risk.value, caps["calendar.find"].side_effect) == ("read", False)
