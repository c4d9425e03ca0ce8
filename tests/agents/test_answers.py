"""Short answers to Deputy's questions: lengths, clock times, and which of the offered choices."""
from __future__ import annotations

import pytest

from agents.answers import choice, clock_time, duration_minutes

MEETINGS = (("Call with Ana — Tue 8 Dec 15:00", "a"), ("Call with Ana Ruiz — Tue 8 Dec 17:00", "b"))


@pytest.mark.parametrize(("text", "minutes"), [("30 min", 30), ("an hour", 60), ("1.5h", 90), ("half an hour", 30), ("45", 45),
                                               ("hmm", None)])
def test_lengths(text: str, minutes: int | None) -> None:
    assert duration_minutes(text) == minutes


@pytest.mark.parametrize(("text", "at"), [("3pm", "15:00"), ("15:30", "15:30"), ("at 4", "16:00"), ("noon", "12:00"),
                                          ("the 2 of us", None)])
def test_clock_times(text: str, at: str | None) -> None:
    assert clock_time(text) == at


@pytest.mark.parametrize(("text", "picked"), [("the 5pm one", "b"), ("the one at 15:00", "a"), ("second", "b"), ("Ruiz", "b"),
                                              ("1", "a"), ("ana", None)])
def test_choices(text: str, picked: str | None) -> None:
    assert choice(text, MEETINGS) == picked
