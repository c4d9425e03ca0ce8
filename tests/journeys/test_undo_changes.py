"""Journeys: what Deputy changed directly, undone from the thread — a task added, then "undo that"; a contact's
number replaced, then "undo that" puts the old one back, recorded as an undo in what Deputy answers after."""
from __future__ import annotations

import pytest

from tests.journeys.world import ClusterConfig


@pytest.fixture(scope="module")
def cluster_config() -> ClusterConfig:
    return ClusterConfig(slack=False, telegram=False)


def test_add_task_then_undo_that_removes_it(console):
    added = console.ask("add task call the bank")
    assert "Added task" in added.text and "call the bank" in added.text

    undone = console.ask("undo that")
    assert undone.text.startswith("Undone"), undone.text
    assert "call the bank" not in console.ask("/task list").text


def test_a_new_number_then_undo_that_puts_the_old_one_back(console):
    console.ask("Ana Lopez's phone is +34 600 000 001")
    changed = console.ask("Ana's number is +34 611 111 111")
    assert "was +34 600 000 001" in changed.text

    undone = console.ask("undo that")
    assert undone.text.startswith("Undone"), undone.text
    answer = console.ask("what's Ana's phone number").text
    # the old number is current again, and the answer says the new one was undone
    assert "phone: +34 600 000 001" in answer and "+34 611 111 111 was undone" in answer and "put back by an undo" in answer
