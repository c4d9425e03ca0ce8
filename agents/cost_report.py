"""`deputy costs`: spend per project against its caps, per model, and per day, as a table or JSON."""
from __future__ import annotations

from typing import Any

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
        "tokens_today": {"prompt": today.get("tokens_in", 0), "completion": today.get("tokens_out", 0)},
        "days": [{"day": d.isoformat(), "usd": usd(v)} for d, v in series],
        "pending_requests": len(budgets.pending_requests()),
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
    series = budgets.ledger.daily_series(days)
    lines += ["", f"last {days} days: {sparkline([v for _, v in series])}"]
    lines += [f"  {d.isoformat()}  {money(v):>10}" for d, v in series if v]
    if data["pending_requests"]:
        lines += ["", f"{data['pending_requests']} request(s) for more spend are waiting in chat."]
    return "\n".join(lines)
