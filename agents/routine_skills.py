"""Skills for the operator's routine: /digest, /budget, and the buttons on their cards.

Registered in agents/skills.py (SKILLS and DECISIONS) like every other skill."""
from __future__ import annotations

from typing import Any

from agents.cost_report import by_task, free_models
from agents.spend_card import spend_card
from agents.costs import money, to_micro
from kernel.messages import Intent, Outcome
from agents.skill_context import SkillContext


def digest(ctx: SkillContext, intent: Intent) -> Outcome:
    if ctx.digests is None:
        return Outcome(text="The digest is not available in this process.", ok=False)
    sent = ctx.digests.send_to(ctx.channel, ctx.thread_id, ctx.reply_to, ctx.trace_id)
    c = sent.counts
    return Outcome(text=f"That's your digest: {c.get('decisions', 0)} waiting for you, {c.get('done', 0)} done, "
                        f"{c.get('failed', 0)} failed.")


def budget(ctx: SkillContext, intent: Intent) -> Outcome:
    if ctx.budgets is None:
        return Outcome(text="No model is configured, so nothing is spent and there is no budget to show.")
    if intent.slots.get("action") == "set":
        amount = _amount(intent.slots.get("amount"))
        if amount is None:
            return Outcome(text="How much per month? e.g. '/budget set 30' (US dollars; 0 removes the cap).", ok=False)
        project = str(intent.slots.get("project") or "*")
        refused = _refused_unless_approver(ctx, "set a budget", attempt="set", project=project, amount_usd=amount)
        if refused is not None:
            return refused
        ctx.budgets.set_monthly(to_micro(amount), project)
        scope = "every project" if project == "*" else f"'{project}'"
        return Outcome(text=f"Monthly budget for {scope} is now {money(to_micro(amount)) if amount else 'uncapped'}.")
    rows = ctx.budgets.status()
    lines = ["Spend against budget (today · this month):"]
    for row in rows:
        day_cap = f" / {money(row['daily_cap'])}" if row["daily_cap"] is not None else " (no daily cap)"
        month_cap = f" / {money(row['monthly_cap'])}" if row["monthly_cap"] is not None else " (no monthly cap)"
        extra = f"  [+{money(row['extra_today'])} approved today]" if row["extra_today"] else ""
        lines.append(f"• {row['project']}: {money(row['today'])}{day_cap} · {money(row['month'])}{month_cap}{extra}")
    tasks = by_task(ctx.budgets.ledger.month())
    if tasks:
        lines.append("By task this month: " + " · ".join(tasks))
    lines += free_models(ctx.budgets.ledger.month())
    pending = ctx.budgets.pending_requests()
    if pending:
        lines.append(f"{len(pending)} request(s) for more spend are waiting for you.")
    return Outcome(text="\n".join(lines), card=spend_card(pending[-1]) if pending else None)


def _amount(raw: Any) -> float | None:
    if isinstance(raw, dict):
        raw = raw.get("value", raw.get("amount"))
    try:
        value = float(str(raw).strip().lstrip("$€£")) if raw is not None and str(raw).strip() else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None


def _refused_unless_approver(ctx: SkillContext, doing: str, **detail: Any) -> Outcome | None:
    # a cap is an approval given in advance: lifting it is for the people who decide approvals
    if ctx.actor in ctx.approvers:
        return None
    ctx.events.record(ctx.trace_id, "spend.refused", actor=ctx.actor, reason="not an approver", **detail)
    who = f" ({', '.join(ctx.approvers)})" if ctx.approvers else ""
    return Outcome(text=f"Only an approver{who} can {doing}. Nothing was changed.", ok=False)


def _decide_spend(ctx: SkillContext, value: str, approve: bool) -> Outcome:
    if ctx.budgets is None:
        return Outcome(text="That button is not valid any more.", ok=False)
    doing = "approve more spend" if approve else "decline a request for more spend"
    refused = _refused_unless_approver(ctx, doing, attempt="approve" if approve else "decline", request_id=value)
    if refused is not None:
        # the card keeps its buttons: an approver can still answer it
        return refused
    request, fresh = ctx.budgets.decide(value, approve, by=ctx.actor)
    if request is None:
        return Outcome(text="That request has expired; ask again and I will price it afresh.", ok=False)
    if not fresh:
        # a plain message: the card already shows what the first click did
        return Outcome(text=f"Already {request.status} by {request.decided_by}.")
    if approve:
        again = " and I'm running your request again" if request.resume_func else "; ask again to run it"
        return Outcome(text=f"Approved {money(request.extra)} more for '{request.project}' today{again}.", card=spend_card(request))
    return Outcome(text="OK, nothing was spent.", card=spend_card(request))


def approve_spend(ctx: SkillContext, value: str) -> Outcome:
    return _decide_spend(ctx, value, approve=True)


def decline_spend(ctx: SkillContext, value: str) -> Outcome:
    return _decide_spend(ctx, value, approve=False)
