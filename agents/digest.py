"""The daily digest: one message that says what happened and what needs a decision.

Sources Deputy may or may not have (approvals, a calendar) come in through one-method Protocols,
so the digest works with whatever is configured and says plainly what it could not see."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol, Sequence
from zoneinfo import ZoneInfo

from agents.budget import Budgets
from agents.cost_report import by_task
from agents.spend_card import spend_card
from agents.costs import money
from kernel.messages import Card, Frozen
from agents.spend_chart import png, text_chart
from integrations.crm import Crm
from memory.events import Event, EventLog
from memory.facts import FactStore
from memory.notes import NoteStore
from memory.tasks import TaskStore

MAX_LINES = 8


class AgendaItem(Frozen):
    title: str
    start: datetime
    end: datetime | None = None
    location: str = ""
    all_day: bool = False


class PendingApprovals(Protocol):
    """Approval cards still waiting for the operator, buttons live."""

    def pending_cards(self) -> list[Card]: ...


class Agenda(Protocol):
    """The operator's calendar for one local day."""

    def agenda(self, day: date) -> list[AgendaItem]: ...


class Mark(Frozen):
    """What the previous digest saw, so this one can say what changed."""

    sent_at: float
    notes: int = 0
    facts: int = 0


@dataclass(frozen=True)
class Section:
    title: str
    lines: tuple[str, ...]
    empty: str = ""


@dataclass(frozen=True)
class Digest:
    day: date
    sections: tuple[Section, ...]
    cards: tuple[Card, ...]
    chart_png: bytes
    counts: dict[str, int] = field(default_factory=dict)
    late_note: str = ""

    @property
    def text(self) -> str:
        head = f"☀️ Your digest for {self.day:%A %d %B}"
        parts = [head + (f"\n{self.late_note}" if self.late_note else "")]
        for section in self.sections:
            body = [f"• {line}" for line in section.lines] or ([section.empty] if section.empty else [])
            if body:
                parts.append("\n".join([f"*{section.title}*", *body]))
        return "\n\n".join(parts)


@dataclass(frozen=True)
class Run:
    """One request's story, pieced together from its events."""

    trace_id: str
    text: str = ""
    intent: str = ""
    finished_ok: bool | None = None
    failed_error: str = ""
    retries: int = 0
    told_operator: bool = False
    delivery_failed: str = ""
    over_budget: bool = False


def runs_since(events: EventLog, since: float) -> list[Run]:
    stories: dict[str, dict[str, object]] = {}
    for event in events.since(since):
        story = stories.setdefault(event.trace_id, {"trace_id": event.trace_id, "retries": 0})
        _absorb(story, event)
    return [Run(**s) for s in stories.values() if s.get("text") or s.get("failed_error") or s.get("delivery_failed")]  # type: ignore[arg-type]


def _absorb(story: dict[str, object], event: Event) -> None:
    data = event.data
    if event.kind == "inbound.received":
        story["text"] = str(data.get("text", ""))
    elif event.kind == "intent.recognized":
        story["intent"] = str(data.get("intent", ""))
    elif event.kind == "job.finished":
        story["finished_ok"] = bool(data.get("ok", True))
    elif event.kind == "job.retry":
        story["retries"] = int(story.get("retries", 0)) + 1  # type: ignore[call-overload]
    elif event.kind == "job.failed":
        story["failed_error"] = str(data.get("error", "failed"))
    elif event.kind == "reply.queued" and str(data.get("reply_id", "")).endswith(".failed"):
        story["told_operator"] = True
    elif event.kind == "reply.failed":
        story["delivery_failed"] = str(data.get("error", "not delivered"))
    elif event.kind == "budget.refused":
        story["over_budget"] = True


class DigestBuilder:
    """Builds one workspace's digest from its stores; sends nothing."""

    def __init__(
        self, events: EventLog, tasks: TaskStore, notes: NoteStore, facts: FactStore, timezone: str,
        budgets: Budgets | None = None, approvals: PendingApprovals | None = None, agenda: Agenda | None = None,
        crm: Crm | None = None, quiet_days: int = 14,
    ) -> None:
        self.events = events
        self.tasks = tasks
        self.notes = notes
        self.facts = facts
        self.tz = ZoneInfo(timezone)
        self.budgets = budgets
        self.approvals = approvals
        self.agenda = agenda
        self.crm = crm
        self.quiet_days = quiet_days

    def build(self, now: datetime, previous: Mark | None = None, late_note: str = "") -> Digest:
        local = now.astimezone(self.tz)
        since = previous.sent_at if previous else (now - timedelta(days=1)).timestamp()
        runs = runs_since(self.events, since)
        cards = self._decision_cards()
        notes, facts = self.notes.count(), len(self.facts.all_current())
        sections = (
            Section("Needs your decision", tuple(f"{c.title} (card below)" for c in cards), "Nothing is waiting for you."),
            Section("Done", self._done(runs, since), "Nothing was done since the last digest."),
            Section("Failed, and what I did", self._failed(runs), ""),
            Section("Today's calendar", self._calendar(local.date()), ""),
            Section("New tasks", self._new_tasks(since), ""),
            Section("Leads gone quiet", self._quiet_leads(), ""),
            Section("Spend", self._spend(), ""),
            Section("Memory", (self._memory(notes, facts, previous),), ""),
        )
        chart = b""
        if self.budgets is not None:
            series = self.budgets.ledger.daily_series(14, until=local.date())
            daily = self.budgets.caps.daily
            chart = png(series, cap=daily)
        counts = {"decisions": len(cards), "done": sum(1 for r in runs if r.finished_ok and not r.failed_error),
                  "failed": sum(1 for r in runs if r.failed_error or r.delivery_failed), "notes": notes, "facts": facts}
        return Digest(day=local.date(), sections=sections, cards=tuple(cards), chart_png=chart, counts=counts, late_note=late_note)

    def _decision_cards(self) -> list[Card]:
        cards = list(self.approvals.pending_cards()) if self.approvals else []
        if self.budgets is not None:
            cards += [spend_card(r) for r in self.budgets.pending_requests()]
        return cards

    def _done(self, runs: Sequence[Run], since: float) -> tuple[str, ...]:
        lines = [f"{_short(r.text) or r.intent} — /trace {r.trace_id}" for r in runs if r.finished_ok and not r.failed_error]
        lines += [f"closed task #{t.id} {t.title}" for t in self.tasks.done_since(since)]
        return _capped(lines)

    def _failed(self, runs: Sequence[Run]) -> tuple[str, ...]:
        lines = []
        for r in runs:
            if r.failed_error:
                tries = f"tried {r.retries + 1} times" if r.retries else "tried once"
                told = "told you in the thread" if r.told_operator else "could not reach you in the thread"
                lines.append(f"{_short(r.text) or r.intent}: {_short(r.failed_error, 80)} — {tries}, {told}; /trace {r.trace_id}")
            elif r.delivery_failed:
                lines.append(f"a reply to '{_short(r.text)}' could not be delivered: {_short(r.delivery_failed, 80)}; /trace {r.trace_id}")
        return _capped(lines)

    def _calendar(self, day: date) -> tuple[str, ...]:
        if self.agenda is None:
            return ("no calendar connected",)
        try:
            items = self.agenda.agenda(day)
        except Exception as err:  # a calendar outage must not cost the operator the whole digest
            return (f"could not read the calendar ({type(err).__name__}: {_short(str(err), 80)})",)
        if not items:
            return ("nothing scheduled",)
        lines = []
        for item in sorted(items, key=lambda i: i.start):
            start = item.start.astimezone(self.tz)
            when = "all day" if item.all_day else f"{start:%H:%M}" + (f"–{item.end.astimezone(self.tz):%H:%M}" if item.end else "")
            lines.append(f"{when} {item.title}" + (f" ({item.location})" if item.location else ""))
        return _capped(lines)

    def _new_tasks(self, since: float) -> tuple[str, ...]:
        fresh = [t for t in self.tasks.list("open", limit=1000) if t.created_at >= since]
        return _capped([f"#{t.id} {t.title}" + (f" ({t.project})" if t.project != "inbox" else "") for t in fresh])

    def _quiet_leads(self) -> tuple[str, ...]:
        if self.crm is None:
            return ()
        stale = self.crm.stale(self.quiet_days)
        return _capped([f"{s.contact.name} — {s.why}; nothing for {self.quiet_days}+ days" for s in stale])

    def _spend(self) -> tuple[str, ...]:
        if self.budgets is None:
            return ()
        lines = []
        for row in self.budgets.status():
            if not (row["today"] or row["month"]) and row["project"] != "inbox":
                continue
            day_cap = f" of {money(row['daily_cap'])}" if row["daily_cap"] is not None else ""
            month_cap = f" of {money(row['monthly_cap'])}" if row["monthly_cap"] is not None else ""
            lines.append(f"{row['project']}: today {money(row['today'])}{day_cap}, this month {money(row['month'])}{month_cap}")
        tasks = by_task(self.budgets.ledger.month())
        if tasks:
            lines.append("by task this month: " + " · ".join(tasks))
        lines.append(text_chart(self.budgets.ledger.daily_series(14)))
        return tuple(lines)

    @staticmethod
    def _memory(notes: int, facts: int, previous: Mark | None) -> str:
        if previous is None:
            return f"{notes} notes, {facts} facts"
        return f"{notes} notes ({notes - previous.notes:+d}), {facts} facts ({facts - previous.facts:+d}) since the last digest"


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _capped(lines: list[str]) -> tuple[str, ...]:
    if len(lines) <= MAX_LINES:
        return tuple(lines)
    return (*lines[:MAX_LINES], f"… and {len(lines) - MAX_LINES} more")
