"""The daily digest on cron: one per workspace and local day, late when it has to be, at local time across DST."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from rq.job import Job
from rq.serializers import JSONSerializer

from jobs.cron import CRON, build_scheduler
from jobs.digest_jobs import digest_tick
from jobs.queues import BACKGROUND, JobQueues
from jobs.worker import run_burst
from tests.bot.conftest import deputy  # noqa: F401  (the console end to end)

NY = ZoneInfo("America/New_York")


def digests(messages: list[dict]) -> list[dict]:
    return [m for m in messages if m["text"].startswith("☀️ Your digest")]


def tick(redis, now: datetime) -> dict:
    """One cron tick at a chosen moment, run by a real worker."""
    job = JobQueues(redis).enqueue("jobs.digest_jobs.digest_tick", {"workspace": "default", "now": now.isoformat()},
                                   job_id=f"tick-{int(now.timestamp())}", queue=BACKGROUND)
    run_burst(redis)
    return Job.fetch(job.id, connection=redis, serializer=JSONSerializer).return_value()


def digest_cron(redis, settings):
    """A scheduler as `deputy cron` builds it, with only the digest tick (other periodic jobs are not under test)."""
    return build_scheduler(redis, settings, periodic=[p for p in CRON if p.func is digest_tick])


def midday_zone() -> str:
    """A fixed-offset zone where it is around noon now, so 'two hours ago' is still today."""
    offset = 12 - datetime.now(timezone.utc).hour
    offset = max(-12, min(14, offset))
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"


def test_the_digest_tick_is_on_the_cron_list():
    assert any(p.func is digest_tick and p.interval_s == 60 for p in CRON)


async def test_two_cron_processes_at_once_send_one_digest(deputy, settings, monkeypatch):
    zone = midday_zone()
    monkeypatch.setenv("TIMEZONE", zone)
    monkeypatch.setenv("DIGEST_TIME", (datetime.now(ZoneInfo(zone)) - timedelta(minutes=1)).strftime("%H:%M"))
    # two schedulers, as two `deputy cron` processes would have, both firing at start-up
    first, second = digest_cron(deputy.redis, settings), digest_cron(deputy.redis, settings)
    assert len(first.enqueue_jobs()) == 1 and len(second.enqueue_jobs()) == 1
    assert JobQueues(deputy.redis).queue(BACKGROUND).count == 2
    await deputy.work()
    [digest] = digests(await deputy.messages("digest"))
    assert "comes late" not in digest["text"]
    # a minute later both tick again: still one
    for scheduler in (first, second):
        for job in scheduler.get_jobs():
            job.next_enqueue_time = datetime.now(timezone.utc) - timedelta(seconds=1)
        scheduler.enqueue_jobs()
    await deputy.work()
    assert len(digests(await deputy.messages("digest"))) == 1


async def test_a_restart_after_the_digest_time_sends_one_late_digest_that_says_so(deputy, settings, monkeypatch):
    zone = midday_zone()
    local = datetime.now(ZoneInfo(zone))
    monkeypatch.setenv("TIMEZONE", zone)
    monkeypatch.setenv("DIGEST_TIME", (local - timedelta(hours=2)).strftime("%H:%M"))
    # Deputy was down at the digest time; cron starts now and ticks at once
    digest_cron(deputy.redis, settings).enqueue_jobs()
    await deputy.work()
    [digest] = digests(await deputy.messages("digest"))
    assert f"was due at {(local - timedelta(hours=2)):%H:%M} and comes late" in digest["text"]
    # and restarts again: nothing more today
    digest_cron(deputy.redis, settings).enqueue_jobs()
    await deputy.work()
    assert len(digests(await deputy.messages("digest"))) == 1


async def test_the_digest_follows_local_time_across_dst(deputy, monkeypatch):
    monkeypatch.setenv("TIMEZONE", "America/New_York")
    monkeypatch.setenv("DIGEST_TIME", "08:00")
    at = lambda *a: datetime(*a, tzinfo=timezone.utc)  # noqa: E731
    # Saturday 8 March 2025, EST (UTC-5): 08:00 local is 13:00 UTC
    assert tick(deputy.redis, at(2025, 3, 8, 12, 59))["reason"] == "not due"
    assert tick(deputy.redis, at(2025, 3, 8, 13, 0)) == {"sent": True, "late": False, "day": "2025-03-08",
                                                         "channels": ["console"], "skipped": []}
    # Sunday 9 March: clocks spring forward, EDT (UTC-4): 08:00 local is now 12:00 UTC
    assert tick(deputy.redis, at(2025, 3, 9, 11, 59))["reason"] == "not due"
    assert tick(deputy.redis, at(2025, 3, 9, 12, 0))["sent"] is True
    assert tick(deputy.redis, at(2025, 3, 9, 13, 0))["reason"] == "already sent"
    # Sunday 2 November: back to EST, 08:00 local is 13:00 UTC again
    assert tick(deputy.redis, at(2025, 11, 2, 12, 0))["reason"] == "not due"
    assert tick(deputy.redis, at(2025, 11, 2, 13, 0))["late"] is False
    await deputy.deliver()
    sent = digests(await deputy.messages("digest"))
    # (delivery order within one batch is not guaranteed)
    assert sorted(m["text"].split("\n")[0] for m in sent) == [
        "☀️ Your digest for Saturday 08 March", "☀️ Your digest for Sunday 02 November", "☀️ Your digest for Sunday 09 March"]


def test_a_digest_time_inside_the_spring_forward_gap_is_sent_when_the_clocks_pass_it(deputy, monkeypatch):
    monkeypatch.setenv("TIMEZONE", "America/New_York")
    monkeypatch.setenv("DIGEST_TIME", "02:30")  # does not exist on 9 March 2025: 02:00 jumps to 03:00
    assert tick(deputy.redis, datetime(2025, 3, 9, 7, 29, tzinfo=timezone.utc))["reason"] == "not due"
    result = tick(deputy.redis, datetime(2025, 3, 9, 7, 30, tzinfo=timezone.utc))  # 03:30 EDT
    assert result["sent"] is True and result["late"] is False


def test_a_bad_digest_time_says_how_to_write_it(deputy, monkeypatch):
    from jobs.digest_jobs import due_at

    import pytest

    with pytest.raises(ValueError, match="write it as HH:MM"):
        due_at(datetime(2025, 1, 1).date(), "8am", "UTC")
