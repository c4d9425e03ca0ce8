"""Asking the calendar and changing it in everyday words, in the console, through a real worker and Radicale: an
agenda question, a move shown before → after and approved, a move that first asks which meeting, a cancel.

The calendar is shared by the module's journeys, so each uses people and days of its own."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from agents.intents.slots import find_when
from integrations.calendar_models import day_text
from tests.journeys.world import ClusterConfig

ZONE = "Europe/Lisbon"


@pytest.fixture(scope="module")
def cluster_config() -> ClusterConfig:
    return ClusterConfig(timezone=ZONE, smtp=False, slack=False, telegram=False)


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo(ZONE)).date()


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute))


def events(cluster, summary: str) -> list[str]:
    return [f"{e.start:%Y-%m-%d %H:%M}–{e.end:%H:%M}" for e in cluster.calendar_events() if e.summary == summary]


def test_whats_on_my_calendar_tomorrow_and_am_i_free(console, cluster):
    tomorrow = today() + dt.timedelta(days=1)
    cluster.add_event("Verdant review", at(tomorrow, 15), duration_min=60, attendees=("ana@acme.io",))

    listed = console.ask("what's on my calendar tomorrow")
    assert listed.text == f"{day_text(tomorrow)}:\n• 15:00–16:00 Verdant review (ana@acme.io)", listed
    assert listed.card is None  # read-only: nothing to approve

    free = console.ask("am i free tomorrow afternoon")
    assert free.text == (f"No — tomorrow afternoon ({day_text(tomorrow)}, 12:00–18:00) you have:\n"
                         "• 15:00–16:00 Verdant review (ana@acme.io)\nFree: 12:00–15:00, 16:00–18:00."), free


def test_move_my_call_with_ana_shows_before_and_after_then_moves_it(console, cluster):
    day = today() + dt.timedelta(days=2)
    cluster.add_event("Call with Ana", at(day, 15), attendees=("ana@acme.io",))

    card = console.ask("move my call with Ana to 4pm", where=lambda said: said.card is not None)
    assert card.card.title == "Move this event?" and card.card.labels == ["Approve", "Reject"]
    assert card.card.rationale == f"Move “Call with Ana” from {day_text(day)} 15:00–15:30 to {day_text(day)} 16:00–16:30."
    assert f"Before: {day_text(day)} 15:00–15:30\nAfter: {day_text(day)} 16:00–16:30" in card.card.preview
    assert events(cluster, "Call with Ana") == [f"{day} 15:00–15:30"]  # nothing moves before the click

    console.click("Approve", on=card)
    done = console.reply(containing="Moved “Call with Ana”")
    assert f"to {day_text(day)} 16:00–16:30" in done.text
    assert events(cluster, "Call with Ana") == [f"{day} 16:00–16:30"]


def test_two_matching_meetings_ask_which_then_move_the_one_picked(console, cluster):
    first, second = today() + dt.timedelta(days=3), today() + dt.timedelta(days=4)
    cluster.add_event("Call with Rita", at(first, 10))
    cluster.add_event("Call with Rita", at(second, 11))

    question = console.ask("move my call with Rita to 2pm")
    assert question.text.startswith("Which meeting do you mean?"), question
    assert question.card.labels == [f"Call with Rita — {day_text(first)} 10:00", f"Call with Rita — {day_text(second)} 11:00"]

    console.click(f"Call with Rita — {day_text(second)} 11:00", on=question)
    card = console.reply(where=lambda said: said.card is not None and said.card.title == "Move this event?")
    assert f"Before: {day_text(second)} 11:00–11:30\nAfter: {day_text(second)} 14:00–14:30" in card.card.preview

    console.click("Approve", on=card)
    console.reply(containing="Moved “Call with Rita”")
    assert events(cluster, "Call with Rita") == [f"{first} 10:00–10:30", f"{second} 14:00–14:30"]


def test_cancel_fridays_meeting_with_bob(console, cluster):
    found = find_when("Friday", ZONE)
    assert found is not None
    friday = dt.date.fromisoformat(found.iso[:10])
    cluster.add_event("Lunch with Bob", at(friday, 12, 30), duration_min=60, attendees=("bob@client.example",))
    cluster.add_event("Bob quarterly check-in", at(friday + dt.timedelta(days=1), 9))

    card = console.ask("cancel Friday's meeting with Bob", where=lambda said: said.card is not None)
    assert card.card.title == "Cancel this event?"
    assert card.card.rationale.startswith(f"Cancel “Lunch with Bob” on {day_text(friday)} 12:30–13:30 with bob@client.example")
    assert "cannot be undone" in card.card.preview

    console.click("Approve", on=card)
    console.reply(containing="Cancelled “Lunch with Bob”")
    assert events(cluster, "Lunch with Bob") == [] and len(events(cluster, "Bob quarterly check-in")) == 1
