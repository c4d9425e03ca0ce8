"""`deputy up` prints its console link only once a worker of this start can answer free text."""
from __future__ import annotations

import pytest

from bot.announce import announce_when_ready, workers_ready
from jobs.heartbeat import Heartbeats


def test_a_worker_is_ready_only_once_it_says_so_in_a_beat_of_this_start(redis):  # type: ignore[no-untyped-def]
    now = [1_000.0]
    heartbeats = Heartbeats(redis, clock=lambda: now[0])
    heartbeats.beat("worker", "host:1", ready=True)  # a previous run's worker, before this start
    now[0] += 5
    ready = workers_ready(heartbeats, since=now[0], stale_s=60)
    assert not ready()
    heartbeats.beat("worker", "host:2", ready=False, detail="loading the intent classifier")
    assert not ready()
    heartbeats.beat("cron", "host:3", ready=True)
    assert not ready()
    heartbeats.beat("worker", "host:2", ready=True)
    assert ready()
    now[0] += 61  # gone quiet: no longer counts
    assert not ready()


async def test_the_link_is_printed_once_after_the_first_ready_check(capsys: pytest.CaptureFixture[str]):
    answers = iter([False, False, True])
    checks = []

    def ready() -> bool:
        checks.append(1)
        return next(answers)

    await announce_when_ready(ready, lambda is_ready: f"open http://link ready={is_ready}", poll_s=0)
    assert len(checks) == 3
    assert capsys.readouterr().out == "open http://link ready=True\n"


async def test_the_link_is_not_withheld_for_good(capsys: pytest.CaptureFixture[str]):
    now = [0.0]

    def never() -> bool:
        now[0] += 100
        return False

    await announce_when_ready(never, lambda is_ready: f"open http://link ready={is_ready}", poll_s=0, wait_at_most_s=250,
                              clock=lambda: now[0])
    assert capsys.readouterr().out == "open http://link ready=False\n"
