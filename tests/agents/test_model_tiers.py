"""Model tiering: each kind of task (the call's purpose) goes to its model, light kinds to the cheaper one; the
ladder still degrades over budget; the ledger keeps spend per kind and model, and the digest and /budget show it."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from agents.budget import Budgets, Caps, Charge, OverBudget, charge_to
from agents.budgeted_llm import BudgetedLlm
from agents.cost_report import by_task
from agents.costs import CostLedger, PriceTable, Spend
from agents.digest import DigestBuilder
from agents.llm import Completion, ToolSpec, Usage
from agents.routine_skills import budget
from agents.skill_context import SkillContext
from jobs.runtime import budgeted
from kernel.messages import Intent
from kernel.settings import load_settings
from memory.events import EventLog
from memory.facts import FactStore
from memory.notes import NoteStore
from memory.tasks import TaskStore

PRICES = "big:0.01:0.03,small:0.0001:0.0002"
HI = [{"role": "user", "content": "hello"}]


class Scripted:
    """An inner model that answers every call with the same usage and remembers which model each call asked for."""

    def __init__(self) -> None:
        self.models: list[str | None] = []
        self.options: list[dict[str, Any]] = []

    def complete(self, messages: list[dict[str, Any]], tools: list[ToolSpec] | None = None, model: str | None = None,
                 purpose: str = "", **options: Any) -> Completion:
        self.models.append(model)
        self.options.append(options)
        return Completion(text="ok", usage=Usage(prompt_tokens=100, completion_tokens=20), model=model or "")


def tiered(redis, daily: float = 1.0) -> tuple[BudgetedLlm, Scripted, Budgets]:
    inner = Scripted()
    budgets = Budgets(redis, CostLedger(redis, "ws", "Europe/Lisbon"), Caps.parse(daily, 0))
    llm = BudgetedLlm(inner, budgets, PriceTable.parse(PRICES), EventLog(redis, "ws"), model="big", cheap_model="small",
                      max_completion_tokens=100, tiers={"plan": "big", "draft": "big", "intent": "small", "ask": "small"})
    return llm, inner, budgets


def test_each_kind_of_task_goes_to_its_model(redis):
    llm, inner, budgets = tiered(redis)
    with charge_to(Charge(run_id="r1")):
        for purpose in ("intent", "plan", "ask", "draft", ""):
            llm.complete(HI, purpose=purpose)
        llm.complete(HI, purpose="intent", model="big")  # a caller that names the model gets it

    assert inner.models == ["small", "big", "small", "big", "big", "big"]
    assert CostLedger.by_kind(budgets.ledger.day()) == {
        "intent": {"small": 14, "big": 1_600}, "plan": {"big": 1_600}, "ask": {"small": 14}, "draft": {"big": 1_600},
        "other": {"big": 1_600}}
    calls = [(e.data["purpose"], e.data["model"]) for e in EventLog(redis, "ws").timeline("r1") if e.kind == "llm.call"]
    assert calls[:2] == [("intent", "small"), ("plan", "big")]


def test_over_budget_a_plan_still_degrades_to_the_cheaper_model(redis):
    llm, inner, budgets = tiered(redis, daily=0.002)  # "big" with 100 completion tokens is priced over $0.003
    with charge_to(Charge(run_id="r1")):
        llm.complete(HI, purpose="plan")

    assert inner.models == ["small"]
    assert CostLedger.by_kind(budgets.ledger.day()) == {"plan": {"small": 14}}
    assert [e.kind for e in EventLog(redis, "ws").timeline("r1")] == ["budget.degraded", "llm.call"]


def test_llm_models_reaches_the_budgeted_model(redis, monkeypatch):
    monkeypatch.setenv("OPENAI_MODEL", "big")
    monkeypatch.setenv("OPENAI_CHEAP_MODEL", "small")
    monkeypatch.setenv("LLM_MODELS", "draft=mid")
    settings = load_settings()
    llm = budgeted(Scripted(), settings, EventLog(redis, "ws"), Budgets(redis, CostLedger(redis, "ws"), Caps.parse(1, 0)))

    assert isinstance(llm, BudgetedLlm)
    assert dict(llm.tiers) == {"intent": "small", "slots": "small", "plan": "big", "draft": "mid", "digest": "small", "ask": "small"}


def test_each_kind_of_task_sends_the_max_tokens_its_call_is_held_for(redis, monkeypatch):
    monkeypatch.setenv("OPENAI_MODEL", "big")
    monkeypatch.setenv("LLM_MODELS", '{"draft": {"max_tokens": 900}, "plan": {"model": "mid"}}')
    inner = Scripted()
    budgets = Budgets(redis, CostLedger(redis, "ws"), Caps.parse(1, 0))
    llm = budgeted(inner, load_settings(), EventLog(redis, "ws"), budgets)
    kinds = ("intent", "slots", "plan", "draft", "digest", "ask", "")
    with charge_to(Charge(run_id="r1")):
        for kind in kinds:
            llm.complete(HI, purpose=kind)

    assert [o["max_tokens"] for o in inner.options] == [256, 256, 800, 900, 400, 500, 1024]
    assert inner.models[2:4] == ["mid", "big"]  # a kind's model and its bound are set apart
    calls = [e.data for e in EventLog(redis, "ws").timeline("r1") if e.kind == "llm.call"]
    assert [c["max_tokens"] for c in calls] == [256, 256, 800, 900, 400, 500, 1024]
    assert all(c["completion_tokens"] <= c["max_tokens"] and c["finish_reason"] == "" for c in calls)

    monkeypatch.setenv("LLM_MAX_COMPLETION_TOKENS", "300")  # every kind LLM_MODELS does not bound
    inner.options.clear()
    llm = budgeted(inner, load_settings(), EventLog(redis, "ws"), budgets)
    for kind in kinds:
        llm.complete(HI, purpose=kind)
    assert [o["max_tokens"] for o in inner.options] == [300, 300, 300, 900, 300, 300, 300]


def test_a_call_is_priced_at_its_own_max_tokens(redis):
    budgets = Budgets(redis, CostLedger(redis, "ws"), Caps.parse(0.002, 0))
    llm = BudgetedLlm(Scripted(), budgets, PriceTable.parse(PRICES), EventLog(redis, "ws"), model="big",
                      max_completion_tokens=100, limits={"intent": 10})
    # 10 completion tokens on "big" fit a $0.002 cap; 100 (about $0.003) would not
    assert llm.complete(HI, purpose="intent").text == "ok"
    with pytest.raises(OverBudget):
        llm.complete(HI, purpose="plan")


def test_spend_recorded_before_kinds_were_is_still_read(redis):
    ledger = CostLedger(redis, "ws", "Europe/Lisbon")
    day = ledger.today()
    # a ledger written before the kind of task was: the total and the model only
    for key in (ledger.day_key(day), ledger.month_key(day)):
        redis.hset(key, mapping={"total": 5_000, "m:gpt-4o": 5_000, "calls": 2})
    ledger.record(Spend(run_id="r", project="inbox", model="small", prompt_tokens=10, completion_tokens=1, cost=100,
                        day=day.isoformat(), kind="ask"))

    assert by_task(ledger.month()) == ["ask $0.0001 on small", "earlier calls $0.005 (task not recorded)"]
    assert CostLedger.breakdown(ledger.month(), "m:") == {"gpt-4o": 5_000, "small": 100}


@pytest.fixture
def spent(redis) -> Budgets:
    llm, _, budgets = tiered(redis)
    with charge_to(Charge(run_id="r1")):
        llm.complete(HI, purpose="plan")
        llm.complete(HI, purpose="plan")
        llm.complete(HI, purpose="intent")
    return budgets


def test_the_digest_shows_spend_per_kind_of_task(redis, spent):
    builder = DigestBuilder(EventLog(redis, "ws"), TaskStore(redis, "ws"), NoteStore(redis, "ws"), FactStore(redis, "ws"),
                            "Europe/Lisbon", budgets=spent)
    text = builder.build(dt.datetime.now(dt.timezone.utc)).text

    assert "• by task this month: plan $0.0032 on big · intent $0.00 on small" in text, text


def test_budget_shows_spend_per_kind_of_task(redis, spent):
    ctx = SkillContext(workspace="ws", trace_id="b1", actor="operator", thread_id="t1", tasks=TaskStore(redis, "ws"),
                       facts=FactStore(redis, "ws"), notes=NoteStore(redis, "ws"), events=EventLog(redis, "ws"), help_text="",
                       budgets=spent)
    text = budget(ctx, Intent(name="budget")).text

    assert "By task this month: plan $0.0032 on big · intent $0.00 on small" in text, text


def test_deputy_costs_lists_spend_per_kind_of_task_and_model(spent):
    from agents.cost_report import render, report

    table = render(spent)
    assert "task       model                         today      month" in table
    assert "plan       big                         $0.0032    $0.0032" in table
    assert report(spent)["tasks_month"] == {"plan": {"big": 0.0032}, "intent": {"small": 0.000014}}
