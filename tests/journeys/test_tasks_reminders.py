"""Journeys: tasks and reminders the operator manages from the thread — a daily reminder that fires on two
mornings (one card per occurrence, each scheduling the next) and is then cancelled, a task renamed, snoozed
and deleted, and a daily reminder on Telegram stopped from its own card.

Days do not pass in a test: an occurrence comes due when its scheduled job's time in rq's scheduled
registry is moved to now, as the clock would, and the cluster's real worker (its rq scheduler) fires it."""
from __future__ import annotations

import re
import time
from typing import Any

import pytest
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from jobs.queues import DEFAULT
from tests.journeys.world import ClusterConfig
from tests.waiting import wait_for

ZONE = "Europe/Madrid"
CARD_BUTTONS = ["Snooze 15 min", "Snooze 1 h", "Done", "Stop repeating"]


@pytest.fixture(scope="module")
def cluster_config() -> ClusterConfig:
    return ClusterConfig(smtp=False, timezone=ZONE)


def _registry(cluster) -> ScheduledJobRegistry:
    return ScheduledJobRegistry(DEFAULT, connection=cluster.redis, serializer=JSONSerializer)


def _job(cluster, job_id: str) -> Job:
    return Job.fetch(job_id, connection=cluster.redis, serializer=JSONSerializer)


def firings(cluster, reminder_id: str) -> dict[str, float]:
    """The reminder's occurrence jobs waiting in the scheduler: job id → the occurrence it fires (unix s)."""
    return {job_id: float(_job(cluster, job_id).args[0]["due"]) for job_id in _registry(cluster).get_job_ids()
            if job_id.startswith(f"reminder-{reminder_id}-")}


def reminder_of(cluster, before: set[str]) -> str:
    """The reminder whose first occurrence was scheduled since `before` (the scheduled job ids then)."""
    [job_id] = wait_for(lambda: [j for j in _registry(cluster).get_job_ids() if j.startswith("reminder-") and j not in before],
                        10, what="the reminder's first occurrence scheduled")
    return str(_job(cluster, job_id).args[0]["reminder_id"])


def come_due(cluster, job_id: str) -> None:
    """Time passes for the scheduler: the job's scheduled moment becomes now, and the worker picks it up."""
    registry = _registry(cluster)
    assert cluster.redis.zscore(registry.key, job_id) is not None, f"{job_id} is not scheduled"
    cluster.redis.zadd(registry.key, {job_id: time.time()})


def deliver_again(cluster, job_id: str) -> None:
    """The job that fired an occurrence is handed to the worker once more, as a retry or a duplicate would be."""
    assert _job(cluster, job_id).get_status() == "finished"
    cluster.redis.zadd(_registry(cluster).key, {job_id: time.time()})


def runs(cluster, job_id: str, times: int) -> Any:
    """Wait until the job has run `times` times; its last result."""
    def ran() -> Job | None:
        job = _job(cluster, job_id)
        return job if len(job.results()) >= times else None

    return wait_for(ran, 15, interval=0.1, what=f"{job_id} run {times} time(s)").latest_result().return_value


def card_reply(user, **wait: Any):
    return user.reply(where=lambda said: said.card is not None and said.card.title == "⏰ Reminder" and not said.edit, **wait)


def reminder_cards(user) -> list:
    return [s for s in user.messages() if s.card is not None and s.card.title == "⏰ Reminder"]


def test_a_daily_reminder_fires_on_two_mornings_once_each_and_is_cancelled(console, cluster):
    before = set(_registry(cluster).get_job_ids())
    confirmed = console.ask("remind me every day at 9 to check the bank")
    assert "check the bank every day at 09:00" in confirmed.text and "/reminders cancel" in confirmed.text
    number = int(re.search(r"reminder (\d+);", confirmed.text).group(1))
    reminder_id = reminder_of(cluster, before)
    [(first_job, first_due)] = firings(cluster, reminder_id).items()

    come_due(cluster, first_job)
    first = card_reply(console)
    assert first.text == "⏰ Reminder: check the bank"
    assert first.card.fields["What"] == "check the bank" and first.card.fields["Repeats"] == "every day at 09:00"
    assert first.card.labels == CARD_BUTTONS
    # the next morning is scheduled, and only it
    [(second_job, second_due)] = wait_for(lambda: [(j, d) for j, d in firings(cluster, reminder_id).items() if j != first_job] or None,
                                          10, what="the next occurrence scheduled")
    assert second_due - first_due in (23 * 3600, 24 * 3600, 25 * 3600)

    # the same occurrence delivered again (a retried job) posts no second card
    deliver_again(cluster, first_job)
    assert runs(cluster, first_job, 2) == {"reminder_id": reminder_id, "fired": False}

    come_due(cluster, second_job)
    second = card_reply(console)
    assert second.id != first.id and second.card.fields["When"] != first.card.fields["When"]
    assert second.card.labels == CARD_BUTTONS
    assert len(reminder_cards(console)) == 2

    listed = console.ask("/reminders")
    assert f"{number}. check the bank — every day at 09:00" in listed.text
    assert f"Cancel {number}. check the bank" in listed.card.labels

    cancelled = console.ask("cancel the reminder about the bank")
    assert cancelled.text.startswith("Cancelled: check the bank") and "No more reminders" in cancelled.text
    assert "check the bank" not in console.ask("/reminders").text
    # Done on a card left from before answers that the reminder is over, not when it fires next
    console.click("Done", on=second)
    redrawn = console.reply(where=lambda said: said.edit and said.id == second.id)
    assert redrawn.text == "That reminder was already cancelled."
    assert redrawn.card.buttons == () and redrawn.card.resolution == "Cancelled"
    # the morning after still has its job in the scheduler; when it comes due, nothing is posted
    [third_job] = [j for j in firings(cluster, reminder_id) if j not in (first_job, second_job)]
    shown = len(console.events())
    come_due(cluster, third_job)
    assert runs(cluster, third_job, 1) == {"reminder_id": reminder_id, "fired": False}
    assert len(console.events()) == shown and len(reminder_cards(console)) == 2


def test_a_task_is_renamed_snoozed_and_deleted(console):
    added = console.ask("/task add renew the domain")
    number = int(re.search(r"Added task #(\d+)", added.text).group(1))
    assert added.card.fields["Task"] == "renew the domain"

    renamed = console.ask(f"/task edit {number} renew the domain and the TLS certificate")
    assert renamed.text == f"Changed task #{number}: renew the domain and the TLS certificate"
    assert renamed.card.fields["Task"] == "renew the domain and the TLS certificate"
    assert f"#{number} renew the domain and the TLS certificate" in console.ask("/task list").text

    snoozed = console.ask(f"/task snooze {number} tomorrow 10am")
    assert snoozed.text.startswith(f"Snoozed task #{number} until ") and "10:00" in snoozed.text
    assert f"#{number} " not in console.ask("/task list").text.split("(+")[0]
    assert f"#{number} renew the domain" in console.ask("/task list snoozed").text

    console.click("Delete", on=renamed)
    deleted = console.reply(containing="Deleted task")
    assert deleted.text == f"Deleted task #{number}: renew the domain and the TLS certificate"
    assert deleted.card.resolution == "Deleted" and deleted.card.buttons == ()
    assert console.ask(f"/task delete {number}").text == f"There is no task #{number}."
    assert "renew the domain" not in console.ask("/task list").text
    assert "renew the domain" not in console.ask("/task list snoozed").text


def test_telegram_daily_reminder_fires_and_stop_repeating_ends_it(telegram, cluster):
    before = set(_registry(cluster).get_job_ids())
    confirmed = telegram.ask("/remind every day at 8am to water the plants")
    assert "water the plants every day at 08:00" in confirmed.text
    reminder_id = reminder_of(cluster, before)
    [(job_id, _)] = firings(cluster, reminder_id).items()

    come_due(cluster, job_id)
    card = card_reply(telegram)
    assert "Reminder: water the plants" in card.text and card.card.labels == CARD_BUTTONS
    assert card.card.fields["Repeats"] == "every day at 08:00"

    telegram.click("Stop repeating", on=card)
    stopped = telegram.reply(containing="Cancelled: water the plants")
    assert "No more reminders" in stopped.shown
    redrawn = telegram.reply(after=0, where=lambda said: said.edit and said.id == card.id)
    assert redrawn.card.buttons == () and "Stopped repeating" in redrawn.card.resolution
    assert "water the plants" not in telegram.ask("/reminders").text
