"""Slots: times in the operator's zone, people, amounts with currency, email addresses."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from agents.intents.registry import load_registry
from agents.intents.slots import extract_slots, find_amount, find_emails, find_people, find_when

# a Wednesday afternoon in Berlin
NOW = datetime(2025, 6, 4, 15, 0, tzinfo=ZoneInfo("Europe/Berlin"))
REGISTRY = load_registry()


def test_reminder_slots_resolve_in_the_operators_time_zone():
    slots = extract_slots(REGISTRY.get("remind"), "can you remind me to call Ana on Friday at 10", "Europe/Berlin", NOW)
    assert slots["when"] == "2025-06-06T10:00+02:00"
    assert slots["text"] == "call Ana"
    assert slots["people"] == ["Ana"]


def test_the_same_words_mean_a_different_instant_in_another_zone():
    berlin = find_when("tomorrow at 9am", "Europe/Berlin", NOW)
    new_york = find_when("tomorrow at 9am", "America/New_York", NOW)
    assert berlin.iso == "2025-06-05T09:00+02:00"
    assert new_york.iso == "2025-06-05T09:00-04:00"


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("in 2 hours", "2025-06-04T17:00+02:00"),
        ("next tuesday at 3pm", "2025-06-10T15:00+02:00"),
        ("on 12 june", "2025-06-12"),
        ("at 5pm", "2025-06-04T17:00+02:00"),
        # a day of the month alone: this month's while it is still to come, else next month's
        ("on the 12th", "2025-06-12"),
        ("on the 3rd at 9am", "2025-07-03T09:00+02:00"),
        # a length is not a moment
        ("for a 1 hour block on friday", "2025-06-06"),
    ],
)
def test_relative_and_absolute_times(text: str, iso: str):
    assert find_when(f"remind me {text} to stretch", "Europe/Berlin", NOW).iso == iso


def test_a_days_ordinal_leaves_the_title_clean():
    slots = extract_slots(REGISTRY.get("schedule_meeting"), "schedule a demo with acme on the 12th at 11am", "Europe/Berlin", NOW)
    assert (slots["when"], slots["title"]) == ("2025-06-12T11:00+02:00", "a demo with acme")


def test_no_time_is_no_slot_rather_than_a_guess():
    assert find_when("add buy milk to my list", "UTC", NOW) is None
    assert "when" not in extract_slots(REGISTRY.get("remind"), "remind me to buy milk", "UTC", NOW)


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("set my budget to $50", {"value": 50.0, "currency": "USD"}),
        ("change it to 1,200.50 euros", {"value": 1200.5, "currency": "EUR"}),
        ("cap it at £30 a month", {"value": 30.0, "currency": "GBP"}),
        ("EUR 15 per month", {"value": 15.0, "currency": "EUR"}),
        ("2k usd", {"value": 2000.0, "currency": "USD"}),
    ],
)
def test_amounts_with_currency(text: str, amount: dict):
    assert find_amount(text) == amount


def test_bare_number_only_when_asked_and_never_from_an_email():
    assert find_amount("cap costs at 25 per month") is None
    assert find_amount("cap costs at 25 per month", bare_numbers=True) == {"value": 25.0, "currency": None}
    assert find_amount("mail ana42@example.com", bare_numbers=True) is None


def test_emails_and_people():
    assert find_emails("send it to Ana@Example.com and bob@x.co.uk, and ana@example.com") == ["ana@example.com", "bob@x.co.uk"]
    assert find_people("Meet Bob Smith and Ana on Friday") == ["Bob Smith", "Ana"]
    assert find_people("schedule a call with bob tomorrow") == ["Bob"]
    assert find_people("remind me to call the bank on Monday") == []


def test_text_slots_lose_their_trigger_words():
    assert extract_slots(REGISTRY.get("add_task"), "add send the invoice to my to-do list", "UTC", NOW)["title"] == "send the invoice"
    assert extract_slots(REGISTRY.get("remember"), "Please remember that Ana prefers calls after 10am", "UTC", NOW)["text"] == \
        "Ana prefers calls after 10am"
    meeting = extract_slots(REGISTRY.get("schedule_meeting"), "book a call with ana@example.com tomorrow at 3pm", "UTC", NOW)
    assert meeting["emails"] == ["ana@example.com"] and meeting["when"] == "2025-06-05T15:00+00:00"


def test_a_possessive_names_the_person():
    assert find_people("reply to Ana's last email") == ["Ana"]
    assert find_people("email james about the invoice") == ["James"]
