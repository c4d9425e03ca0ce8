"""Contacts from chat: save or update one ("Ana's new email is …"), find one ("what's Bob's number"), /contact,
and the Confirm / Reject buttons on details someone else's text proposed (a webhook, an email signature)."""
from __future__ import annotations

import json

from agents import action_skills
from agents.change_undo import offer_undo
from agents.contact_text import EMAIL, attribute_asked, parse_contact, parse_fields, phone_in, wants_details
from agents.fact_answers import contact_lines, day, mentioned
from agents.skill_context import SkillContext
from integrations.crm import Crm, crm_for_store
from integrations.crm_capabilities import facts_undo
from kernel.messages import Button, Card, CardField, Intent, Outcome
from memory.contacts import Change, ContactView
from memory.proposals import Proposal

CONFIRM = "fact.confirm"
REJECT = "fact.reject"


def crm_of(ctx: SkillContext) -> Crm:
    return ctx.crm if ctx.crm is not None else crm_for_store(ctx.facts, ctx.tasks, ctx.events)


def save_contact(ctx: SkillContext, intent: Intent) -> Outcome:
    text = intent.text or str(intent.slots.get("details") or "")
    parsed = parse_contact(text, tuple(intent.slots.get("people") or ()))
    return _save(ctx, parsed.name, parsed.details)


def _save(ctx: SkillContext, name: str, details: dict[str, str]) -> Outcome:
    crm = crm_of(ctx)
    if not details:
        return Outcome(text="What should I save? For example: \"Ana Lopez's email is ana@acme.io, she works at Acme\" "
                            "or /contact Ana Lopez, ana@acme.io, +34 600 000 001, Acme.", ok=False)
    if not name and "email" not in details:
        return Outcome(text="Whose details are these? Say the name, e.g. \"Ana's phone is +34 600 000 001\".", ok=False)
    contact, changes = crm.save_contact(name or details["email"], details, "operator", ctx.actor, ctx.trace_id)
    ctx.events.record(ctx.trace_id, "contact.saved", actor="worker", subject=contact.subject,
                      changed=[c.attribute for c in changes if c.changed])
    text = _saved_text(contact, changes, ctx.timezone)
    offer_undo(ctx, text, "contacts.restore", facts_undo(contact, changes))
    return Outcome(text=text)


def _saved_text(contact: ContactView, changes: list[Change], zone: str) -> str:
    parts = []
    for change in changes:
        if not change.changed:
            parts.append(f"{change.attribute} {change.fact.value} (unchanged)")
        elif change.before is not None:
            parts.append(f"{change.attribute} {change.fact.value} (was {change.before.value} until {day(change.fact.valid_from, zone)})")
        else:
            parts.append(f"{change.attribute} {change.fact.value}")
    return f"Saved {contact.name}: " + "; ".join(parts) + "."


def find_contact(ctx: SkillContext, intent: Intent) -> Outcome:
    text = intent.text or str(intent.slots.get("query") or "")
    return _find(ctx, text, tuple(intent.slots.get("people") or ()))


def _find(ctx: SkillContext, text: str, people: tuple[str, ...] = ()) -> Outcome:
    crm = crm_of(ctx)
    found = mentioned(crm, text, people) or crm.contacts.find(text)
    if not found:
        return Outcome(text="I have no contact by that name. Save one with \"Ana's email is ana@acme.io\" or "
                            "/contact Ana Lopez, ana@acme.io.")
    from_text = attribute_asked(text)
    lines = []
    for contact in found[:3]:
        lines += contact_lines(crm, contact, from_text, ctx.timezone)
        for done in crm.interactions.of(contact.subject, limit=3):
            lines.append(f"{contact.name}: {done.kind} “{done.summary}” on {day(done.at, ctx.timezone)}")
    return Outcome(text="\n".join(f"• {line}" for line in lines) or f"I have {found[0].name}, with no details yet.")


def contact(ctx: SkillContext, intent: Intent) -> Outcome:
    """/contact NAME, DETAILS… saves; /contact NAME finds."""
    args = str(intent.slots.get("args") or intent.text).strip()
    if wants_details(args) or "," in args:
        parsed = parse_fields(args)
        return _save(ctx, parsed.name, parsed.details)
    return _find(ctx, args)


# --- proposals: details from someone else's text, kept until the operator says yes

def proposal_card(proposal: Proposal) -> Card:
    fields = tuple(CardField(label=k, value=v) for k, v in proposal.details.items())
    return Card(card_id=f"proposal-{proposal.id}", title=f"Update {proposal.name}'s contact?", fields=fields,
                rationale=f"Proposed by {proposal.source} {proposal.origin}".strip() + ": someone else's text, so it is not a fact "
                          "until you confirm it.",
                buttons=(Button(label="Confirm", action=CONFIRM, value=proposal.id, style="primary"),
                         Button(label="Reject", action=REJECT, value=proposal.id, style="danger")))


def confirm(ctx: SkillContext, value: str) -> Outcome:
    crm = crm_of(ctx)
    proposal = crm.proposals.decide(value, "confirmed", ctx.actor)
    if proposal is None:
        return Outcome(text="That proposal was already decided or has expired.", ok=False)
    contact, changes = crm.save_contact(proposal.name, proposal.details, proposal.source, ctx.actor, ctx.trace_id, "operator")
    card = proposal_card(proposal).model_copy(update={"buttons": (), "resolution": f"Confirmed by {ctx.actor}"})
    text = _saved_text(contact, changes, ctx.timezone)
    offer_undo(ctx, text, "contacts.restore", facts_undo(contact, changes))
    return Outcome(text=text, updates=(card,))


def reject(ctx: SkillContext, value: str) -> Outcome:
    proposal = crm_of(ctx).proposals.decide(value, "rejected", ctx.actor)
    if proposal is None:
        return Outcome(text="That proposal was already decided or has expired.", ok=False)
    card = proposal_card(proposal).model_copy(update={"buttons": (), "resolution": f"Rejected by {ctx.actor}"})
    return Outcome(text=f"Rejected: nothing about {proposal.name} was changed.", updates=(card,))


def proposed_in(content: str) -> tuple[str, dict[str, str]]:
    """A contact's name and details in a delivery's JSON payload (top level or under "contact")."""
    _, _, body = content.partition("\n")
    try:
        payload = json.loads(body or content)
    except ValueError:
        return "", {}
    if not isinstance(payload, dict):
        return "", {}
    person = payload.get("contact") if isinstance(payload.get("contact"), dict) else payload
    name = str(person.get("name") or "").strip()
    details = {"email": str(person.get("email") or ""), "phone": str(person.get("phone") or ""),
               "company": str(person.get("company") or ""), "title": str(person.get("title") or "")}
    details = {k: v.strip() for k, v in details.items() if v.strip()}
    if details.get("email") and not EMAIL.fullmatch(details["email"]):
        details.pop("email")
    if details.get("phone") and not phone_in(details["phone"]):
        details.pop("phone")
    return name, details


def triage(ctx: SkillContext, intent: Intent) -> Outcome:
    """A delivery from outside: contact details in it wait as a proposal with Confirm / Reject; the rest is triaged."""
    name, details = proposed_in(str(intent.slots.get("content") or ""))
    done = action_skills.act(ctx, intent)
    if not (name and details):
        return done
    hook = str(intent.slots.get("hook") or "")
    proposal = crm_of(ctx).proposals.propose(name, details, "webhook", hook)
    ctx.events.record(ctx.trace_id, "fact.proposed", actor="worker", proposal=proposal.id, source="webhook", origin=hook)
    offered = ", ".join(f"{k} {v}" for k, v in details.items())
    text = f"The {hook} webhook offers new details for {name}: {offered}. Confirm to keep them." + (
        f"\n{done.text}" if done.text and done.card is None else "")
    return Outcome(text=text, card=proposal_card(proposal))
