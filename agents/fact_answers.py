"""Answers from facts: the current value, where it came from, and what it replaced ("since 3 Nov; before: …")."""
from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from agents.contact_text import attribute_asked, name_in
from integrations.crm import Crm
from memory.contacts import ContactView
from memory.deals import Deal
from memory.facts import Fact, FactStore

LABELS = {"email": "email", "phone": "phone", "company": "company", "title": "title", "notes": "notes", "stage": "stage",
          "value": "value", "currency": "currency", "next_step": "next step", "contact": "contact"}


def day(ts: float, zone: str) -> str:
    when = dt.datetime.fromtimestamp(ts, ZoneInfo(zone))
    return f"{when.day} {when:%b}"


def cite(fact: Fact, zone: str) -> str:
    who = "you told me" if fact.source == "operator" else (
        f"from {fact.source}, confirmed by you" if fact.trust == "operator" else f"from {fact.source}, unconfirmed")
    undo = ", put back by an undo" if fact.restored_from else ""
    return f"[fact v{fact.version}, {who}, {day(fact.valid_from, zone)}{undo}]"


def line(facts: FactStore, owner: str, fact: Fact, zone: str) -> str:
    """"Ana Lopez's email: ana@newco.example (since 5 Dec; before: ana@lopez.example) [fact v2, you told me, 5 Dec]"."""
    before = facts.previous(fact.key)
    was = f"{before.value} was undone" if before and before.undone else f"before: {before.value}" if before else ""
    change = f" (since {day(fact.valid_from, zone)}; {was})" if before else ""
    return f"{owner}'s {LABELS.get(fact.attribute, fact.attribute)}: {fact.value}{change} {cite(fact, zone)}"


def mentioned(crm: Crm, text: str, people: list[str] | tuple[str, ...] = ()) -> list[ContactView]:
    """The contacts the text names: a possessive or a name Deputy knows, whole or first name."""
    named = name_in(text, people)
    found = crm.contacts.find(named) if named else []
    if found:
        return found[:1] if found[0].name.lower() == named.lower() else found
    lowered = text.lower()
    hits = [c for c in crm.contacts.all()
            if re.search(rf"\b{re.escape(c.name.lower())}\b", lowered) or re.search(rf"\b{re.escape(c.name.split()[0].lower())}\b", lowered)]
    return sorted(hits, key=lambda c: -c.updated_at)


def deals_mentioned(crm: Crm, text: str) -> list[Deal]:
    lowered = text.lower()
    return [d for d in crm.deals.all() if re.search(rf"\b{re.escape(d.name.lower())}\b", lowered) and "deal" in lowered]


def contact_lines(crm: Crm, contact: ContactView, attribute: str, zone: str) -> list[str]:
    facts = [contact.facts[attribute]] if attribute in contact.facts else list(contact.facts.values())
    return [line(crm.contacts.facts, contact.name, f, zone) for f in facts]


def answer(crm: Crm, question: str, zone: str) -> str | None:
    """What the current facts say about the people and deals QUESTION names; None when they name none Deputy has."""
    attribute = attribute_asked(question)
    lines = []
    for deal in deals_mentioned(crm, question):
        lines += [line(crm.deals.facts, f"The {deal.name} deal", f, zone) for f in deal.facts.values()]
    for contact in mentioned(crm, question)[:3]:
        lines += contact_lines(crm, contact, attribute, zone)
    if not lines:
        return None
    return "From what I know now:\n" + "\n".join(f"• {text}" for text in lines)
