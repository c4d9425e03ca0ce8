"""What calendar requests mean, in the operator's zone: the window an agenda question asks about, the meeting a
move or cancel names, and the new time a move asks for. Pure functions: no calendar, a fixed clock."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from agents.agenda_times import Change, asked_window, split_move
from agents.meeting_search import wanted_in

ZONE = "Europe/Lisbon"
# a Wednesday afternoon
NOW = dt.datetime(2026, 12, 9, 14, 10, tzinfo=ZoneInfo(ZONE))


@pytest.mark.parametrize("text,start,end,label", [
    ("what's on my calendar tomorrow", "2026-12-10 00:00", "2026-12-11 00:00", "tomorrow (Thu 10 Dec)"),
    ("whats on the calender tmrw", "2026-12-10 00:00", "2026-12-11 00:00", "tomorrow (Thu 10 Dec)"),
    ("", "2026-12-09 00:00", "2026-12-10 00:00", "today (Wed 9 Dec)"),
    ("am I free friday afternoon", "2026-12-11 12:00", "2026-12-11 18:00", "Friday afternoon (Fri 11 Dec, 12:00–18:00)"),
    ("is my morning free", "2026-12-09 08:00", "2026-12-09 12:00", "this morning (Wed 9 Dec, 08:00–12:00)"),
    ("anything tonight?", "2026-12-09 17:00", "2026-12-09 21:00", "tonight (Wed 9 Dec, 17:00–21:00)"),
    ("am i busy at 3pm tomorrow", "2026-12-10 15:00", "2026-12-10 15:30", "tomorrow 15:00–15:30 (Thu 10 Dec)"),
    ("list my meetings for the 12th", "2026-12-12 00:00", "2026-12-13 00:00", "on Saturday"),
    ("agenda for next week", "2026-12-14 00:00", "2026-12-21 00:00", "next week (Mon 14 Dec – Sun 20 Dec)"),
    ("what does my week look like", "2026-12-09 00:00", "2026-12-14 00:00", "this week"),
    ("anything this weekend", "2026-12-12 00:00", "2026-12-14 00:00", "this weekend"),
])
def test_the_window_an_agenda_question_means(text, start, end, label):
    window = asked_window({}, text, ZONE, (9, 18), 30, NOW)
    assert (f"{window.start:%Y-%m-%d %H:%M}", f"{window.end:%Y-%m-%d %H:%M}", window.label) == (start, end, label)
    assert str(window.start.tzinfo) == ZONE


@pytest.mark.parametrize("text,which,change", [
    ("move my call with Ana to 4pm", "move my call with Ana", Change(at=dt.time(16))),
    ("push the Verdant review to Thursday 10am", "push the Verdant review", Change(day=dt.date(2026, 12, 10), at=dt.time(10))),
    ("can we move tomorrow's standup to 11", "can we move tomorrow's standup", Change(at=dt.time(11))),
    ("move the workshop from monday to friday", "move the workshop from monday", Change(day=dt.date(2026, 12, 11))),
    ("can you push back the kickoff by 30 minutes", "can you push back the kickoff", Change(shift=dt.timedelta(minutes=30))),
    ("bring the review forward by an hour", "bring the review forward", Change(shift=dt.timedelta(hours=-1))),
    ("reschedule the call with Ana", "reschedule the call with Ana", None),
])
def test_a_move_splits_into_the_meeting_and_its_new_time(text, which, change):
    assert split_move(text, ZONE, NOW) == (which, change)


def test_a_new_clock_time_keeps_the_day_and_a_new_day_keeps_the_clock_time_and_the_length():
    start = dt.datetime(2026, 12, 10, 15, 0, tzinfo=ZoneInfo(ZONE))
    end = start + dt.timedelta(minutes=45)

    assert Change(at=dt.time(16)).applied(start, end) == (start.replace(hour=16), end.replace(hour=16))
    moved = Change(day=dt.date(2026, 12, 14)).applied(start, end)
    assert (f"{moved[0]:%Y-%m-%d %H:%M}", f"{moved[1]:%H:%M}") == ("2026-12-14 15:00", "15:45")
    assert Change(at=dt.time(9), minutes=60).applied(start, end)[1] == start.replace(hour=10)


@pytest.mark.parametrize("text,words,kinds,day,at", [
    ("move my call with Ana", ("ana",), ("call",), None, None),
    ("cancel Friday's meeting with Bob", ("bob",), ("meeting",), "2026-12-11", None),
    ("call off the Verdant sprint review", ("verdant", "sprint", "review"), (), None, None),
    ("cancle the meeting with the designer", ("designer",), ("meeting",), None, None),
    ("delete the 3pm meeting tomorrow", (), ("meeting",), "2026-12-10", "15:00"),
    ("reschedule my appointment on the 14th", (), ("appointment",), "2026-12-14", None),
])
def test_which_meeting_a_request_names(text, words, kinds, day, at):
    wanted = wanted_in(text, ZONE, NOW)
    assert (wanted.words, wanted.kinds) == (words, kinds)
    assert (wanted.day.isoformat() if wanted.day else None, f"{wanted.at:%H:%M}" if wanted.at else None) == (day, at)
