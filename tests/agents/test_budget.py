from datetime import datetime, timezone

import pytest
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from agents.budget import Budgets, Caps, Charge, Hold, OverBudget, charge_to
from agents.budgeted_llm import BudgetedLlm
from agents.costs import CostLedger, PriceTable
from agents.llm import LlmUnavailable, OpenAiLlm
from agents.skills import SKILLS
from kernel.messages import Decision, Inbound
from jobs.queues import DEFAULT, JobQueues
from jobs.runtime import current_runtime, make_budgets
from kernel.settings import load_settings
from jobs.scheduling import RqScheduler
from memory.events import EventLog

PRICES = "big:0.01:0.03,small:0.0001:0.0002"
HI = [{"role": "user", "content": "hello"}]


class Clock:
    def __init__(self, when: datetime) -> None:
        self.when = when

    def __call__(self) -> datetime:
        return self.when


def make(redis, server, daily=1.0, monthly=0.0, cheap=None, clock=None, scheduler=None, max_tokens=100):
    ledger = CostLedger(redis, "ws", "Europe/Berlin", clock=clock)
    budgets = Budgets(redis, ledger, Caps.parse(daily, monthly), scheduler)
    llm = BudgetedLlm(OpenAiLlm(server.base_url, None, "big"), budgets, PriceTable.parse(PRICES),
                      EventLog(redis, "ws"), model="big", cheap_model=cheap, max_completion_tokens=max_tokens)
    return llm, budgets


def test_actual_usage_is_recorded_against_run_and_project(redis, openai_server):
    llm, budgets = make(redis, openai_server)
    with charge_to(Charge(run_id="run1", project="clients")):
        llm.complete(HI)
    # the scripted server reports 100 prompt and 20 completion tokens: 100*0.01/1k + 20*0.03/1k = $0.0016
    assert budgets.ledger.run("run1").cost == 1_600
    assert budgets.ledger.project_day("clients") == 1_600
    kinds = [e.kind for e in EventLog(redis, "ws").timeline("run1")]
    assert kinds == ["llm.call"]


def test_a_call_over_the_daily_cap_never_reaches_the_model(redis, openai_server):
    # estimate for "big" with 100 completion tokens is over $0.003: more than a $0.002 cap
    llm, budgets = make(redis, openai_server, daily=0.002)
    with charge_to(Charge(run_id="run1", project="inbox")), pytest.raises(OverBudget) as over:
        llm.complete(HI)
    assert openai_server.requests == []
    card = over.value.outcome.card
    assert card is not None and [b.action for b in card.buttons] == ["budget.approve", "budget.decline"]
    assert over.value.request is not None and over.value.request.scope == "daily"
    assert budgets.ledger.day() == {}
    assert [e.kind for e in EventLog(redis, "ws").timeline("run1")] == ["budget.refused"]


def test_the_monthly_cap_is_checked_too(redis, openai_server):
    llm, _ = make(redis, openai_server, daily=0, monthly=0.002)
    with pytest.raises(OverBudget) as over:
        llm.complete(HI)
    assert over.value.request is not None and over.value.request.scope == "monthly"
    assert openai_server.requests == []


def test_over_budget_degrades_to_the_cheaper_model_when_it_fits(redis, openai_server):
    llm, budgets = make(redis, openai_server, daily=0.002, cheap="small")
    with charge_to(Charge(run_id="run1")):
        llm.complete(HI)
    assert [r["body"]["model"] for r in openai_server.requests] == ["small"]
    assert [e.kind for e in EventLog(redis, "ws").timeline("run1")] == ["budget.degraded", "llm.call"]
    assert CostLedger.breakdown(budgets.ledger.day(), "m:") == {"small": 14}


def test_holds_stop_two_workers_taking_the_last_of_a_budget(redis, openai_server):
    _, budgets = make(redis, openai_server, daily=0.01)
    first = budgets.reserve("inbox", 6_000)
    second = budgets.reserve("inbox", 6_000)
    assert isinstance(first, Hold)
    assert second == ("daily", 6_000, 10_000)
    budgets.settle(first, None)  # released without spending: the budget is whole again
    assert isinstance(budgets.reserve("inbox", 6_000), Hold)


def test_a_failed_call_releases_its_hold_and_costs_nothing(redis, openai_server):
    openai_server.answer({"status": 500}, {"content": "ok"})
    llm, budgets = make(redis, openai_server, daily=0.005)
    with pytest.raises(LlmUnavailable):
        llm.complete(HI)
    assert budgets.ledger.day() == {}
    llm.complete(HI)  # would not fit if the failed call's hold were still counted
    assert len(openai_server.requests) == 2


def test_approving_raises_the_cap_for_that_day_only(redis, openai_server):
    clock = Clock(datetime(2025, 6, 2, 10, 0, tzinfo=timezone.utc))
    llm, budgets = make(redis, openai_server, daily=0.002, clock=clock)
    with pytest.raises(OverBudget) as over:
        llm.complete(HI)
    request = over.value.request
    assert request is not None
    decided, fresh = budgets.decide(request.id, approve=True, by="operator")
    assert fresh and decided is not None and decided.status == "approved"
    assert budgets.decide(request.id, approve=True, by="operator")[1] is False  # a second click changes nothing
    llm.complete(HI)
    assert len(openai_server.requests) == 1
    clock.when = datetime(2025, 6, 3, 10, 0, tzinfo=timezone.utc)
    with pytest.raises(OverBudget):
        llm.complete(HI)
    assert len(openai_server.requests) == 1


def test_a_decision_job_that_died_before_queuing_the_resume_resumes_on_its_retry(redis, openai_server):
    class Flaky:
        def __init__(self) -> None:
            self.calls: list[str] = []
            self.fail = True

        def run_now(self, func, payload, job_id):  # type: ignore[no-untyped-def]
            if self.fail:
                self.fail = False
                raise ConnectionError("worker killed here")
            self.calls.append(job_id)

        def run_at(self, func, payload, job_id, at):  # type: ignore[no-untyped-def]
            raise AssertionError("not used")

    scheduler = Flaky()
    llm, budgets = make(redis, openai_server, daily=0.002, scheduler=scheduler)
    charge = Charge(run_id="r1", resume_func="jobs.tasks.handle_message", resume_payload={"x": 1})
    with charge_to(charge), pytest.raises(OverBudget) as over:
        llm.complete(HI)
    request = over.value.request
    with pytest.raises(ConnectionError):
        budgets.decide(request.id, approve=True, by="operator")
    # the retried decision job: not fresh any more, but the resume was never queued
    assert budgets.decide(request.id, approve=True, by="operator")[1] is False
    assert len(scheduler.calls) == 1
    # and once queued, later clicks queue nothing more
    budgets.decide(request.id, approve=True, by="operator")
    assert len(scheduler.calls) == 1


def test_background_work_over_budget_waits_for_tomorrow(redis, openai_server):
    queues = JobQueues(redis)
    clock = Clock(datetime(2025, 6, 2, 20, 0, tzinfo=timezone.utc))
    llm, _ = make(redis, openai_server, daily=0.002, clock=clock, scheduler=RqScheduler(queues))
    charge = Charge(run_id="triage1", resume_func="jobs.tasks.handle_message", resume_payload={"x": 1}, when_over="defer")
    with charge_to(charge), pytest.raises(OverBudget) as over:
        llm.complete(HI)
    assert over.value.request is None and "tomorrow at 00:05" in over.value.outcome.text
    registry = ScheduledJobRegistry(DEFAULT, connection=redis, serializer=JSONSerializer)
    [job_id] = registry.get_job_ids()
    # midnight and five in Berlin (UTC+2 in June) is 22:05 UTC
    assert registry.get_scheduled_time(job_id) == datetime(2025, 6, 2, 22, 5, tzinfo=timezone.utc)
    assert openai_server.requests == []


async def over_budget_card(deputy, openai_server, monkeypatch, redis) -> dict:
    """/ask through a model whose call would pass a $0.0002 daily cap: the reply is a spend card."""
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_MODEL", "gpt-4o-mini")
    # a model on loopback is free unless LLM_PRICES names it
    monkeypatch.setenv("LLM_PRICES", "gpt-4o-mini:0.00015:0.0006")
    # gpt-4o-mini with 1024 completion tokens is priced at about $0.0006 before the call
    monkeypatch.setenv("BUDGET_DAILY_USD", "0.0002")
    openai_server.answer({"content": "Ana's number is in the CRM."})

    def ask_the_model(ctx, intent):
        from kernel.messages import Outcome

        return Outcome(text=current_runtime().llm.complete([{"role": "user", "content": intent.text}]).text)

    monkeypatch.setitem(SKILLS, "ask", ask_the_model)
    await deputy.say("/ask where is Ana's number")
    await deputy.work()
    return (await deputy.messages())[-1]["card"]


async def test_over_budget_request_posts_a_card_and_approving_runs_it_once(deputy, openai_server, monkeypatch, redis):
    card = await over_budget_card(deputy, openai_server, monkeypatch, redis)
    assert openai_server.requests == [] and len(await deputy.messages()) == 2
    assert card["title"] == "Approve more spend for 'inbox'?"
    approve = next(b for b in card["buttons"] if b["action"] == "budget.approve")

    for _ in range(2):  # a double click must not run it twice
        resp = await deputy.client.post("/api/decisions", json={"thread_id": "t1", "action": approve["action"],
                                                                "value": approve["value"], "client_id": f"click-{_}"})
        assert resp.status == 202
    await deputy.work()
    await deputy.work()
    assert len(openai_server.requests) == 1
    messages = await deputy.messages()
    assert [m["text"] for m in messages if m["text"] == "Ana's number is in the CRM."] == ["Ana's number is in the CRM."]
    # the card was answered in place; the second click was told it came too late
    [card_message] = [m for m in messages if m["card"]]
    assert card_message["card"]["resolution"] == "Approved by operator: $0.01 more for today ✓"
    assert card_message["card"]["buttons"] == []
    assert card_message["text"] == "Approved $0.01 more for 'inbox' today and I'm running your request again."
    assert "Already approved by operator." in [m["text"] for m in messages]
    rows = {row["project"]: row for row in make_budgets(load_settings(), redis).status()}
    assert rows["inbox"]["extra_today"] == 10_000 and rows["inbox"]["calls_today"] == 1


async def from_zed(deputy, delivery: Decision | Inbound) -> str:
    """A message or click from zed, the console's other operator, carried out; the trace id it started."""
    take = deputy.services.gateway.decide if isinstance(delivery, Decision) else deputy.services.gateway.accept
    ack = await take(delivery)
    assert ack.status == "accepted"
    await deputy.work()
    return ack.trace_id


async def test_only_an_approver_may_approve_more_spend(deputy, openai_server, monkeypatch, redis, settings):
    # APPROVERS=operator; zed is an operator of the console but not an approver
    card = await over_budget_card(deputy, openai_server, monkeypatch, redis)
    approve = next(b for b in card["buttons"] if b["action"] == "budget.approve")
    for action, doing in (("budget.approve", "approve more spend"), ("budget.decline", "decline a request for more spend")):
        click = Decision(channel="console", event_id=f"zed-{action}", user_id="zed", thread_id="t1", action=action, value=approve["value"])
        trace_id = await from_zed(deputy, click)
        assert (await deputy.messages())[-1]["text"] == f"Only an approver (operator) can {doing}. Nothing was changed."
        [refused] = [e for e in EventLog(redis, settings.workspace).timeline(trace_id) if e.kind == "spend.refused"]
        assert refused.actor == "zed" and refused.data["reason"] == "not an approver"
    budgets = make_budgets(load_settings(), redis)
    assert budgets.granted("inbox") == 0 and [r.id for r in budgets.pending_requests()] == [approve["value"]]
    assert openai_server.requests == []

    # the card still has its buttons, and the approver's click works
    resp = await deputy.client.post("/api/decisions", json={"thread_id": "t1", "action": "budget.approve",
                                                            "value": approve["value"], "client_id": "op-1"})
    assert resp.status == 202
    await deputy.work()
    await deputy.work()
    assert budgets.granted("inbox") == 10_000 and len(openai_server.requests) == 1
    assert "Ana's number is in the CRM." in [m["text"] for m in await deputy.messages()]


async def test_only_an_approver_may_set_a_budget(deputy, redis, settings):
    budgets = make_budgets(load_settings(), redis)
    before = budgets.caps_of("inbox")
    trace_id = await from_zed(deputy, Inbound(channel="console", event_id="zed-1", user_id="zed", thread_id="t1", text="/budget set 500"))
    assert (await deputy.messages())[-1]["text"] == "Only an approver (operator) can set a budget. Nothing was changed."
    assert budgets.caps_of("inbox") == before
    [refused] = [e for e in EventLog(redis, settings.workspace).timeline(trace_id) if e.kind == "spend.refused"]
    assert refused.actor == "zed" and refused.data["reason"] == "not an approver" and refused.data["attempt"] == "set"

    await deputy.say("/budget set 30")
    await deputy.work()
    assert (await deputy.messages())[-1]["text"] == "Monthly budget for every project is now $30.00."
    assert budgets.caps_of("inbox")[1] == 30_000_000


async def test_without_approvers_every_operator_may_set_a_budget(deputy, redis, monkeypatch):
    monkeypatch.delenv("APPROVERS")
    await from_zed(deputy, Inbound(channel="console", event_id="zed-1", user_id="zed", thread_id="t1", text="/budget set 12"))
    assert (await deputy.messages())[-1]["text"] == "Monthly budget for every project is now $12.00."
    assert make_budgets(load_settings(), redis).caps_of("inbox")[1] == 12_000_000
