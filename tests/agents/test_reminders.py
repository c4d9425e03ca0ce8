from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from agents.reminders import ReminderError, parse
from jobs.queues import DEFAULT
from tests.waiting import until

LISBON = "Europe/Lisbon"
# Wednesday 5 March 2025, noon in Lisbon
NOW = datetime(2025, 3, 5, 12, 0, tzinfo=ZoneInfo(LISBON))


@pytest.mark.parametrize("text, what, due", [
    ("remind me to call Ana Friday 10am", "call Ana", datetime(2025, 3, 7, 10, 0)),
    ("call Ana Friday 10am about the lease", "call Ana about the lease", datetime(2025, 3, 7, 10, 0)),
    ("can you remind me to send the invoice tomorrow at 9", "send the invoice", datetime(2025, 3, 6, 9, 0)),
    ("remind me in two hours to stretch", "stretch", datetime(2025, 3, 5, 14, 0)),
    ("pay rent next monday", "pay rent", datetime(2025, 3, 10, 9, 0)),  # a day without a time: 09:00
    ("ping me at 11am to check the bank transfer", "check the bank transfer", datetime(2025, 3, 6, 11, 0)),  # 11:00 has passed today
])
def test_natural_language_reminders_in_the_operators_zone(text, what, due):
    draft = parse(text, LISBON, NOW)
    assert draft.what == what
    assert draft.due == due.replace(tzinfo=ZoneInfo(LISBON))


@pytest.mark.parametrize("text, problem", [
    ("call Ana", "could not find a time"),
    ("remind me Friday 10am", "What should I remind you of?"),
    ("call Ana yesterday", "has already passed"),
])
def test_reminders_that_cannot_be_set_say_how_to_write_one(text, problem):
    with pytest.raises(ReminderError, match=problem) as err:
        parse(text, LISBON, NOW)
    assert "/remind call Ana Friday 10am" in str(err.value)


async def fires(deputy, thread_id: str) -> dict:  # type: ignore[no-untyped-def]
    """The reminder's message, once workers run until it is in the thread."""
    async def fired() -> dict | None:
        await deputy.work()
        last = (await deputy.messages(thread_id))[-1]
        return last if last["text"].startswith("⏰ Reminder:") else None

    return await until(fired, timeout=10, interval=0.1, what=f"the reminder in {thread_id}")


def scheduled(redis) -> dict[str, datetime]:
    registry = ScheduledJobRegistry(DEFAULT, connection=redis, serializer=JSONSerializer)
    return {job_id: registry.get_scheduled_time(job_id) for job_id in registry.get_job_ids()}


async def test_a_reminder_fires_in_its_thread_once_due_with_snooze_and_done(deputy, redis):
    ack = await deputy.say("/remind stretch in 2 seconds", thread_id="t9")
    await deputy.work()
    [_, confirmation] = await deputy.messages("t9")
    assert confirmation["text"].startswith("OK, I'll remind you to stretch on ")
    [(job_id, at)] = scheduled(redis).items()
    assert abs((at - datetime.now(timezone.utc)).total_seconds()) < 3

    await deputy.work()  # before it is due: nothing
    assert len(await deputy.messages("t9")) == 2
    # once due, a worker's scheduler moves the job to its queue and runs it
    fired = await fires(deputy, "t9")
    assert datetime.now(timezone.utc) >= at
    assert fired["text"] == "⏰ Reminder: stretch" and fired["trace_id"] == ack["trace_id"]
    assert [b["label"] for b in fired["card"]["buttons"]] == ["Snooze 15 min", "Snooze 1 h", "Tomorrow", "Done"]
    await deputy.work()  # running again posts nothing more
    assert len(await deputy.messages("t9")) == 3

    snooze = fired["card"]["buttons"][0]
    for n in range(2):  # the second click on the same card changes nothing
        await deputy.client.post("/api/decisions", json={"thread_id": "t9", "action": snooze["action"], "value": snooze["value"],
                                                         "client_id": f"snooze-{n}"})
        await deputy.work()
    messages = await deputy.messages("t9")
    [card] = [m for m in messages if m["card"]]
    assert card["text"].startswith("Snoozed: I'll remind you again")
    assert card["card"]["resolution"].startswith("Snoozed until") and card["card"]["buttons"] == []
    assert "That reminder was already snoozed." in [m["text"] for m in messages]
    later = scheduled(redis)
    assert list(later) == [job_id.removesuffix("-0") + "-1"]
    assert timedelta(minutes=14) < list(later.values())[0] - datetime.now(timezone.utc) <= timedelta(minutes=15)


async def test_done_closes_the_reminder_and_a_stale_firing_stays_quiet(deputy, redis):
    from jobs.reminder_jobs import fire
    from jobs.runtime import open_runtime
    from kernel.settings import load_settings

    await deputy.say("/remind water the plants in 1 second", thread_id="t3")
    await deputy.work()
    fired = await fires(deputy, "t3")
    done = fired["card"]["buttons"][-1]
    await deputy.client.post("/api/decisions", json={"thread_id": "t3", "action": done["action"], "value": done["value"],
                                                     "client_id": "done-1"})
    await deputy.work()
    closed = (await deputy.messages("t3"))[-1]
    assert closed["text"] == "Done: water the plants" and closed["card"]["resolution"] == "Done ✓"
    with open_runtime(load_settings(), redis) as rt:
        [reminder] = [r for r in (rt.reminders.get(i) for i in [done["value"].split(":")[0]]) if r]
        # a retried or late job for the same reminder posts nothing once it is done
        assert fire(rt, reminder.id, reminder.due) == {"reminder_id": reminder.id, "fired": False}


async def test_a_reminder_without_a_time_asks_when_and_the_answer_sets_it(deputy):
    await deputy.say("/remind call Ana", thread_id="t4")
    await deputy.work()
    question = (await deputy.messages("t4"))[-1]
    assert question["text"].startswith("When should I remind you?")
    await deputy.say("tomorrow at 9", thread_id="t4")
    await deputy.work()
    answer = (await deputy.messages("t4"))[-1]
    assert answer["text"].startswith("OK, I'll remind you to call Ana on ") and "at 09:00" in answer["text"]
    await deputy.say("/remind water the plants", thread_id="t5")
    await deputy.work()
    await deputy.say("whenever", thread_id="t5")
    await deputy.work()
    unclear = (await deputy.messages("t5"))[-1]
    assert unclear["ok"] is False and "could not find a time" in unclear["text"]
