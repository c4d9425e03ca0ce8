"""`deputy costs`: spend per project against its caps, per model, per kind of task, and per day, as a table or JSON;
and the per-task lines the digest and /budget show."""
from __future__ import annotations

from typing import Any, Mapping

from agents.budget import Budgets
from agents.costs import CostLedger, money, usd
from agents.spend_chart import sparkline


def report(budgets: Budgets, days: int = 14) -> dict[str, Any]:
    ledger = budgets.ledger
    today, month = ledger.day(), ledger.month()
    series = ledger.daily_series(days)
    return {
        "today": ledger.today().isoformat(),
        "timezone": str(ledger.tz.key),
        "projects": [
            {**row, **{k: (None if row[k] is None else usd(row[k])) for k in ("today", "month", "daily_cap", "monthly_cap", "extra_today")}}
            for row in budgets.status()
        ],
        "models_today": {m: usd(v) for m, v in CostLedger.breakdown(today, "m:").items()},
        "models_month": {m: usd(v) for m, v in CostLedger.breakdown(month, "m:").items()},
        "tasks_today": {k: {m: usd(v) for m, v in models.items()} for k, models in CostLedger.by_kind(today).items()},
        "tasks_month": {k: {m: usd(v) for m, v in models.items()} for k, models in CostLedger.by_kind(month).items()},
        "tokens_today": {"prompt": today.get("tokens_in", 0), "completion": today.get("tokens_out", 0)},
        "days": [{"day": d.isoformat(), "usd": usd(v)} for d, v in series],
        "pending_requests": len(budgets.pending_requests()),
        "free_month": {m: {"why": why, "calls": calls} for m, (why, calls) in CostLedger.unpriced(month).items()},
    }


def render(budgets: Budgets, days: int = 14) -> str:
    data = report(budgets, days)
    cap = lambda micro: "—" if micro is None else money(micro)  # noqa: E731
    lines = [f"Model spend, workspace '{budgets.keys.workspace}' ({data['timezone']}), today {data['today']}", ""]
    lines.append(f"{'project':<16} {'today':>10} {'daily cap':>10} {'month':>10} {'monthly cap':>12} {'calls':>6}")
    for row in budgets.status():
        lines.append(f"{row['project']:<16} {money(row['today']):>10} {cap(row['daily_cap']):>10} {money(row['month']):>10} "
                     f"{cap(row['monthly_cap']):>12} {row['calls_today']:>6}")
    models = CostLedger.breakdown(budgets.ledger.month(), "m:")
    if models:
        lines += ["", f"{'model':<24} {'today':>10} {'month':>10}"]
        today = CostLedger.breakdown(budgets.ledger.day(), "m:")
        for model, spent in sorted(models.items(), key=lambda kv: -kv[1]):
            lines.append(f"{model:<24} {money(today.get(model, 0)):>10} {money(spent):>10}")
    lines += _task_table(budgets.ledger.day(), budgets.ledger.month())
    free = free_models(budgets.ledger.month())
    lines += ["", *free] if free else []
    series = budgets.ledger.daily_series(days)
    lines += ["", f"last {days} days: {sparkline([v for _, v in series])}"]
    lines += [f"  {d.isoformat()}  {money(v):>10}" for d, v in series if v]
    if data["pending_requests"]:
        lines += ["", f"{data['pending_requests']} request(s) for more spend are waiting in chat."]
    return "\n".join(lines)


def _task_table(today: Mapping[str, int], month: Mapping[str, int]) -> list[str]:
    kinds = CostLedger.by_kind(month)
    if not kinds:
        return []
    lines = ["", f"{'task':<10} {'model':<24} {'today':>10} {'month':>10}"]
    now = CostLedger.by_kind(today)
    for kind, models in sorted(kinds.items(), key=lambda kv: -sum(kv[1].values())):
        for model, spent in sorted(models.items(), key=lambda mv: -mv[1]):
            lines.append(f"{kind:<10} {model:<24} {money(now.get(kind, {}).get(model, 0)):>10} {money(spent):>10}")
    return lines


def by_task(row: Mapping[str, int]) -> list[str]:
    """Spend per kind of task, dearest first, with the model it went to: "plan $0.0048 on gpt-4o"; what was spent
    before the kind of task was recorded comes last."""
    lines = []
    for kind, models in sorted(CostLedger.by_kind(row).items(), key=lambda kv: -sum(kv[1].values())):
        ranked = sorted(models.items(), key=lambda mv: -mv[1])
        on = ranked[0][0] if len(ranked) == 1 else ", ".join(f"{m} {money(v)}" for m, v in ranked)
        lines.append(f"{kind} {money(sum(models.values()))} on {on}")
    earlier = CostLedger.unrecorded(row)
    if earlier:
        lines.append(f"earlier calls {money(earlier)} (task not recorded)")
    return lines


def free_models(row: Mapping[str, int]) -> list[str]:
    """The models whose calls cost nothing only because no price names them, and how to charge them:
    "local model llama3: free (not in the price table; set LLM_PRICES to charge it)"."""
    return [free_line(model, why) for model, (why, _) in sorted(CostLedger.unpriced(row).items())]


def free_line(model: str, why: str) -> str:
    """What one model free by default says, `why` being PriceTable.unpriced's "local" or "unlisted"."""
    return f"{'local model' if why == 'local' else 'model'} {model}: free (not in the price table; set LLM_PRICES to charge it)"
