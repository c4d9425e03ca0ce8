"""Undo, in the console through a real worker and Radicale: a booked meeting's done card offers Undo and a double
click removes it once; "undo that" moves a moved meeting back; and a plan whose second step fails for good takes
back its first (a scripted model plans it: an event, then an email the mail server refuses)."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from harness.fakes.openai_server import ScriptedOpenAI
from integrations.calendar_models import day_text
from memory.events import EventLog
from tests.journeys.world import ClusterConfig

ZONE = "Europe/Lisbon"
GONE = "nobody@closed.example"


@pytest.fixture(scope="module")
def cluster_config(model: ScriptedOpenAI) -> ClusterConfig:
    return ClusterConfig(timezone=ZONE, slack=False, telegram=False, env={"OPENAI_BASE_URL": model.base_url})


def day(offset: int) -> dt.date:
    return dt.datetime.now(ZoneInfo(ZONE)).date() + dt.timedelta(days=offset)


def at(when: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(when, dt.time(hour))


def events(cluster, summary: str) -> list[str]:
    return [f"{e.start:%Y-%m-%d %H:%M}–{e.end:%H:%M}" for e in cluster.calendar_events() if e.summary == summary]


def done_steps(cluster, capability: str) -> int:
    found = EventLog(cluster.redis, cluster.workspace).recent(5_000, kinds=["step.done"])
    return sum(1 for e in found if e.data.get("capability") == capability)


def test_a_booked_meeting_is_undone_once_however_often_undo_is_clicked(console, cluster):
    when = day(5)
    card = console.ask(f"schedule a 30 min call with vera@acme.io on {when:%A} at 10am",
                       where=lambda said: said.card is not None and "Approve" in said.card.labels)
    assert card.card.fields["Undo"] == "Can be undone for 15 min after it is done"
    console.click("Approve", on=card)
    done = console.reply(containing="to your calendar:", where=lambda said: said.card is not None)
    assert done.card.labels == ["Undo"] and "Added “Call with Vera”" in done.card.preview
    assert events(cluster, "Call with Vera") == [f"{when} 10:00–10:30"]
    cancels = done_steps(cluster, "calendar.cancel")

    console.click("Undo", on=done)
    console.click("Undo", on=done)
    undone = console.reply(containing="Undone.")
    assert "Cancelled “Call with Vera”; it is no longer in your calendar." in undone.text
    again = console.reply(containing="already undone")
    assert "nothing more was changed" in again.text
    redrawn = next(s for s in console.messages() if s.id == done.id)
    assert redrawn.card.labels == [] and "Undone by operator" in redrawn.card.resolution
    assert events(cluster, "Call with Vera") == []
    assert done_steps(cluster, "calendar.cancel") == cancels + 1
    assert sum(s.text.startswith("Undone.") for s in console.messages()) == 1


def test_undo_that_moves_a_moved_meeting_back(console, cluster):
    when = day(6)
    cluster.add_event("Call with Wes", at(when, 15), attendees=("wes@acme.io",))
    card = console.ask("move my call with Wes to 4pm", where=lambda said: said.card is not None)
    console.click("Approve", on=card)
    console.reply(containing="Moved “Call with Wes”")
    assert events(cluster, "Call with Wes") == [f"{when} 16:00–16:30"]

    undone = console.ask("undo that", containing="Undone.")
    assert undone.text.startswith("Undone. Moved “Call with Wes” from ") and f"to {day_text(when)} 15:00–15:30" in undone.text
    assert events(cluster, "Call with Wes") == [f"{when} 15:00–15:30"]
    nothing = console.ask("undo that")
    assert "nothing in this thread I can undo" in nothing.text and "within 15 min" in nothing.text


def test_a_plan_whose_second_step_fails_for_good_takes_back_the_first(console, cluster, model):
    when = day(7)
    cluster.smtp.recorder.refuse_rcpt[GONE] = "550 5.1.1 no such user"
    model.answer({"tool_calls": [
        {"name": "calendar__create", "arguments": {"summary": "Kickoff with Closed Co", "start": f"{when}T11:00:00", "duration_min": 30}},
        {"name": "email__send", "arguments": {"to": [GONE], "subject": "Kickoff", "body": "See you on the day."}},
    ]})
    try:
        first = console.ask("/do book the kickoff and tell nobody@closed.example", where=lambda said: said.card is not None)
    finally:
        model.answer({"content": "ok"})
    console.click("Approve", on=first)
    second = console.reply(where=lambda said: said.card is not None and not said.edit and "Approve" in said.card.labels)
    assert second.card.fields["Undo"] == "This cannot be undone"
    assert events(cluster, "Kickoff with Closed Co") == [f"{when} 11:00–11:30"]

    console.click("Approve", on=second)
    failed = console.reply(containing="I could not do step 2 (email.send)")
    assert "So I undid what I had done before it:\n• Cancelled “Kickoff with Closed Co”" in failed.text
    assert events(cluster, "Kickoff with Closed Co") == []
    assert cluster.emails() == []
