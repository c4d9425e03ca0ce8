"""Deals and leads from chat: "move the Acme deal to won", "who haven't I heard from in two weeks"."""
from __future__ import annotations

from agents.change_undo import offer_undo
from agents.contact_skills import crm_of
from agents.contact_text import days_in, parse_deal
from agents.fact_answers import day
from agents.skill_context import SkillContext
from integrations.crm import Crm
from integrations.crm_capabilities import facts_undo
from kernel.messages import Intent, Outcome
from memory.deals import STAGES


def update_deal(ctx: SkillContext, intent: Intent) -> Outcome:
    name, changes = parse_deal(intent.text or str(intent.slots.get("details") or ""))
    if not name:
        return Outcome(text="Which deal? Name the company, e.g. \"move the Acme deal to won\".", ok=False)
    if not changes:
        return Outcome(text=f"What changed on the {name} deal? A stage ({', '.join(STAGES)}), a value (\"worth €5,000\") "
                            "or a next step (\"next step: send the proposal\").", ok=False)
    crm = crm_of(ctx)
    try:
        deal, written = crm.update_deal(name, changes, ctx.actor, ctx.trace_id)
    except ValueError as err:
        return Outcome(text=f"{err}.", ok=False)
    ctx.events.record(ctx.trace_id, "deal.updated", actor="worker", subject=deal.subject, changed=[c.attribute for c in written if c.changed])
    parts = [f"{c.attribute.replace('_', ' ')} {c.fact.value}" + (f" (was {c.before.value})" if c.before and c.changed else "")
             for c in written]
    text = f"The {deal.name} deal: " + "; ".join(parts) + "."
    offer_undo(ctx, text, "crm.deal.restore", facts_undo(deal, written))
    return Outcome(text=text)


def stale_leads(ctx: SkillContext, intent: Intent) -> Outcome:
    days = int(intent.slots.get("days") or days_in(intent.text))
    return Outcome(text=stale_text(crm_of(ctx), days, ctx.timezone))


def stale_text(crm: Crm, days: int, zone: str) -> str:
    stale = crm.stale(days)
    if not stale:
        return f"Nobody with an open deal or follow-up has gone quiet for {days} days."
    lines = [f"No contact for {days}+ days ({len(stale)}):"]
    lines += [f"• {s.contact.name} — {s.why}; last contact {day(s.last_at, zone)}" for s in stale[:10]]
    return "\n".join(lines)
