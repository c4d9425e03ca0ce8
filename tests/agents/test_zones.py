"""Time zones and working hours as people say them."""
from __future__ import annotations

import pytest

from agents.zones import hours_in, zone_in, zone_named


@pytest.mark.parametrize("said, zone", [
    ("my time zone is Europe/Madrid", "Europe/Madrid"),
    ("i'm in new york time now", "America/New_York"),
    ("set my timezone to CET", "Europe/Paris"),
    ("madrid", "Europe/Madrid"),
    ("europe/madrid", "Europe/Madrid"),
    ("I moved to Buenos Aires", "America/Buenos_Aires"),
    ("Sao Paulo", "America/Sao_Paulo"),
    ("pacific time", "America/Los_Angeles"),
    ("UTC", "UTC"),
])
def test_a_zone_is_found_by_its_name_its_city_or_an_everyday_abbreviation(said, zone):
    assert zone_in(said) == zone


@pytest.mark.parametrize("said", ["CST", "IST", "i live in the west", "hello there", "Madrid or London"])
def test_an_ambiguous_or_missing_zone_is_none_so_deputy_asks(said):
    assert zone_in(said) is None


def test_a_command_argument_is_one_name():
    assert zone_named("New York") == "America/New_York"
    assert zone_named("Atlantis") is None


@pytest.mark.parametrize("said, hours", [
    ("I work 9 to 6", (9, 18)), ("9-18", (9, 18)), ("8am-5pm", (8, 17)), ("i start at 8 and finish at 4", (8, 16)),
    ("my office hours are 10 till 7", (10, 19)), ("no hours here", None), ("18-9", None),
])
def test_working_hours_are_read_as_whole_local_hours(said, hours):
    assert hours_in(said) == hours
