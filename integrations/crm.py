"""The CRM: contacts, deals and interactions on Deputy's own facts, optionally mirrored to an external CRM.

Crm is what skills and capabilities change contacts and deals through, so a change is mirrored (a signed,
idempotent OUTBOUND_WEBHOOKS post to CRM_MIRROR_WEBHOOK) wherever it was made. The crm.* capabilities
are the family an external CRM's connector would provide in place of this one."""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from redis import Redis

from integrations.capability import CapabilityError
from integrations.webhooks import PostWebhook, Target, post_webhook
from kernel.settings import Settings
from memory.contacts import Change, Contacts, ContactView
from memory.deals import Deal, Deals
from memory.events import EventLog
from memory.facts import FactStore, Restored, Rewrite
from memory.interactions import Interactions
from memory.proposals import Proposals
from memory.store import Trust
from memory.tasks import TaskStore

log = logging.getLogger(__name__)
DAY_S = 86_400


@dataclass(frozen=True)
class Mirror:
    """Posts each contact or deal change to one webhook target; the key is the state's hash, so the same state
    posted twice is one delivery to a receiver that dedupes by Idempotency-Key."""

    targets: Mapping[str, Target]
    target: str
    timeout_s: float = 10.0

    def send(self, event: str, subject: str, name: str, facts: Mapping[str, str]) -> str:
        state = repr((subject, sorted(facts.items())))
        key = f"crm-{hashlib.sha256(state.encode()).hexdigest()[:24]}"
        data = {"subject": subject, "name": name, **facts}
        post_webhook(self.targets, PostWebhook(target=self.target, event=event, data=data), key, self.timeout_s)
        return key


@dataclass(frozen=True)
class Stale:
    contact: ContactView
    last_at: float
    why: str


@dataclass
class Crm:
    contacts: Contacts
    deals: Deals
    interactions: Interactions
    proposals: Proposals
    tasks: TaskStore
    mirror: Mirror | None = None
    events: EventLog | None = None
    clock: Callable[[], float] = field(default=time.time)

    def save_contact(self, name: str, details: dict[str, str], source: str = "operator", author: str = "",
                     source_event: str = "", trust: Trust = "operator") -> tuple[ContactView, list[Change]]:
        contact, changes = self.contacts.save(name, details, source, author, source_event, trust)
        if any(c.changed for c in changes):
            self._mirror("crm.contact.updated", contact.subject, contact.name, {a: f.value for a, f in contact.facts.items()},
                         source_event)
        return contact, changes

    def update_deal(self, name: str, changes: dict[str, str], author: str = "", source_event: str = "") -> tuple[Deal, list[Change]]:
        deal, written = self.deals.update(name, changes, author, source_event)
        if any(c.changed for c in written):
            self._mirror("crm.deal.updated", deal.subject, deal.name, {a: f.value for a, f in deal.facts.items()}, source_event)
        return deal, written

    def restore_contact(self, subject: str, changed: Sequence[Rewrite], made: bool, author: str = "",
                        source_event: str = "") -> dict[str, Restored]:
        """Take back a contact save (an undo); the external copy follows."""
        return self._restore(self.contacts, "crm.contact.updated", subject, changed, made, author, source_event)

    def restore_deal(self, subject: str, changed: Sequence[Rewrite], made: bool, author: str = "",
                     source_event: str = "") -> dict[str, Restored]:
        """Take back a deal update (an undo); the external copy follows."""
        return self._restore(self.deals, "crm.deal.updated", subject, changed, made, author, source_event)

    def _restore(self, store: Contacts | Deals, event: str, subject: str, changed: Sequence[Rewrite], made: bool, author: str,
                 source_event: str) -> dict[str, Restored]:
        done = store.restore(subject, changed, made, source_event, author)
        if any(state != "already" for state in done.values()):
            found = store.get(subject)
            self._mirror(event, subject, found.name, facts_of(found), source_event)
        return done

    def _mirror(self, event: str, subject: str, name: str, facts: Mapping[str, str], trace_id: str) -> None:
        if self.mirror is None:
            return
        try:
            key = self.mirror.send(event, subject, name, facts)
        except CapabilityError as err:
            # the change stands; the external copy is behind until the next change is mirrored
            log.warning("could not mirror %s to %s: %s", subject, self.mirror.target, err)
            if self.events is not None:
                self.events.record(trace_id or "crm", "crm.mirror_failed", actor="worker", subject=subject, error=str(err)[:300])
            return
        if self.events is not None:
            self.events.record(trace_id or "crm", "crm.mirrored", actor="worker", subject=subject, target=self.mirror.target,
                               delivery_id=key)

    def stale(self, days: int) -> list[Stale]:
        """Contacts with an open deal or an open follow-up task and nothing heard or done for DAYS days."""
        cutoff = self.clock() - days * DAY_S
        open_deals = [d for d in self.deals.all() if d.open]
        found = []
        for contact in self.contacts.all():
            why = self._why_open(contact, open_deals)
            if not why:
                continue
            last = self.interactions.last_at(contact.subject) or contact.updated_at
            if last <= cutoff:
                found.append(Stale(contact, last, why))
        return sorted(found, key=lambda s: s.last_at)

    def _why_open(self, contact: ContactView, open_deals: list[Deal]) -> str:
        company = contact.get("company").lower()
        for deal in open_deals:
            if deal.get("contact") == contact.subject or (company and deal.name.lower() == company):
                return f"{deal.name} deal ({deal.get('stage')})"
        for done in reversed(self.interactions.of(contact.subject, limit=20)):
            task = self.tasks.get(done.task_id) if done.task_id is not None else None
            if done.kind == "followup" and task is not None and task.status == "open":
                return f"task #{task.id} {task.title}"
        return ""

    def link(self, addresses: list[str], kind: str, summary: str, ref: str, task_id: int | None = None) -> int:
        """Record an interaction with each known contact among ADDRESSES; how many were linked."""
        linked = 0
        for address in addresses:
            contact = self.contacts.by_email(address)
            if contact is not None and self.interactions.record(contact.subject, kind, summary, ref, task_id):
                linked += 1
        return linked


def crm_for(settings: Settings, redis: Redis, events: EventLog | None = None) -> Crm:
    workspace = settings.workspace
    facts = FactStore(redis, workspace)
    hooks = settings.webhooks
    mirror = None
    if hooks.crm_mirror:
        if hooks.crm_mirror not in hooks.outbound:
            raise ValueError(f"CRM_MIRROR_WEBHOOK names {hooks.crm_mirror!r}, which is not a target in OUTBOUND_WEBHOOKS "
                             f"({', '.join(sorted(hooks.outbound)) or 'none configured'})")
        mirror = Mirror(hooks.outbound, hooks.crm_mirror, hooks.timeout_s)
    return Crm(Contacts(redis, workspace, facts), Deals(redis, workspace, facts), Interactions(redis, workspace),
               Proposals(redis, workspace), TaskStore(redis, workspace), mirror, events)


def crm_for_store(facts: FactStore, tasks: TaskStore, events: EventLog | None = None) -> Crm:
    """A CRM over the same workspace as FACTS, mirroring nowhere (a process that has not wired one)."""
    redis, workspace = facts.redis, facts.keys.workspace
    return Crm(Contacts(redis, workspace, facts), Deals(redis, workspace, facts), Interactions(redis, workspace),
               Proposals(redis, workspace), tasks, None, events)


def facts_of(view: ContactView | Deal) -> dict[str, Any]:
    return {a: f.value for a, f in view.facts.items()}
