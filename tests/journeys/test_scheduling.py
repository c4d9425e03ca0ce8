"""Journeys: scheduling from free text, as the operator types it in the console, Slack and Telegram — questions for
what is missing, a clash with free slots offered, a correction before approval — and what lands in Radicale."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.journeys.world import ClusterConfig

ZONE = "Europe/Madrid"


@pytest.fixture(scope="module")
def cluster_config() -> ClusterConfig:
    return ClusterConfig(timezone=ZONE)


def next_weekday(weekday: int) -> dt.date:
    today = dt.datetime.now(ZoneInfo(ZONE)).date()
    return today + dt.timedelta(days=(weekday - today.weekday()) % 7 or 7)


def on(cluster, day: dt.date, summary: str = "") -> list:
    return [e for e in cluster.calendar_events() if e.start.date() == day and summary in e.summary]


def test_a_missing_length_is_asked_answered_and_one_event_is_booked(console, cluster):
    tuesday = next_weekday(1)
    question = console.ask("schedule a call with ana@acme.io next Tuesday at 3pm")
    assert question.text.startswith("How long should “Call with Ana” be?")
    assert question.card.labels == ["15 min", "30 min", "60 min"]

    console.say("30 min")
    card = console.reply(where=lambda said: said.card is not None and "Approve" in said.card.labels)
    assert f"{tuesday:%a %-d %b} 15:00–15:30 {ZONE}" in card.card.rationale and "ana@acme.io" in card.card.preview

    console.click("Approve")
    console.reply(containing="to your calendar:")
    [event] = on(cluster, tuesday, "Call with Ana")
    assert (event.start.hour, event.end - event.start, event.attendees) == (15, dt.timedelta(minutes=30), ("ana@acme.io",))


def test_a_clashing_time_offers_free_slots_and_the_picked_one_is_booked(console, cluster):
    wednesday = next_weekday(2)
    cluster.add_event("Design review", dt.datetime.combine(wednesday, dt.time(10)), duration_min=60)
    card = console.ask("book a 1 hour meeting with bob@acme.io on Wednesday at 10am")
    assert "overlaps “Design review” 10:00–11:00" in card.card.rationale
    assert [b.label for b in card.card.buttons if b.action == "schedule.slot"][0] == f"{wednesday:%a} 11:00"

    console.click(f"{wednesday:%a} 11:00")
    fresh = console.reply(where=lambda said: said.card is not None and not said.edit and "Approve" in said.card.labels)
    assert "11:00–12:00" in fresh.card.rationale and "overlaps" not in fresh.card.rationale
    console.click("Approve", on=fresh)
    console.reply(containing="to your calendar:")
    assert [(e.summary, e.start.hour) for e in on(cluster, wednesday)] == [("Design review", 10), ("Meeting with Bob", 11)]


def test_a_correction_changes_the_card_and_the_old_card_cannot_approve(console, cluster):
    thursday = next_weekday(3)
    first = console.ask("schedule a 30 min call with carla@acme.io on Thursday at 3pm")
    assert "15:00–15:30" in first.card.rationale

    console.say("make it 4pm")
    second = console.reply(where=lambda said: said.card is not None and not said.edit and "Approve" in said.card.labels)
    assert "16:00–16:30" in second.card.rationale and second.card.preview != first.card.preview

    console.click("Approve", on=first)
    refused = console.reply(where=lambda said: said.edit and said.id == first.id and "can no longer approve" in said.text)
    assert "Superseded" in refused.card.resolution
    assert on(cluster, thursday, "Call with Carla") == []

    console.click("Approve", on=second)
    console.reply(containing="to your calendar:")
    [event] = on(cluster, thursday, "Call with Carla")
    assert event.start.hour == 16


def test_never_mind_ends_the_question_and_nothing_is_booked(console, cluster):
    friday = next_weekday(4)
    assert "How long" in console.ask("set up a call with dan@acme.io next friday at 11").text
    mark = console.say("never mind")
    assert "Nothing was done" in console.reply(after=mark, containing="dropped").text
    assert console.reply(after=mark, where=lambda said: said.edit).card.resolution == "Cancelled"
    assert on(cluster, friday, "Call with Dan") == []


def test_smalltalk_gets_a_short_human_answer(console):
    hello = console.ask("hi there!")
    assert len(hello.text) < 80 and "/remember" not in hello.text and hello.card is None
    thanks = console.ask("thanks, that was quick")
    assert len(thanks.text) < 80 and "/remember" not in thanks.text


def test_slack_scheduling_asks_with_buttons_and_books_after_approval(slack, cluster):
    monday = next_weekday(0)
    question = slack.ask("schedule a call with erin@acme.io on Monday at 10am")
    assert "How long" in question.text and question.card.labels == ["15 min", "30 min", "60 min"]
    slack.click("60 min")
    card = slack.reply(where=lambda said: said.card is not None and "Approve" in said.card.labels)
    assert "10:00–11:00" in card.card.rationale
    slack.click("Approve", on=card)
    slack.reply(containing="to your calendar:")
    [event] = on(cluster, monday, "Call with Erin")
    assert event.end - event.start == dt.timedelta(hours=1)


def test_telegram_scheduling_takes_a_typed_answer(telegram, cluster):
    thursday = next_weekday(3)
    assert "How long" in telegram.ask("put a call with fay@acme.io in my calendar on Thursday at 9am").text
    telegram.say("45 minutes")
    card = telegram.reply(where=lambda said: said.card is not None and "Approve" in said.card.labels)
    assert "09:00–09:45" in card.shown
    telegram.click("Approve", on=card)
    telegram.reply(containing="to your calendar:")
    [event] = on(cluster, thursday, "Call with Fay")
    assert event.end - event.start == dt.timedelta(minutes=45)
