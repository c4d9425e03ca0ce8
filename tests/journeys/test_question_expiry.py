"""Journey: a question answered after PENDING_QUESTION_TTL is told it expired, and nothing is booked."""
from __future__ import annotations

import time

import pytest

from tests.journeys.world import ClusterConfig

TTL_S = 2


@pytest.fixture(scope="module")
def cluster_config() -> ClusterConfig:
    return ClusterConfig(env={"PENDING_QUESTION_TTL": str(TTL_S)})


def test_an_answer_after_the_question_expired_is_told_so(console, cluster):
    asked = console.ask("schedule a call with gus@acme.io next wednesday at 2pm")
    assert "How long" in asked.text
    deadline = time.time() + TTL_S + 0.5
    while time.time() < deadline:  # the question's lifetime is wall-clock time in the worker
        time.sleep(0.1)
    late = console.reply(after=console.say("30 min"), containing="expired")
    assert "expired" in late.text and "nothing was done" in late.text
    assert [e for e in cluster.calendar_events() if "Gus" in e.summary] == []
