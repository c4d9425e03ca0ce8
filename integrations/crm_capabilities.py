"""Capabilities on the CRM: contacts.lookup / contacts.upsert (what plans and the scheduler use) and the crm.*
family an external CRM can provide later; and the linking that makes sent emails, created meetings and
follow-up tasks interactions of the contacts they reach."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

from pydantic import BaseModel, Field

from integrations.capability import Args, Capability, EffectContext
from integrations.crm import Crm, facts_of
from integrations.internal import (
    ContactLookup, ContactsOut, ContactUpsert, _found_contacts, _In, _own_state, changed_since, contact_out,
)
from memory.contacts import Change, ContactView, created, rewrites
from memory.deals import STAGES
from memory.facts import ChangedSince, Restored, Rewrite, Subject


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


class FactsRestore(_In):
    """What a save or update changed on a contact or deal, as its undo takes it back."""

    subject: str = Field(min_length=1)
    changed: list[Rewrite]
    # the change made the contact or deal: it goes when its facts do
    made: bool = False


class FactsRestored(BaseModel):
    subject: str
    # each attribute: restored (its previous value is current again), retired (it had none) or already (undone before)
    attributes: dict[str, str]


class ContactSaved(ContactsOut):
    undo: FactsRestore


def _restore_of(view: Subject, changes: Sequence[Change]) -> FactsRestore:
    return FactsRestore(subject=view.subject, changed=rewrites(changes), made=created(view, changes))


def facts_undo(view: Subject, changes: Sequence[Change]) -> dict[str, Any] | None:
    """The arguments of the restore that takes a save or update back; None when it changed nothing."""
    restore = _restore_of(view, changes)
    return restore.model_dump(mode="json") if restore.changed else None


def _undo_of(args: Args, output: Args) -> dict[str, Any] | None:
    undo = output.get("undo")
    return dict(undo) if isinstance(undo, Mapping) and undo.get("changed") else None


def _restored(args: Args, output: Args) -> str:
    states = output.get("attributes") or {}
    back = [a for a, s in states.items() if s != "already"]
    return f"Put back {', '.join(back)} as before." if back else "Nothing to put back: it was already undone."


class DealOut(BaseModel):
    name: str
    facts: dict[str, str]


class DealsOut(BaseModel):
    deals: list[DealOut]


class DealSaved(DealsOut):
    undo: FactsRestore


class DealList(_In):
    open_only: bool = True


def contact_capabilities(crm: Crm) -> list[Capability]:
    redis = crm.contacts.redis

    def upsert(args: BaseModel, ctx: EffectContext) -> ContactSaved:
        assert isinstance(args, ContactUpsert)
        trust = "untrusted" if ctx.untrusted else "operator"
        view, changes = crm.save_contact(args.name or args.email, {"email": args.email, "company": args.company, "notes": args.notes},
                                         source="plan", author="deputy", source_event=ctx.trace_id, trust=trust)
        return _contact_saved(view, changes)

    def lookup(args: BaseModel, ctx: EffectContext) -> ContactsOut:
        assert isinstance(args, ContactLookup)
        return ContactsOut(contacts=[contact_out(v) for v in crm.contacts.find(args.query)])

    return [
        _own_state(redis, "contacts.upsert", "Add or update a contact", ContactUpsert, ContactSaved, writes=True, run=upsert,
                   compensation="contacts.restore", undo=_undo_of),
        _own_state(redis, "contacts.lookup", "Find a contact by email, name or company", ContactLookup, ContactsOut, writes=False,
                   run=lookup, summary=_found_contacts),
        _own_state(redis, "contacts.restore", "Put a contact's details back as they were before a change (an undo)", FactsRestore,
                   FactsRestored, writes=True, run=_restorer(crm.restore_contact), summary=_restored),
    ]


def _restorer(restore: Callable[..., dict[str, Restored]]) -> Callable[[BaseModel, EffectContext], FactsRestored]:
    """A restore capability's run: take a save or update back (Crm.restore_contact / restore_deal), refused when the
    subject changed again since."""

    def run(args: BaseModel, ctx: EffectContext) -> FactsRestored:
        assert isinstance(args, FactsRestore)
        try:
            done = restore(args.subject, args.changed, args.made, "deputy", ctx.trace_id)
        except ChangedSince as err:
            raise changed_since(err) from err
        return FactsRestored(subject=args.subject, attributes=dict(done))

    return run


def _contact_saved(view: ContactView, changes: Sequence[Change]) -> ContactSaved:
    return ContactSaved(contacts=[contact_out(view)], undo=_restore_of(view, changes))


def crm_capabilities(crm: Crm) -> list[Capability]:
    redis = crm.contacts.redis

    def contact_upsert(args: BaseModel, ctx: EffectContext) -> ContactSaved:
        assert isinstance(args, CrmContact)
        details = args.model_dump(exclude={"name"})
        view, changes = crm.save_contact(args.name, details, source="plan", author="deputy", source_event=ctx.trace_id,
                                         trust="untrusted" if ctx.untrusted else "operator")
        return _contact_saved(view, changes)

    def contact_find(args: BaseModel, ctx: EffectContext) -> ContactsOut:
        assert isinstance(args, CrmFind)
        return ContactsOut(contacts=[contact_out(v) for v in crm.contacts.find(args.query)])

    def deal_update(args: BaseModel, ctx: EffectContext) -> DealSaved:
        assert isinstance(args, CrmDeal)
        deal, written = crm.update_deal(args.name, args.model_dump(exclude={"name"}), author="deputy", source_event=ctx.trace_id)
        return DealSaved(deals=[DealOut(name=deal.name, facts=facts_of(deal))], undo=_restore_of(deal, written))

    def deal_list(args: BaseModel, ctx: EffectContext) -> DealsOut:
        assert isinstance(args, DealList)
        deals = [d for d in crm.deals.all() if d.open or not args.open_only]
        return DealsOut(deals=[DealOut(name=d.name, facts=facts_of(d)) for d in deals])

    return [
        _own_state(redis, "crm.contact.upsert", "Add or update a contact in the CRM", CrmContact, ContactSaved, writes=True,
                   run=contact_upsert, compensation="contacts.restore", undo=_undo_of),
        _own_state(redis, "crm.contact.find", "Find contacts in the CRM by name, email or company", CrmFind, ContactsOut,
                   writes=False, run=contact_find, summary=_found_contacts),
        _own_state(redis, "crm.deal.update", "Create a deal or change its stage, value, currency or next step", CrmDeal, DealSaved,
                   writes=True, run=deal_update, compensation="crm.deal.restore", undo=_undo_of),
        _own_state(redis, "crm.deal.list", "List deals (open ones by default)", DealList, DealsOut, writes=False, run=deal_list),
        _own_state(redis, "crm.deal.restore", "Put a deal back as it was before a change (an undo)", FactsRestore, FactsRestored,
                   writes=True, run=_restorer(crm.restore_deal), summary=_restored),
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
