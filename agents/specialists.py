"""Specialists: the few desks a solo operator would hire for — inbox, calendar, sales, money, and a general desk.

Each owns its intents and playbooks and the only capabilities it may use; its risk rules of its own live in the
policy file (`specialists:`, added to the policy's rules, so only ever stricter), where an operator's POLICY_FILE
can change them. The planner routes every plan to exactly one; a step outside its specialist's
allow-list is blocked, with a reason the operator reads ("the calendar specialist may not send email")."""
from __future__ import annotations

from typing import Iterable

from kernel.messages import Frozen


class Specialist(Frozen):
    name: str
    description: str
    # intent names (built-in intents and commands) and playbook names it answers for
    intents: tuple[str, ...] = ()
    playbooks: tuple[str, ...] = ()
    # the only capabilities its plans may use
    capabilities: tuple[str, ...]

    def may(self, capability: str) -> bool:
        return capability in self.capabilities



# The one list of specialists. Every built-in intent and playbook belongs to exactly one (a test checks it);
# an operator's own intents go to the one whose allow-list covers what they use.
SPECIALISTS: tuple[Specialist, ...] = (
    Specialist(
        name="inbox", description="Your email: what arrived, drafts and replies, and what you send.",
        intents=("inbox_summary", "reply_email", "send_email", "draft", "email", "inbox", "reply"),
        playbooks=("email", "email_reply", "triage"),
        capabilities=("email.read_inbox", "email.triage_inbox", "email.send", "contacts.lookup", "tasks.create", "notes.add"),
    ),
    Specialist(
        name="calendar", description="Your calendar: what is on it, and meetings booked, moved and cancelled.",
        intents=("schedule_meeting", "show_agenda", "move_meeting", "cancel_meeting", "agenda", "calendar"),
        playbooks=("schedule", "move", "cancel", "calendar"),
        capabilities=("calendar.agenda", "calendar.find", "calendar.create", "calendar.move", "calendar.cancel", "contacts.lookup"),
    ),
    Specialist(
        name="sales", description="Contacts, deals and following up leads.",
        intents=("save_contact", "find_contact", "update_deal", "stale_leads", "follow_up", "followup", "contact"),
        playbooks=("followup", "lookup"),
        capabilities=("contacts.lookup", "contacts.upsert", "contacts.restore", "crm.contact.find", "crm.contact.upsert",
                      "crm.deal.list", "crm.deal.update", "crm.deal.restore", "notes.search", "email.send", "tasks.create"),
    ),
    Specialist(
        name="money", description="Spend and budgets, payments and refunds: it asks before anything moves.",
        intents=("check_budget", "set_budget", "budget"),
        capabilities=("payment.refund",),
    ),
    Specialist(
        name="desk", description="The general desk: tasks, notes, reminders, memory, and anything else you ask with /do.",
        intents=("help", "smalltalk", "remember", "ask", "forget", "undo", "add_task", "list_tasks", "complete_task",
                 "delete_task", "edit_task", "snooze_task", "remind", "list_reminders", "cancel_reminder", "digest", "trace",
                 "set_timezone", "task", "reminders", "do", "timezone", "hours", "project"),
        playbooks=("task", "do", "webhook"),
        capabilities=("tasks.create", "tasks.list", "tasks.restore", "notes.search", "notes.add", "notes.remove",
                      "contacts.lookup", "email.send", "calendar.agenda", "calendar.create", "webhook.post", "webhook.undo"),
    ),
)
GENERAL = "desk"

# what each capability does, in the words of a refusal: "the calendar specialist may not send email"
DOING: dict[str, str] = {
    "email.send": "send email", "email.read_inbox": "read your inbox", "email.triage_inbox": "turn your inbox into tasks",
    "calendar.agenda": "read your calendar", "calendar.find": "search your calendar", "calendar.create": "add calendar events",
    "calendar.move": "move calendar events", "calendar.cancel": "cancel calendar events",
    "contacts.lookup": "look up contacts", "contacts.upsert": "change contacts", "crm.contact.find": "look up contacts",
    "crm.contact.upsert": "change contacts", "crm.deal.list": "read deals", "crm.deal.update": "change deals",
    "tasks.create": "add tasks", "tasks.list": "read your tasks", "notes.add": "keep notes", "notes.search": "search your notes",
    "webhook.post": "post to webhooks", "payment.refund": "refund payments",
    "tasks.restore": "put tasks back", "notes.remove": "remove notes", "contacts.restore": "put contacts back",
    "crm.deal.restore": "put deals back", "webhook.undo": "undo webhook posts",
}


def named(name: str, specialists: Iterable[Specialist] = SPECIALISTS) -> Specialist | None:
    return next((s for s in specialists if s.name == name), None)


def route(playbook: str, allowed: Iterable[str] = (), specialists: Iterable[Specialist] = SPECIALISTS) -> Specialist:
    """The one specialist a plan of PLAYBOOK belongs to: its owner; for a playbook nobody owns (an operator's intent
    naming a capability), the first whose allow-list covers everything it may use; else the general desk."""
    desks = tuple(specialists)
    owner = next((s for s in desks if playbook in s.playbooks), None)
    if owner is not None:
        return owner
    wanted = tuple(allowed)
    covering = next((s for s in desks if wanted and all(s.may(c) for c in wanted)), None)
    return covering or named(GENERAL, desks) or desks[0]


def owner_of_intent(intent: str, specialists: Iterable[Specialist] = SPECIALISTS) -> Specialist | None:
    return next((s for s in specialists if intent in s.intents), None)


def refusal(specialist: str, capability: str) -> str:
    """Why a step is outside its specialist's allow-list, in the operator's words."""
    return f"the {specialist} specialist may not {DOING.get(capability, f'use {capability}')}"
