"""Capabilities on the CRM: contacts.lookup / contacts.upsert (what plans and the scheduler use) and the crm.*
family an external CRM can provide later; and the linking that makes sent emails, created meetings and
follow-up tasks interactions of the contacts they reach."""
from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from pydantic import BaseModel, Field

from integrations.capability import Capability, EffectContext
from integrations.crm import Crm, facts_of
from integrations.internal import ContactLookup, ContactsOut, ContactUpsert, _found_contacts, _In, _own_state, contact_out
from memory.deals import STAGES


class CrmContact(_In):
    name: str = Field(min_length=1, max_length=200)
    email: str = ""
    phone: str = ""
    company: str = ""
    title: str = ""


class CrmFind(_In):
    query: str = Field(min_length=1)


class CrmDeal(_In):
    name: str = Field(min_length=1, max_length=200, description="the company or person the deal is with")
    stage: str = Field(default="", description="one of " + ", ".join(STAGES))
    value: str = ""
    currency: str = ""
    next_step: str = ""


class DealOut(BaseModel):
    name: str
    facts: dict[str, str]


class DealsOut(BaseModel):
    deals: list[DealOut]


class DealList(_In):
    open_only: bool = True


def contact_capabilities(crm: Crm) -> list[Capability]:
    redis = crm.contacts.redis

    def upsert(args: BaseModel, ctx: EffectContext) -> ContactsOut:
        assert isinstance(args, ContactUpsert)
        trust = "untrusted" if ctx.untrusted else "operator"
        view, _ = crm.save_contact(args.name or args.email, {"email": args.email, "company": args.company, "notes": args.notes},
                                   source="plan", author="deputy", source_event=ctx.trace_id, trust=trust)
        return ContactsOut(contacts=[contact_out(view)])

    def lookup(args: BaseModel, ctx: EffectContext) -> ContactsOut:
        assert isinstance(args, ContactLookup)
        return ContactsOut(contacts=[contact_out(v) for v in crm.contacts.find(args.query)])

    return [
        _own_state(redis, "contacts.upsert", "Add or update a contact", ContactUpsert, ContactsOut, writes=True, run=upsert),
        _own_state(redis, "contacts.lookup", "Find a contact by email, name or company", ContactLookup, ContactsOut, writes=False,
                   run=lookup, summary=_found_contacts),
    ]


def crm_capabilities(crm: Crm) -> list[Capability]:
    redis = crm.contacts.redis

    def contact_upsert(args: BaseModel, ctx: EffectContext) -> ContactsOut:
        assert isinstance(args, CrmContact)
        details = args.model_dump(exclude={"name"})
        view, _ = crm.save_contact(args.name, details, source="plan", author="deputy", source_event=ctx.trace_id,
                                   trust="untrusted" if ctx.untrusted else "operator")
        return ContactsOut(contacts=[contact_out(view)])

    def contact_find(args: BaseModel, ctx: EffectContext) -> ContactsOut:
        assert isinstance(args, CrmFind)
        return ContactsOut(contacts=[contact_out(v) for v in crm.contacts.find(args.query)])

    def deal_update(args: BaseModel, ctx: EffectContext) -> DealsOut:
        assert isinstance(args, CrmDeal)
        deal, _ = crm.update_deal(args.name, args.model_dump(exclude={"name"}), author="deputy", source_event=ctx.trace_id)
        return DealsOut(deals=[DealOut(name=deal.name, facts=facts_of(deal))])

    def deal_list(args: BaseModel, ctx: EffectContext) -> DealsOut:
        assert isinstance(args, DealList)
        deals = [d for d in crm.deals.all() if d.open or not args.open_only]
        return DealsOut(deals=[DealOut(name=d.name, facts=facts_of(d)) for d in deals])

    return [
        _own_state(redis, "crm.contact.upsert", "Add or update a contact in the CRM", CrmContact, ContactsOut, writes=True,
                   run=contact_upsert),
        _own_state(redis, "crm.contact.find", "Find contacts in the CRM by name, email or company", CrmFind, ContactsOut,
                   writes=False, run=contact_find, summary=_found_contacts),
        _own_state(redis, "crm.deal.update", "Create a deal or change its stage, value, currency or next step", CrmDeal, DealsOut,
                   writes=True, run=deal_update),
        _own_state(redis, "crm.deal.list", "List deals (open ones by default)", DealList, DealsOut, writes=False, run=deal_list),
    ]


def _addresses(value: object) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else [value]
    return [str(a) for a in items if isinstance(a, str) and "@" in a]


def linked(capabilities: Mapping[str, Capability], crm: Crm) -> dict[str, Capability]:
    """The same capabilities; a successful email, event or follow-up task becomes an interaction of each contact it
    reaches (keyed by the effect, so a replayed step is not counted again)."""
    out = dict(capabilities)
    for name, kind, field_ in (("email.send", "email.sent", "to"), ("calendar.create", "meeting", "attendees"),
                               ("tasks.create", "followup", "contact")):
        if name not in out:
            continue
        capability = out[name]

        def run(args: BaseModel, ctx: EffectContext, _inner=capability.run, _kind=kind, _field=field_) -> BaseModel:
            output = _inner(args, ctx)
            values = args.model_dump()
            summary = str(values.get("subject") or values.get("title") or _kind)
            task_id = getattr(output, "id", None) if _kind == "followup" else None
            crm.link(_addresses(values.get(_field)), _kind, summary, ctx.idempotency_key, task_id)
            return output

        out[name] = replace(capability, run=run)
    return out
