"""What every skill is handed: the request's context and the stores it may use.

Below the skills: the skill modules and the one list of skills (agents/skills.py) import this, never each other."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol

from kernel.messages import Intent, Outcome
from memory.events import EventLog
from memory.facts import FactStore
from memory.forgetting import Forgetting
from memory.conversations import Conversations
from memory.mail_marks import MailMarks
from memory.notes import NoteStore
from memory.profiles import Profiles
from memory.tasks import TaskStore
from memory.undo_log import UndoLog
from memory.workspaces import Workspaces

if TYPE_CHECKING:
    from agents.agent import Agent
    from agents.budget import Budgets
    from agents.digest import Digest
    from agents.drafts import DraftStore
    from agents.llm import Llm
    from agents.recall import Recall
    from agents.reminders import ReminderBook
    from integrations.crm import Crm


class DigestSender(Protocol):
    """Builds the digest now and posts it (text, then each decision card) into one thread."""

    def send_to(self, channel: str, thread_id: str, reply_to: dict[str, str], trace_id: str) -> "Digest": ...


@dataclass(frozen=True)
class SkillContext:
    workspace: str
    trace_id: str
    actor: str
    thread_id: str
    tasks: TaskStore
    facts: FactStore
    notes: NoteStore
    events: EventLog
    help_text: str
    # where the request came from, so later messages (reminders) land in the same thread
    channel: str = ""
    reply_to: dict[str, str] = field(default_factory=dict)
    # the operator's routine; None where a process has not wired them
    budgets: "Budgets | None" = None
    reminders: "ReminderBook | None" = None
    digests: DigestSender | None = None
    # plan → execute → inspect and approvals; None where a process has not wired it
    agent: "Agent | None" = None
    # semantic memory (search with citations, remember); None where a process has not wired it
    recall: "Recall | None" = None
    # draft emails (Send / Discard buttons) and the budgeted model that writes them; None where not wired
    drafts: "DraftStore | None" = None
    llm: "Llm | None" = None
    # shows text still being written (a draft) in the request's thread, until the reply replaces it; the console
    # only, None elsewhere (Slack and Telegram get the reply)
    partial: Callable[[str], None] | None = None
    # who may approve more spend or set a budget (APPROVERS, else the operators); nobody when empty
    approvers: tuple[str, ...] = ()
    # the actor's clock: their time zone (learned, else TIMEZONE) and working hours [start, end)
    timezone: str = "UTC"
    work_hours: tuple[int, int] = (9, 18)
    profiles: Profiles | None = None
    # the question this thread waits on and the action a correction may change; None where not wired
    conversation: Conversations | None = None
    # a meeting's length when the operator takes the default
    default_duration_min: int = 30
    # contacts, companies, deals and fact proposals; None where a process has not wired them
    crm: "Crm | None" = None
    # which emails Deputy has shown, and the headers behind an inbox card's buttons; None where not wired
    mail: MailMarks | None = None
    # forgetting a text in every store (preview, then remove) and per-project retention; None where not wired
    forgetting: Forgetting | None = None
    workspaces: Workspaces | None = None
    # what this thread can undo (done cards' Undo, "undo that") and for how long after it was done (UNDO_WINDOW)
    undo: UndoLog | None = None
    undo_window_s: float = 900


Skill = Callable[[SkillContext, Intent], Outcome]
# a card button's handler: the context and the button's value
Decider = Callable[[SkillContext, str], Outcome]
