"""Agenda questions, moving and cancelling meetings: the worker's skills against a real Radicale, through the real
agent (plan → approval card → approve → the resumed run changes the calendar)."""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace
from typing import Iterator
from zoneinfo import ZoneInfo

import pytest
from redis import Redis

from agents.conversation import answered, clicked
from agents.corrections import corrected
from agents.skills import SKILLS
from harness.fakes.radicale_server import RadicaleServer
from integrations.calendar import CalendarClient
from integrations.calendar_models import AgendaRequest, CreateEvent, day_text
from jobs.runtime import Runtime, open_runtime
from jobs.skill_contexts import skill_context
from jobs.worker import run_burst
from kernel.messages import Intent, Outcome
from kernel.settings_models import CalDavSettings
from tests.bot.conftest import logged_in_deputy

ZONE = "Europe/Lisbon"


@pytest.fixture
def settings(redis_url: str, radicale: RadicaleServer, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from kernel.settings import load_settings

    for key, value in {
        "REDIS_URL": redis_url, "JOB_RETRY_BACKOFF": "0", "CONSOLE_OPERATORS": "operator", "APPROVERS": "operator",
        "TIMEZONE": ZONE, "CALDAV_URL": radicale.url, "CALDAV_USERNAME": radicale.username,
        "CALDAV_PASSWORD": radicale.password, "CALDAV_CALENDAR": "Work",
    }.items():
        monkeypatch.setenv(key, value)
    return load_settings()


@pytest.fixture
def rt(settings, redis: Redis) -> Iterator[Runtime]:  # type: ignore[no-untyped-def]
    with open_runtime(settings, redis) as runtime:
        yield runtime


@pytest.fixture
def calendar(radicale: RadicaleServer) -> CalendarClient:
    return CalendarClient(CalDavSettings(url=radicale.url, username=radicale.username, password=radicale.password,
                                         calendar="Work"), ZONE)


TOMORROW = dt.datetime.now(ZoneInfo(ZONE)).date() + dt.timedelta(days=1)
LATER = TOMORROW + dt.timedelta(days=2)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute))


def seed(calendar: CalendarClient, summary: str, start: dt.datetime, minutes: int = 30, attendees: tuple[str, ...] = ()) -> str:
    return calendar.create(CreateEvent(summary=summary, start=start, duration_min=minutes, attendees=list(attendees)),
                           key=uuid.uuid4().hex).event.uid


def held(calendar: CalendarClient, day: dt.date) -> list[tuple[str, str]]:
    return [(e.summary, f"{e.start:%H:%M}–{e.end:%H:%M}") for e in calendar.agenda(AgendaRequest(day=day)).events]


def say(rt: Runtime, skill: str, text: str, **slots: object) -> Outcome:
    ctx = skill_context(rt, uuid.uuid4().hex[:16], "operator", "t1", "console")
    return SKILLS[skill](ctx, Intent(name=skill, text=text, slots=slots))


def approve(rt: Runtime, outcome: Outcome) -> None:
    assert outcome.card is not None and outcome.card.buttons[0].action == "approval.approve", outcome
    rt.agent.decide(outcome.card.buttons[0].value, "operator", "approved", uuid.uuid4().hex[:16])
    run_burst(rt.redis)


def ctx_for(rt: Runtime):  # type: ignore[no-untyped-def]
    return skill_context(rt, uuid.uuid4().hex[:16], "operator", "t1", "console")


# --- agenda questions: answered from the calendar, nothing to approve

def test_whats_on_tomorrow_lists_events_in_local_time(rt, calendar):
    seed(calendar, "Call with Ana", at(TOMORROW, 15), attendees=("ana@acme.io",))
    seed(calendar, "Standup", at(TOMORROW, 9), minutes=15)
    seed(calendar, "Not tomorrow", at(LATER, 9))

    reply = say(rt, "agenda", "what's on my calendar tomorrow", when=TOMORROW.isoformat())

    assert reply.text == f"{day_text(TOMORROW)}:\n• 09:00–09:15 Standup\n• 15:00–15:30 Call with Ana (ana@acme.io)"
    assert reply.card is None and rt.agent.approvals.pending() == []


def test_an_empty_day_says_so(rt, calendar):
    reply = say(rt, "agenda", "what do I have tomorrow", when=TOMORROW.isoformat())
    assert reply.text == f"Nothing on your calendar tomorrow ({day_text(TOMORROW)})."


def test_am_i_free_names_what_overlaps_and_the_free_gaps(rt, calendar):
    seed(calendar, "Call with Ana", at(TOMORROW, 15), attendees=("ana@acme.io",))
    seed(calendar, "Morning run", at(TOMORROW, 7))

    busy = say(rt, "agenda", "am I free tomorrow afternoon", when=f"{TOMORROW.isoformat()}T15:00+00:00")
    free = say(rt, "agenda", "am i free tomorrow morning", when=f"{TOMORROW.isoformat()}T09:00+00:00")

    # the afternoon runs to the end of the working day (18:00 by default)
    assert busy.text == (f"No — tomorrow afternoon ({day_text(TOMORROW)}, 12:00–18:00) you have:\n"
                         "• 15:00–15:30 Call with Ana (ana@acme.io)\nFree: 12:00–15:00, 15:30–18:00.")
    assert free.text == f"Yes — you're free tomorrow morning ({day_text(TOMORROW)}, 08:00–12:00)."


def test_when_is_my_next_call_with_ana(rt, calendar):
    seed(calendar, "Lunch with Bob", at(TOMORROW, 12))
    seed(calendar, "Call with Ana", at(LATER, 10), attendees=("ana@acme.io",))

    reply = say(rt, "agenda", "what time is my call with ana")

    assert reply.text == f"“Call with Ana”: {day_text(LATER)} 10:00–10:30 (ana@acme.io)"


async def test_the_agenda_command_through_the_console(settings, redis, calendar):
    seed(calendar, "Verdant review", at(TOMORROW, 16), minutes=60)
    async with logged_in_deputy(settings, redis) as deputy:
        await deputy.say("/agenda tomorrow afternoon")
        await deputy.work()
        reply = (await deputy.messages())[-1]

    assert reply["text"] == f"Tomorrow afternoon ({day_text(TOMORROW)}, 12:00–18:00):\n• 16:00–17:00 Verdant review"


# --- moving a meeting: found, shown before → after, moved once approved

def test_move_my_call_with_ana_to_4pm(rt, calendar):
    seed(calendar, "Call with Ana", at(TOMORROW, 15), attendees=("ana@acme.io",))
    seed(calendar, "Lunch with Bob", at(TOMORROW, 12))

    card = say(rt, "move_meeting", "move my call with Ana to 4pm", query="my call with Ana", people=["Ana"])

    day = day_text(TOMORROW)
    assert card.text.startswith(f"Move “Call with Ana” from {day} 15:00–15:30 to {day} 16:00–16:30.")
    assert card.card is not None and card.card.title == "Move this event?"
    assert card.card.rationale == f"Move “Call with Ana” from {day} 15:00–15:30 to {day} 16:00–16:30."
    assert f"Before: {day} 15:00–15:30\nAfter: {day} 16:00–16:30\nTime zone: {ZONE}" in card.card.preview
    assert [b.label for b in card.card.buttons] == ["Approve", "Reject"]
    assert held(calendar, TOMORROW) == [("Lunch with Bob", "12:00–12:30"), ("Call with Ana", "15:00–15:30")]

    approve(rt, card)

    assert held(calendar, TOMORROW) == [("Lunch with Bob", "12:00–12:30"), ("Call with Ana", "16:00–16:30")]


def test_two_matches_ask_which_and_the_answer_gets_the_card(rt, calendar):
    seed(calendar, "Call with Ana", at(TOMORROW, 15))
    seed(calendar, "Call with Ana", at(LATER, 11))

    question = say(rt, "move_meeting", "push my call with Ana to 5pm")

    assert question.text.startswith("Which meeting do you mean?") and question.card is not None
    assert [b.label for b in question.card.buttons] == [f"Call with Ana — {day_text(TOMORROW)} 15:00",
                                                        f"Call with Ana — {day_text(LATER)} 11:00"]
    card = clicked(ctx_for(rt), question.card.buttons[1].value, SKILLS)

    assert card.card is not None and f"Before: {day_text(LATER)} 11:00–11:30\nAfter: {day_text(LATER)} 17:00–17:30" in card.card.preview
    approve(rt, card)
    assert held(calendar, LATER) == [("Call with Ana", "17:00–17:30")]
    assert held(calendar, TOMORROW) == [("Call with Ana", "15:00–15:30")]


def test_no_new_time_asks_for_one_and_a_date_keeps_the_clock_time(rt, calendar):
    seed(calendar, "Verdant sprint review", at(TOMORROW, 10), minutes=60)

    question = say(rt, "move_meeting", "reschedule the Verdant review")
    assert question.text.startswith(f"When should “Verdant sprint review” ({day_text(TOMORROW)} 10:00–11:00) move to?")

    card = answered(ctx_for(rt), LATER.strftime("%A"), SKILLS)

    assert card is not None and card.card is not None
    assert f"After: {day_text(LATER)} 10:00–11:00" in card.card.preview


def test_a_correction_before_approval_changes_the_move(rt, calendar):
    seed(calendar, "Call with Ana", at(TOMORROW, 15))
    first = say(rt, "move_meeting", "move my call with Ana to 4pm")

    second = corrected(ctx_for(rt), "make it 5pm", SKILLS)

    assert second is not None and second.card is not None
    assert f"After: {day_text(TOMORROW)} 17:00–17:30" in second.card.preview
    assert [c.resolution for c in second.updates][0].startswith("Superseded")
    assert "no longer" in rt.agent.decide(first.card.buttons[0].value, "operator", "approved", "late").text
    approve(rt, second)
    assert held(calendar, TOMORROW) == [("Call with Ana", "17:00–17:30")]


def test_an_hour_later_keeps_the_length(rt, calendar):
    seed(calendar, "Verdant sprint review", at(TOMORROW, 10), minutes=90)
    card = say(rt, "move_meeting", "push the verdant review back by an hour")
    assert card.card is not None and f"After: {day_text(TOMORROW)} 11:00–12:30" in card.card.preview


def test_nothing_found_says_what_was_searched(rt, calendar):
    seed(calendar, "Call with Ana", at(TOMORROW, 15))
    reply = say(rt, "move_meeting", "move my call with Zed to 4pm")
    assert not reply.ok and reply.text.startswith("I found no meeting matching “zed call” in the next 30 days")


# --- cancelling: found, named on the card, gone once approved

def test_cancel_fridays_meeting_with_bob(rt, calendar):
    seed(calendar, "Lunch with Bob", at(LATER, 12, 30), minutes=60, attendees=("bob@client.example",))
    seed(calendar, "Call with Ana", at(LATER, 15))

    card = say(rt, "cancel_meeting", f"cancel {LATER:%A}'s meeting with Bob", when=LATER.isoformat())

    what = f"Cancel “Lunch with Bob” on {day_text(LATER)} 12:30–13:30 with bob@client.example"
    assert card.text.startswith(what) and card.card is not None and card.card.rationale.startswith(what)
    assert card.card.title == "Cancel this event?" and "cannot be undone" in card.card.preview
    assert held(calendar, LATER) == [("Lunch with Bob", "12:30–13:30"), ("Call with Ana", "15:00–15:30")]

    approve(rt, card)

    assert held(calendar, LATER) == [("Call with Ana", "15:00–15:30")]


def test_without_a_calendar_it_says_which_settings_enable_it(rt, calendar):
    ctx = ctx_for(rt)
    reply = SKILLS["cancel_meeting"](replace(ctx, agent=None), Intent(name="cancel_meeting", text="cancel my call with Ana"))

    assert not reply.ok and "CALDAV_URL" in reply.text and "Connectors: email, calendar, webhooks" in reply.text


def test_a_time_already_past_asks_again(rt, calendar):
    seed(calendar, "Call with Ana", at(TOMORROW, 15))
    yesterday = (TOMORROW - dt.timedelta(days=2)).isoformat()

    question = say(rt, "move_meeting", "move my call with Ana", date=yesterday, time="09:00")
    assert question.text.startswith(f"{day_text(TOMORROW - dt.timedelta(days=2))} 09:00–09:30 has already passed.")

    card = answered(ctx_for(rt), "tomorrow 11am", SKILLS)
    assert card is not None and card.card is not None and f"After: {day_text(TOMORROW)} 11:00–11:30" in card.card.preview
