import base64
import json
from datetime import datetime, timedelta, timezone

from kernel.messages import Reply
from kernel.outbox import STREAM
from jobs.digest_jobs import remember_thread
from jobs.runtime import make_budgets
from kernel.settings import load_settings
from memory.events import EventLog
from kernel.keys import Keys
from tests.bot.conftest import deputy  # noqa: F401  (the console end to end)
from tests.jobs.test_cron import digests, tick

SEVEN_UTC = datetime(2025, 6, 2, 7, 0, tzinfo=timezone.utc)


def queued(redis) -> list[Reply]:
    return [Reply.model_validate_json(fields[b"reply"]) for _, fields in redis.xrange(STREAM)]


def test_the_digest_goes_to_the_thread_the_operator_last_used_on_each_platform(deputy, settings, monkeypatch):
    monkeypatch.setenv("DIGEST_CHANNELS", "console,slack,telegram")
    monkeypatch.setenv("DIGEST_TIME", "07:00")
    remember_thread(deputy.redis, settings.workspace, "slack", "C1:1700.1", {"channel": "C1", "thread_ts": "1700.1"})
    result = tick(deputy.redis, SEVEN_UTC)
    assert result["channels"] == ["console", "slack"] and result["skipped"] == ["telegram"]
    texts = [r for r in queued(deputy.redis) if r.reply_id.endswith(".text")]
    assert {(r.channel, r.thread_id) for r in texts} == {("console", "digest"), ("slack", "C1:1700.1")}
    assert next(r for r in texts if r.channel == "slack").reply_to == {"channel": "C1", "thread_ts": "1700.1"}
    [sent] = [e for e in EventLog(deputy.redis, settings.workspace).recent(50) if e.kind == "digest.sent"]
    assert sent.data["skipped"] == ["telegram"]


def test_a_digest_interrupted_halfway_is_finished_without_posting_twice(deputy, settings, monkeypatch):
    monkeypatch.setenv("DIGEST_TIME", "07:00")
    assert tick(deputy.redis, SEVEN_UTC)["sent"] is True
    before = len(queued(deputy.redis))
    # as if the worker died after posting but before marking the day done: the claim lapses
    deputy.redis.delete(Keys(settings.workspace)("digest", "day", "2025-06-02"))
    assert tick(deputy.redis, SEVEN_UTC + timedelta(minutes=11))["sent"] is True
    assert len(queued(deputy.redis)) == before


async def test_pending_spend_requests_wait_in_the_digest_with_live_buttons(deputy, settings, monkeypatch, redis):
    from agents.budget import Charge

    monkeypatch.setenv("DIGEST_TIME", "07:00")
    budgets = make_budgets(load_settings(), redis)
    budgets.ask(Charge(run_id="r1", project="clients"), "gpt-4o", estimate=40_000, scope="daily", spent=990_000, cap=1_000_000)
    tick(deputy.redis, SEVEN_UTC)
    await deputy.deliver()
    messages = await deputy.messages("digest")
    [digest] = digests(messages)
    assert "• Approve more spend for 'clients'? (card below)" in digest["text"]
    [card] = [m["card"] for m in messages if m["card"]]
    assert [b["action"] for b in card["buttons"]] == ["budget.approve", "budget.decline"]
    # clicking it in the digest thread decides the request
    approve = card["buttons"][0]
    await deputy.client.post("/api/decisions", json={"thread_id": "digest", "action": approve["action"],
                                                     "value": approve["value"], "client_id": "c1"})
    await deputy.work()
    assert budgets.granted("clients") == 30_000
    assert budgets.pending_requests() == []


async def test_budget_command_shows_spend_and_sets_the_monthly_cap(deputy, settings):
    from agents.costs import Spend

    ledger = make_budgets(load_settings(), deputy.redis).ledger
    ledger.record(Spend(run_id="r1", project="inbox", model="gpt-4o-mini", prompt_tokens=1000, completion_tokens=100,
                        cost=2_500, day=ledger.today().isoformat()))
    await deputy.say("/budget")
    await deputy.work()
    shown = (await deputy.messages())[-1]["text"]
    assert "• inbox: $0.0025 / $1.00 · $0.0025 / $20.00" in shown
    await deputy.say("/budget set 5")
    await deputy.say("/budget set lots")
    await deputy.work()
    texts = [m["text"] for m in await deputy.messages()]
    assert "Monthly budget for every project is now $5.00." in texts
    assert any(t.startswith("How much per month?") for t in texts)
    assert make_budgets(load_settings(), deputy.redis).caps_of("inbox") == (1_000_000, 5_000_000)


async def test_digest_command_posts_the_digest_in_the_asking_thread(deputy, settings):
    await deputy.say("/task add Call the accountant", thread_id="t5")
    await deputy.say("/digest", thread_id="t5")
    await deputy.work()
    messages = await deputy.messages("t5")
    [digest] = digests(messages)
    assert "• #1 Call the accountant" in digest["text"]
    # the console shows images: the spend chart comes as a PNG beside the text sparkline
    assert base64.b64decode(digest["image_png"]).startswith(b"\x89PNG")
    # an on-demand digest does not count as the daily one
    assert not deputy.redis.exists(Keys(settings.workspace)("digest", "last"))
    assert json.loads(deputy.redis.hget(Keys(settings.workspace)("digest", "threads"), "console"))["thread_id"] == "t5"

