"""Recurring reminders fire once per occurrence: retried and duplicated jobs, several workers at once,
a worker that died between claiming and posting, a lost job, a cancel."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Iterator
from zoneinfo import ZoneInfo

import pytest
from redis import Redis
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from agents.recurrence import Repeat
from agents.reminders import Draft, Reminder
from jobs.queues import DEFAULT
from jobs.reminder_jobs import fire
from jobs.runtime import Runtime, open_runtime
from jobs.worker import run_burst
from kernel.messages import Reply
from kernel.outbox import STREAM
from kernel.settings import load_settings
from tests.jobs.work import wait

DAILY = Repeat(freq="daily", hour=8, tz="Europe/Madrid")


@pytest.fixture
def rt(settings, redis) -> Iterator[Runtime]:  # type: ignore[no-untyped-def]
    with open_runtime(load_settings(), redis) as runtime:
        yield runtime


def every_morning(rt: Runtime, what: str = "stretch", trace_id: str = "rec1") -> Reminder:
    first = DAILY.next_after(datetime.now(timezone.utc))
    return rt.reminders.add(Draft(what=what, due=first, repeat=DAILY), "console", "t1", {}, created_by="operator",
                            trace_id=trace_id)


def posted(redis: Redis) -> list[Reply]:
    return [Reply.model_validate_json(fields[b"reply"]) for _, fields in redis.xrange(STREAM)]


def scheduled(redis: Redis) -> list[str]:
    return ScheduledJobRegistry(DEFAULT, connection=redis, serializer=JSONSerializer).get_job_ids()


def test_each_occurrence_posts_once_and_schedules_the_next(rt, redis):
    reminder = every_morning(rt)
    first = reminder.due
    assert scheduled(redis) == [f"reminder-{reminder.id}-at{int(first)}"]

    assert fire(rt, reminder.id, first)["fired"] is True
    assert fire(rt, reminder.id, first)["fired"] is False  # a retried job
    after = rt.reminders.get(reminder.id)
    assert after is not None and after.status == "pending"
    second = after.due
    assert second - first in (23 * 3600, 24 * 3600, 25 * 3600)
    assert f"reminder-{reminder.id}-at{int(second)}" in scheduled(redis)

    assert fire(rt, reminder.id, second)["fired"] is True
    replies = posted(redis)
    assert [r.text for r in replies] == ["⏰ Reminder: stretch"] * 2
    assert len({r.reply_id for r in replies}) == 2
    # each card names its own occurrence and the rule, with a way to stop it
    card = replies[1].card
    assert card is not None and ("Repeats", "every day at 08:00") in [(f.label, f.value) for f in card.fields]
    assert [b.label for b in card.buttons] == ["Snooze 15 min", "Snooze 1 h", "Done", "Stop repeating"]


def test_two_workers_firing_the_same_occurrence_post_once(rt, settings, redis):
    reminder = every_morning(rt)
    # two worker processes' runtimes, each with its own connection, racing on the same occurrence
    with open_runtime(load_settings(), Redis.from_url(settings.redis_url)) as a, \
            open_runtime(load_settings(), Redis.from_url(settings.redis_url)) as b:
        for _ in range(5):
            start = threading.Barrier(4)
            results: list[bool] = []

            def race(worker: Runtime) -> None:
                start.wait()
                results.append(fire(worker, reminder.id, reminder.due)["fired"])

            threads = [threading.Thread(target=race, args=(w,)) for w in (a, b, a, b)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(results) == [False, False, False, True]
            moved = rt.reminders.get(reminder.id)
            assert moved is not None and moved.due > reminder.due
            # exactly one step on: the next occurrence, not the one after
            assert moved.due == DAILY.next_after(datetime.fromtimestamp(reminder.due, timezone.utc)).timestamp()
            reminder = moved
    assert len(posted(redis)) == 5


def test_a_firing_claimed_by_a_worker_that_died_is_posted_by_the_retry(rt, redis):
    reminder = every_morning(rt)
    # a worker claimed the occurrence (and moved the series on), then died before posting
    assert rt.reminders.claim_firing(reminder.id, reminder.due) is not None
    assert posted(redis) == []
    assert fire(rt, reminder.id, reminder.due)["fired"] is True
    assert fire(rt, reminder.id, reminder.due)["fired"] is False
    assert len(posted(redis)) == 1


def test_a_lost_job_does_not_end_the_series_and_a_stale_one_stays_quiet(rt, redis):
    reminder = every_morning(rt)
    second = DAILY.next_after(datetime.fromtimestamp(reminder.due, timezone.utc)).timestamp()
    # the first occurrence's job never ran; the second's does
    assert fire(rt, reminder.id, second)["fired"] is True
    moved = rt.reminders.get(reminder.id)
    assert moved is not None and moved.due > second
    # the first occurrence's job, arriving late, posts nothing; nor does a time that is no occurrence
    assert fire(rt, reminder.id, reminder.due)["fired"] is False
    assert fire(rt, reminder.id, moved.due + 60)["fired"] is False
    assert len(posted(redis)) == 1


def test_cancelling_stops_every_future_occurrence(rt, redis):
    reminder = every_morning(rt)
    fire(rt, reminder.id, reminder.due)
    upcoming = rt.reminders.get(reminder.id)
    assert upcoming is not None
    cancelled, closed = rt.reminders.cancel(reminder.id)
    assert closed and cancelled is not None and cancelled.status == "cancelled"
    assert fire(rt, reminder.id, upcoming.due)["fired"] is False
    later = DAILY.next_after(datetime.fromtimestamp(upcoming.due, timezone.utc)).timestamp()
    assert fire(rt, reminder.id, later)["fired"] is False
    assert rt.reminders.pending() == []
    assert len(posted(redis)) == 1


def test_a_worker_fires_a_due_occurrence_and_queues_the_next(rt, redis):
    soon = datetime.now(timezone.utc) + timedelta(seconds=1)
    reminder = rt.reminders.add(Draft(what="stand up", due=soon, repeat=DAILY), "console", "t1", {}, created_by="operator",
                                trace_id="rec2")
    job_id = f"reminder-{reminder.id}-at{int(reminder.due)}"
    assert wait(lambda: job_id in ScheduledJobRegistry(DEFAULT, connection=redis).get_jobs_to_schedule(), 5)
    run_burst(redis)
    assert [r.text for r in posted(redis)] == ["⏰ Reminder: stand up"]
    nxt = rt.reminders.get(reminder.id)
    assert nxt is not None and scheduled(redis) == [f"reminder-{reminder.id}-at{int(nxt.due)}"]
    assert datetime.fromtimestamp(nxt.due, timezone.utc).astimezone(ZoneInfo(DAILY.tz)).hour == 8

