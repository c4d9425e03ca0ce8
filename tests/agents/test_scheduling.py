"""Scheduling from free text through the real gateway, a burst worker and a real Radicale: questions for what is
missing, a conflict shown with free slots, corrections before approval, and exactly one event after approval."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, AsyncIterator
from zoneinfo import ZoneInfo

import pytest
from redis import Redis

from harness.fakes.radicale_server import RadicaleServer
from integrations.calendar import CalendarClient
from integrations.calendar_models import AgendaRequest, CreateEvent
from integrations.internal import Contact, ContactBook
from kernel.settings import load_settings
from kernel.settings_models import CalDavSettings
from tests.bot.conftest import Deputy, logged_in_deputy

ZONE = "Europe/Madrid"


@pytest.fixture
def calendar(radicale: RadicaleServer) -> CalendarClient:
    return CalendarClient(CalDavSettings(url=radicale.url, username=radicale.username, password=radicale.password), ZONE)


@pytest.fixture
async def deputy(settings: Any, redis: Redis, radicale: RadicaleServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Deputy]:
    for key, value in {"CALDAV_URL": radicale.url, "CALDAV_USERNAME": radicale.username, "CALDAV_PASSWORD": radicale.password,
                       "TIMEZONE": ZONE}.items():
        monkeypatch.setenv(key, value)
    async with logged_in_deputy(load_settings(), redis) as deputy:
        yield deputy


def next_weekday(weekday: int) -> dt.date:
    today = dt.datetime.now(ZoneInfo(ZONE)).date()
    return today + dt.timedelta(days=(weekday - today.weekday()) % 7 or 7)


def events_on(calendar: CalendarClient, day: dt.date) -> list[Any]:
    return calendar.agenda(AgendaRequest(day=day)).events


async def last(deputy: Deputy) -> dict[str, Any]:
    await deputy.work()
    return (await deputy.messages())[-1]


async def click(deputy: Deputy, card: dict[str, Any], label: str) -> dict[str, Any]:
    button = next(b for b in card["buttons"] if b["label"] == label)
    resp = await deputy.client.post("/api/decisions", json={"thread_id": "t1", "action": button["action"], "value": button["value"],
                                                             "client_id": uuid.uuid4().hex})
    assert resp.status == 202, await resp.text()
    return await last(deputy)


async def test_a_missing_length_is_asked_then_the_event_is_approved_once(deputy: Deputy, calendar: CalendarClient) -> None:
    tuesday = next_weekday(1)
    await deputy.say("schedule a call with Ana next Tuesday at 3pm")
    question = await last(deputy)
    assert "How long" in question["text"], question["text"]
    assert [b["label"] for b in question["card"]["buttons"]] == ["15 min", "30 min", "60 min"]

    await deputy.say("30 min")
    card = await last(deputy)
    assert card["card"] is not None and "Approve" in [b["label"] for b in card["card"]["buttons"]], card
    assert f"{tuesday:%a %-d %b} 15:00–15:30 {ZONE}" in card["card"]["rationale"]

    done = await click(deputy, card["card"], "Approve")
    await deputy.work()
    [event] = events_on(calendar, tuesday)
    assert event.summary == "Call with Ana" and event.start.hour == 15 and (event.end - event.start) == dt.timedelta(minutes=30)
    assert done["text"] == f"Added “Call with Ana” to your calendar: {tuesday:%a %-d %b} 15:00–15:30."
    shown = next(m for m in await deputy.messages() if (m["card"] or {}).get("card_id") == card["card"]["card_id"])
    assert shown["card"]["resolution"].startswith("Approved by operator")


async def test_a_clash_offers_free_slots_and_picking_one_books_it(deputy: Deputy, calendar: CalendarClient) -> None:
    wednesday = next_weekday(2)
    zone = ZoneInfo(ZONE)
    calendar.create(CreateEvent(summary="Design review", start=dt.datetime.combine(wednesday, dt.time(10), zone),
                                end=dt.datetime.combine(wednesday, dt.time(11), zone)), key="seed-1")
    await deputy.say("book a 1 hour meeting with bob@acme.io on Wednesday at 10am")
    card = (await last(deputy))["card"]
    assert "overlaps “Design review”" in card["rationale"]
    slots = [b for b in card["buttons"] if b["action"] == "schedule.slot"]
    # the nearest free times, later first on a tie: 11:00 after the review, 09:00 before it
    assert [s["label"] for s in slots][:2] == [f"{wednesday:%a} 11:00", f"{wednesday:%a} 09:00"]

    fresh = await click(deputy, card, slots[0]["label"])
    assert fresh["card"]["card_id"] != card["card_id"] and "11:00–12:00" in fresh["card"]["rationale"]
    assert "overlaps" not in fresh["card"]["rationale"]
    old = next(m for m in await deputy.messages() if (m["card"] or {}).get("card_id") == card["card_id"])
    assert "Superseded" in old["card"]["resolution"] and old["card"]["buttons"] == []

    await click(deputy, fresh["card"], "Approve")
    await deputy.work()
    titles = sorted((e.summary, e.start.hour) for e in events_on(calendar, wednesday))
    assert titles == [("Design review", 10), ("Meeting with Bob", 11)]


async def test_a_correction_before_approval_changes_the_card_and_the_old_buttons_approve_nothing(
        deputy: Deputy, calendar: CalendarClient) -> None:
    thursday = next_weekday(3)
    await deputy.say("schedule a 30 min call with ana@acme.io on Thursday at 3pm")
    first = (await last(deputy))["card"]
    await deputy.say("make it 4pm")
    second = (await last(deputy))["card"]
    assert "16:00–16:30" in second["rationale"] and second["card_id"] != first["card_id"]

    approve_old = next(b for b in first["buttons"] if b["label"] == "Approve")
    resp = await deputy.client.post("/api/decisions", json={"thread_id": "t1", "action": approve_old["action"], "value": approve_old["value"],
                                                                     "client_id": uuid.uuid4().hex})
    assert resp.status == 202
    await deputy.work()
    refused = next(m for m in await deputy.messages() if (m["card"] or {}).get("card_id") == first["card_id"])
    assert "can no longer approve" in refused["text"] and "Superseded" in refused["card"]["resolution"]
    assert events_on(calendar, thursday) == []

    await deputy.say("add bob@acme.io")
    third = (await last(deputy))["card"]
    assert "bob@acme.io" in third["preview"] and "ana@acme.io" in third["preview"]
    await click(deputy, third, "Approve")
    await deputy.work()
    [event] = events_on(calendar, thursday)
    assert event.start.hour == 16 and sorted(event.attendees) == ["ana@acme.io", "bob@acme.io"]


async def test_cancel_ends_the_question_and_nothing_is_booked(deputy: Deputy, calendar: CalendarClient) -> None:
    await deputy.say("set up a call with the accountant next friday at 11")
    assert "How long" in (await last(deputy))["text"]
    await deputy.say("never mind")
    assert "dropped" in (await last(deputy))["text"]
    await deputy.say("30")
    assert "How long" not in (await last(deputy))["text"]
    assert events_on(calendar, next_weekday(4)) == []


async def test_a_name_two_contacts_share_is_asked_and_the_answer_picks_the_invitee(
        deputy: Deputy, calendar: CalendarClient, redis: Redis, settings: Any) -> None:
    book = ContactBook(redis, settings.workspace)
    book.upsert(Contact(email="ana@acme.io", name="Ana Lopez", company="Acme"))
    book.upsert(Contact(email="ana.ruiz@studio.example", name="Ana Ruiz", company="Studio"))
    await deputy.say("schedule a 30 min call with Ana on Thursday at 10am")
    question = await last(deputy)
    assert question["text"].startswith("Which Ana do you mean?")
    assert sorted(b["label"] for b in question["card"]["buttons"]) == [
        "Ana Lopez (Acme) <ana@acme.io>", "Ana Ruiz (Studio) <ana.ruiz@studio.example>"]

    await deputy.say("the one at Acme")
    card = (await last(deputy))["card"]
    assert "ana@acme.io" in card["preview"] and "ana.ruiz" not in card["preview"] and "10:00–10:30" in card["rationale"]


async def test_working_hours_are_asked_once_when_free_slots_are_first_offered(deputy: Deputy, calendar: CalendarClient) -> None:
    monday = next_weekday(0)
    calendar.create(CreateEvent(summary="Standup", start=dt.datetime.combine(monday, dt.time(9)),
                                end=dt.datetime.combine(monday, dt.time(10)), timezone=ZONE), key="seed-2")
    await deputy.say("book a 30 min call with ivo@acme.io on Monday at 9am", thread_id="t1")
    first = await last(deputy)
    assert "What are your working hours?" in first["text"] and first["card"]["buttons"][2]["label"] == f"{monday:%a} 10:00"
    await deputy.say("book a 30 min call with jo@acme.io on Monday at 9:15am", thread_id="t2")
    await deputy.work()
    second = (await deputy.messages("t2"))[-1]
    assert "clashes" in second["text"] and "working hours" not in second["text"]


async def test_corrections_in_everyday_words_and_never_mind_drops_the_card(deputy: Deputy, calendar: CalendarClient) -> None:
    friday = next_weekday(4)
    await deputy.say("schedule a 30 min call with kim@acme.io on Friday at 3pm")
    first = (await last(deputy))["card"]
    await deputy.say("an hour instead")
    second = (await last(deputy))["card"]
    assert "15:00–16:00" in second["rationale"] and second["card_id"] != first["card_id"]
    await deputy.say("actually make it 11")
    third = (await last(deputy))["card"]
    assert "11:00–12:00" in third["rationale"]

    await deputy.say("never mind")
    dropped = await last(deputy)
    assert dropped["text"] == "OK, I dropped it: nothing was done."
    shown = next(m for m in await deputy.messages() if (m["card"] or {}).get("card_id") == third["card_id"])
    assert shown["card"]["buttons"] == [] and shown["card"]["resolution"].startswith("Rejected")
    await deputy.work()
    assert events_on(calendar, friday) == []
