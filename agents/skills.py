"""Skills: what Deputy does for each intent that needs no plan (notes, tasks, traces, help).

Each skill takes the context and the intent and returns an Outcome; SKILLS is the one list."""
from __future__ import annotations

import time

from kernel.messages import Button, Card, CardField, Intent, Outcome
from memory.tasks import Task
from agents import action_skills, conversation, routine_skills
from agents.intents import clarification
from agents.recall import UNVERIFIED
from agents.skill_context import Decider, Skill, SkillContext


def help_(ctx: SkillContext, intent: Intent) -> Outcome:
    if intent.slots.get("reason") == "unknown":
        return Outcome(text="I'm not sure what you mean. " + ctx.help_text)
    return Outcome(text=ctx.help_text)


def usage(ctx: SkillContext, intent: Intent) -> Outcome:
    return Outcome(text=str(intent.slots.get("message", "")), ok=False)


def remember(ctx: SkillContext, intent: Intent) -> Outcome:
    note, created = ctx.notes.add(
        str(intent.slots["text"]), project=str(intent.slots.get("project", "inbox")), author=ctx.actor, source_event=ctx.trace_id
    )
    if ctx.recall is not None:
        ctx.recall.remember(note.text, note.project, ctx.actor, ctx.trace_id)
    return Outcome(text=f"Noted. (note {note.id[:8]})" if created else f"I already had that. (note {note.id[:8]})")


def ask(ctx: SkillContext, intent: Intent) -> Outcome:
    question = str(intent.slots["question"])
    if ctx.recall is not None:
        text, found = ctx.recall.answer(ctx.workspace, question)
        if found:
            ctx.events.record(ctx.trace_id, "memory.recalled", actor="worker", hits=len(found),
                              sources=sorted({h.item.source for h in found}), ids=[h.item.id for h in found])
            return Outcome(text=text)
    hits = ctx.notes.search(question, limit=3)
    if not hits:
        return Outcome(text="I don't have anything on that yet. Tell me with /remember.")
    # a note made from someone else's text is never passed off as the operator's own words
    lines = ["From what you told me:" if all(n.trust == "operator" for n, _ in hits) else "From my notes:"]
    for note, _ in hits:
        when = time.strftime("%Y-%m-%d", time.localtime(note.created_at))
        flag = f" ({UNVERIFIED})" if note.trust == "untrusted" else ""
        lines.append(f"• {note.text} [note {note.id[:8]}, {when}]{flag}")
    return Outcome(text="\n".join(lines))


def task_card(task: Task) -> Card:
    done = task.status == "done"
    return Card(
        card_id=f"task-{task.id}",
        title=f"Task #{task.id}",
        fields=(CardField(label="Task", value=task.title), CardField(label="Project", value=task.project)),
        buttons=() if done else (Button(label="Mark done", action="task.done", value=str(task.id), style="primary"),),
        resolution="Done ✓" if done else "",
    )


def task(ctx: SkillContext, intent: Intent) -> Outcome:
    action = intent.slots.get("action", "list")
    if action == "add":
        new = ctx.tasks.add(str(intent.slots["title"]), project=str(intent.slots.get("project", "inbox")), source_event=ctx.trace_id)
        return Outcome(text=f"Added task #{new.id}: {new.title}", card=task_card(new))
    if action == "done":
        return finish_task(ctx, int(intent.slots["task_id"]))
    status = str(intent.slots.get("status", "open"))
    tasks = ctx.tasks.list(status=status)
    if not tasks:
        return Outcome(text="No open tasks. 🎉" if status == "open" else "Nothing done yet.")
    title = "Open tasks:" if status == "open" else "Done tasks:"
    return Outcome(text="\n".join([title, *(f"#{t.id} {t.title}" + (f" ({t.project})" if t.project != "inbox" else "") for t in tasks)]))


def finish_task(ctx: SkillContext, task_id: int) -> Outcome:
    found, closed = ctx.tasks.done(task_id)
    if found is None:
        return Outcome(text=f"There is no task #{task_id}.", ok=False)
    if not closed:
        return Outcome(text=f"Task #{task_id} was already done.", card=task_card(found))
    return Outcome(text=f"Done: #{found.id} {found.title}", card=task_card(found))


def trace(ctx: SkillContext, intent: Intent) -> Outcome:
    trace_id = str(intent.slots.get("trace_id") or "")
    if not trace_id:
        earlier = [e for e in ctx.events.recent(200, kinds=["inbound.received"]) if e.trace_id != ctx.trace_id]
        if not earlier:
            return Outcome(text="Nothing to trace yet.")
        trace_id = earlier[-1].trace_id
    events = ctx.events.timeline(trace_id)
    if not events:
        return Outcome(text=f"I have no trace {trace_id}.", ok=False)
    start = events[0].ts
    lines = [f"Trace {trace_id}:"]
    lines += [f"+{(e.ts - start) * 1000:7.1f} ms  {e.kind}  {e.summary}" for e in events]
    return Outcome(text="\n".join(lines))


def decide_task(ctx: SkillContext, value: str) -> Outcome:
    if not value.isdigit():
        return Outcome(text="That button is not valid any more.", ok=False)
    return finish_task(ctx, int(value))


def run_playbook(ctx: SkillContext, intent: Intent) -> Outcome:
    # an operator's intent (intents file) that names a playbook: the agent plans it under that name
    return action_skills.act(ctx, intent.model_copy(update={"name": str(intent.slots.get("playbook", ""))}))


# The one list of card buttons Deputy answers, by action.
DECISIONS: dict[str, Decider] = {
    "task.done": decide_task,
    "reminder.snooze": routine_skills.snooze_reminder,
    "reminder.done": routine_skills.finish_reminder,
    "budget.approve": routine_skills.approve_spend,
    "budget.decline": routine_skills.decline_spend,
    "approval.approve": action_skills.approve,
    "approval.reject": action_skills.reject,
    "draft.send": action_skills.send_draft,
    "draft.discard": action_skills.discard_draft,
    # a clarifying question's buttons: carry out the intent picked, on the original text
    "intent.choose": lambda ctx, value: clarification.choose(ctx, value, SKILLS),
    # a quick-reply button on a question Deputy asked: the same as typing its answer
    "conversation.answer": lambda ctx, value: conversation.clicked(ctx, value, SKILLS),
}

# The one list of skills, by intent name.
SKILLS: dict[str, Skill] = {
    "help": help_,
    "usage_error": usage,
    "remember": remember,
    "ask": ask,
    "task": task,
    "trace": trace,
    "digest": routine_skills.digest,
    "budget": routine_skills.budget,
    "remind": routine_skills.remind,
    # action intents: each becomes a plan (agents/playbooks.yaml) that may ask for approval
    "email": action_skills.act,
    "schedule": action_skills.act,
    "followup": action_skills.act,
    "webhook": action_skills.act,
    "do": action_skills.act,
    "lookup": action_skills.act,
    "triage": action_skills.act,
    # free text the classifier was not sure about: ask, offering the two likeliest intents
    "clarify": clarification.ask,
    "draft": action_skills.draft,
    "playbook": run_playbook,
    "capability": action_skills.run_capability,
}
