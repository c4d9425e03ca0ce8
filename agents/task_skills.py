"""The to-do list: add, list, done, edit, delete and snooze tasks, by number ("/task done 3") or by their words
("mark the invoice task done"), and the buttons on task cards.

Registered in agents/skills.py (SKILLS and DECISIONS) like every other skill."""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from kernel.messages import Button, Card, CardField, Intent, Outcome
from memory.tasks import Task
from agents.change_undo import offer_undo
from agents.conversation import ask
from agents.intents.slots import find_when
from agents.picking import best_matches, number_in
from agents.skill_context import SkillContext
from integrations.internal import task_undo

# a snooze to a day without a time of day ends at the start of the working day
DEFAULT_HOUR = 9
VERBS = {"done": "mark done", "edit": "change", "delete": "delete", "snooze": "snooze"}


def _tz(ctx: SkillContext) -> str:
    return str(getattr(ctx, "timezone", None) or (ctx.reminders.tz if ctx.reminders else "UTC"))


def _local(ts: float, tz: str) -> str:
    moment = datetime.fromtimestamp(ts, ZoneInfo(tz))
    return f"{moment:%a %d %b %H:%M}"


def task_card(task: Task, tz: str = "UTC", note: str = "") -> Card:
    done = task.status == "done"
    fields = [CardField(label="Task", value=task.title), CardField(label="Project", value=task.project)]
    if not done and task.snoozed(time.time()):
        fields.append(CardField(label="Snoozed until", value=_local(float(task.snoozed_until or 0), tz)))
    live = not done and not note
    buttons = (
        Button(label="Mark done", action="task.done", value=str(task.id), style="primary"),
        Button(label="Snooze to tomorrow", action="task.snooze", value=str(task.id)),
        Button(label="Delete", action="task.delete", value=str(task.id), style="danger"),
    ) if live else ()
    return Card(card_id=f"task-{task.id}", title=f"Task #{task.id}", fields=tuple(fields), buttons=buttons,
                resolution=note or ("Done ✓" if done else ""))


def task(ctx: SkillContext, intent: Intent) -> Outcome:
    action = str(intent.slots.get("action") or "list")
    if action == "add":
        title, project = str(intent.slots["title"]), str(intent.slots.get("project", "inbox"))
        tagged = re.search(r"(?:^|\s)#([\w-]+)\s*$", title)
        if tagged:  # "add task send invoice #billing", as /task add takes it
            title, project = title[: tagged.start()].strip(), tagged.group(1).lower()
        new = ctx.tasks.add(title, project=project, source_event=ctx.trace_id)
        return _changed(ctx, f"Added task #{new.id}: {new.title}", None, new, card=task_card(new, _tz(ctx)))
    if action not in VERBS:
        return list_tasks(ctx, str(intent.slots.get("status", "open")))
    found = _target(ctx, intent, action)
    if isinstance(found, Outcome):
        return found
    if action == "done":
        return finish_task(ctx, found.id)
    if action == "delete":
        return delete_task(ctx, found.id)
    if action == "edit":
        return _edit(ctx, intent, found)
    return _snooze(ctx, intent, found)


def list_tasks(ctx: SkillContext, status: str) -> Outcome:
    now, tz = time.time(), _tz(ctx)
    tasks = ctx.tasks.list(status="done" if status == "done" else "open")
    if status == "snoozed":
        snoozed = sorted((t for t in tasks if t.snoozed(now)), key=lambda t: t.snoozed_until or 0)
        if not snoozed:
            return Outcome(text="No snoozed tasks.")
        return Outcome(text="\n".join(["Snoozed tasks:", *(f"{_line(t)} — snoozed until {_local(t.snoozed_until or 0, tz)}"
                                                          for t in snoozed)]))
    if status == "done":
        return Outcome(text="\n".join(["Done tasks:", *map(_line, tasks)]) if tasks else "Nothing done yet.")
    shown = [t for t in tasks if not t.snoozed(now)]
    hidden = len(tasks) - len(shown)
    later = f"\n(+{hidden} snoozed: /task list snoozed)" if hidden else ""
    if not shown:
        return Outcome(text=("No open tasks. 🎉" if not hidden else "Nothing due now.") + later)
    return Outcome(text="\n".join(["Open tasks:", *map(_line, shown)]) + later)


def _line(t: Task) -> str:
    return f"#{t.id} {t.title}" + (f" ({t.project})" if t.project != "inbox" else "")


def _target(ctx: SkillContext, intent: Intent, action: str) -> Task | Outcome:
    """The task a request means: its number, or the open task whose title best matches its words;
    several equally good ones are offered as a choice."""
    given = intent.slots.get("task_id")
    query = _query(intent)
    number = int(str(given).lstrip("#")) if str(given or "").lstrip("#").isdigit() else number_in(query)
    if number is not None:
        found = ctx.tasks.get(number)
        return found or Outcome(text=f"There is no task #{number}.", ok=False)
    open_tasks = ctx.tasks.list("open", limit=1000)
    matches = best_matches(query, open_tasks, lambda t: t.title)
    if not matches:
        listing = "\n".join(map(_line, open_tasks[:10])) or "You have no open tasks."
        return Outcome(text=f"I could not find an open task matching '{query}'. Which one? Say its number, e.g. "
                            f"/task {action} 3.\n{listing}", ok=False)
    if len(matches) == 1:
        return matches[0]
    options = tuple((f"#{t.id} {t.title}"[:40], str(t.id)) for t in matches[:5])
    prompt = f"Which task should I {VERBS[action]}? " + "; ".join(label for label, _ in options)
    return ask(ctx, intent, slot="task_id", prompt=prompt, kind="choice", options=options)


def _query(intent: Intent) -> str:
    query = str(intent.slots.get("query") or intent.text or "")
    when = str(intent.slots.get("when_text") or "")
    if when:
        query = query.replace(when, " ")
    if intent.slots.get("action") == "edit" and not intent.slots.get("title"):
        query = re.split(r"\s+(?:to|into|as)\s+", query, maxsplit=1)[0]
    return query.strip()


def _changed(ctx: SkillContext, text: str, before: Task | None, after: Task | None, card: Card) -> Outcome:
    """A change made to a task: "undo that" puts BEFORE back (None: the task goes) while the task is still AFTER."""
    changed = after or before
    assert changed is not None
    offer_undo(ctx, text, "tasks.restore", task_undo(changed.id, before, after))
    return Outcome(text=text, card=card)


def finish_task(ctx: SkillContext, task_id: int) -> Outcome:
    before = ctx.tasks.get(task_id)
    found, closed = ctx.tasks.done(task_id)
    if found is None:
        return Outcome(text=f"There is no task #{task_id}.", ok=False)
    if not closed:
        return Outcome(text=f"Task #{task_id} was already done.", card=task_card(found, _tz(ctx)))
    return _changed(ctx, f"Done: #{found.id} {found.title}", before, found, card=task_card(found, _tz(ctx)))


def delete_task(ctx: SkillContext, task_id: int) -> Outcome:
    gone = ctx.tasks.delete(task_id)
    if gone is None:
        return Outcome(text=f"There is no task #{task_id} (already deleted?).", ok=False)
    ctx.events.record(ctx.trace_id, "task.deleted", actor=ctx.actor, task_id=task_id, title=gone.title)
    return _changed(ctx, f"Deleted task #{gone.id}: {gone.title}", gone, None, card=task_card(gone, _tz(ctx), note="Deleted"))


def _edit(ctx: SkillContext, intent: Intent, found: Task) -> Outcome:
    title = str(intent.slots.get("title") or "").strip() or _new_title(intent)
    project = str(intent.slots.get("project") or "").strip().lstrip("#").lower() or None
    if not title and project is None:
        return Outcome(text=f"What should task #{found.id} say instead? e.g. /task edit {found.id} send the invoice to Acme",
                       ok=False)
    changed = ctx.tasks.edit(found.id, title=title or None, project=project)
    if changed is None:
        return Outcome(text=f"There is no task #{found.id}.", ok=False)
    return _changed(ctx, f"Changed task #{changed.id}: {changed.title}", found, changed, card=task_card(changed, _tz(ctx)))


def _new_title(intent: Intent) -> str:
    # free text: "rename the invoice task to send the invoice Friday"
    parts = re.split(r"\s+(?:to|into|as)\s+", str(intent.slots.get("query") or intent.text or ""), maxsplit=1)
    return parts[1].strip(" \"'") if len(parts) == 2 else ""


def _snooze(ctx: SkillContext, intent: Intent, found: Task) -> Outcome:
    if found.status == "done":
        return Outcome(text=f"Task #{found.id} is already done.", ok=False)
    tz = _tz(ctx)
    until = snooze_until(str(intent.slots.get("when_text") or intent.slots.get("when") or _query(intent)), tz)
    if until is None:
        return Outcome(text=f"Until when? e.g. /task snooze {found.id} tomorrow 9am", ok=False)
    snoozed = ctx.tasks.snooze(found.id, until)
    assert snoozed is not None
    return _changed(ctx, f"Snoozed task #{found.id} until {_local(until, tz)}: it is off your list until then.", found, snoozed,
                    card=task_card(snoozed, tz))


def snooze_until(text: str, tz: str, now: datetime | None = None) -> float | None:
    """The moment a snooze ends, in the operator's zone; a day without a time means its working-day start."""
    when = find_when(text, tz, now) if text.strip() else None
    if when is None:
        return None
    moment = datetime.fromisoformat(when.iso)
    if not when.has_time:
        moment = moment.replace(hour=DEFAULT_HOUR, minute=0, tzinfo=ZoneInfo(tz))
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment.timestamp() if moment.timestamp() > (now or datetime.now(ZoneInfo(tz))).timestamp() else None


def decide_done(ctx: SkillContext, value: str) -> Outcome:
    return finish_task(ctx, int(value)) if value.isdigit() else Outcome(text="That button is not valid any more.", ok=False)


def decide_delete(ctx: SkillContext, value: str) -> Outcome:
    return delete_task(ctx, int(value)) if value.isdigit() else Outcome(text="That button is not valid any more.", ok=False)


def decide_snooze(ctx: SkillContext, value: str) -> Outcome:
    found = ctx.tasks.get(int(value)) if value.isdigit() else None
    if found is None or found.status == "done":
        return Outcome(text="That task is done or gone.", ok=False)
    tz = _tz(ctx)
    tomorrow = datetime.now(ZoneInfo(tz)) + timedelta(days=1)
    until = tomorrow.replace(hour=DEFAULT_HOUR, minute=0, second=0, microsecond=0).timestamp()
    snoozed = ctx.tasks.snooze(found.id, until)
    assert snoozed is not None
    return _changed(ctx, f"Snoozed task #{found.id} until {_local(until, tz)}.", found, snoozed, card=task_card(snoozed, tz))
