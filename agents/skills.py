"""Skills: what Deputy does for each intent that needs no plan (notes, tasks, traces, help).

Each skill takes the context and the intent and returns an Outcome; SKILLS is the one list."""
from __future__ import annotations

import time

from kernel.messages import Intent, Outcome
from agents import action_skills, agenda_skills, calendar_skills, conversation, corrections, reminder_skills, routine_skills, setup_hints, task_skills
from agents import change_undo, contact_skills, deal_skills, fact_answers, profile_skills
from agents import email_skills, forget_skills, inbox_skills, smalltalk, undo_skills
from agents.intents import clarification
from agents.intents.help import command_help
from agents.recall import UNVERIFIED
from agents.skill_context import Decider, Skill, SkillContext
from agents import undo_cards


def help_(ctx: SkillContext, intent: Intent) -> Outcome:
    if intent.slots.get("reason") == "unknown":
        return Outcome(text="I'm not sure what you mean. " + ctx.help_text)
    topic = str(intent.slots.get("topic") or "") if intent.source == "command" else ""
    return Outcome(text=command_help(topic) or ctx.help_text)


def usage(ctx: SkillContext, intent: Intent) -> Outcome:
    return Outcome(text=str(intent.slots.get("message", "")), ok=False)


def remember(ctx: SkillContext, intent: Intent) -> Outcome:
    note, created = ctx.notes.add(
        str(intent.slots["text"]), project=str(intent.slots.get("project", "inbox")), author=ctx.actor, source_event=ctx.trace_id
    )
    if ctx.recall is not None:
        ctx.recall.remember(note.text, note.project, ctx.actor, ctx.trace_id)
    if not created:
        return Outcome(text=f"I already had that. (note {note.id[:8]})")
    # an undo takes the note back; the copy semantic memory made goes only with /forget
    also = " (undo removes the note; /forget also removes it from semantic memory)" if ctx.recall is not None else ""
    change_undo.offer_undo(ctx, f"Noted: {note.text}{also}", "notes.remove", {"id": note.id})
    return Outcome(text=f"Noted. (note {note.id[:8]})")


def ask(ctx: SkillContext, intent: Intent) -> Outcome:
    question = str(intent.slots["question"])
    # what is known now about a person or a deal comes first, with what it replaced
    known = fact_answers.answer(contact_skills.crm_of(ctx), question, ctx.timezone)
    if known is not None:
        return Outcome(text=known)
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


def run_playbook(ctx: SkillContext, intent: Intent) -> Outcome:
    # an operator's intent (intents file) that names a playbook: the agent plans it under that name
    return action_skills.act(ctx, intent.model_copy(update={"name": str(intent.slots.get("playbook", ""))}))


# The one list of card buttons Deputy answers, by action.
DECISIONS: dict[str, Decider] = {
    "task.done": task_skills.decide_done,
    "task.delete": task_skills.decide_delete,
    "task.snooze": task_skills.decide_snooze,
    "reminder.snooze": reminder_skills.snooze_reminder,
    "reminder.done": reminder_skills.finish_reminder,
    "reminder.cancel": reminder_skills.cancel_reminder,
    "budget.approve": routine_skills.approve_spend,
    "budget.decline": routine_skills.decline_spend,
    "approval.approve": action_skills.approve,
    "approval.reject": action_skills.reject,
    "draft.send": action_skills.send_draft,
    "draft.discard": action_skills.discard_draft,
    # contact details someone else's text proposed: they become facts only when confirmed
    contact_skills.CONFIRM: contact_skills.confirm,
    contact_skills.REJECT: contact_skills.reject,
    # an inbox summary's card per email
    inbox_skills.REPLY: inbox_skills.reply_clicked,
    inbox_skills.TASK: inbox_skills.task_clicked,
    inbox_skills.IGNORE: inbox_skills.ignore_clicked,
    # a request whose connector is not set up, kept for later
    "setup.draft": setup_hints.keep_as_draft,
    "setup.task": setup_hints.keep_as_task,
    # a clarifying question's buttons: carry out the intent picked, on the original text
    "intent.choose": lambda ctx, value: clarification.choose(ctx, value, SKILLS),
    # a quick-reply button on a question Deputy asked: the same as typing its answer
    "conversation.answer": lambda ctx, value: conversation.clicked(ctx, value, SKILLS),
    # a free slot offered on a card whose time clashed: the action again at that time
    calendar_skills.SLOT_ACTION: lambda ctx, value: corrections.pick_slot(ctx, value, SKILLS),
    # a forgetting's preview card: remove it everywhere, or keep it
    forget_skills.CONFIRM: forget_skills.confirm,
    forget_skills.KEEP: forget_skills.keep,
    # a done card's Undo: the action's compensations, once, within UNDO_WINDOW
    undo_cards.UNDO: undo_skills.undo_clicked,
}

# The one list of skills, by intent name.
SKILLS: dict[str, Skill] = {
    "help": help_,
    "usage_error": usage,
    "remember": remember,
    "ask": ask,
    "task": task_skills.task,
    "trace": trace,
    "digest": routine_skills.digest,
    "budget": routine_skills.budget,
    "remind": reminder_skills.remind,
    "reminders": reminder_skills.reminders,
    # action intents: each becomes a plan (agents/playbooks.yaml) that may ask for approval
    "email": action_skills.act,
    # "email bob@acme.io that the contract is signed": a complete email from free text, asking for what is missing
    "send_email": email_skills.send_email,
    "schedule": calendar_skills.schedule,
    # the calendar asked ("am I free Thursday afternoon") and changed (move, cancel: found, then approved)
    "agenda": agenda_skills.agenda,
    "move_meeting": agenda_skills.move_meeting,
    "cancel_meeting": agenda_skills.cancel_meeting,
    # "/calendar GOAL": a calendar change the model plans, within the calendar specialist's capabilities
    "calendar": action_skills.act,
    "followup": action_skills.act,
    "webhook": action_skills.act,
    "do": action_skills.act,
    "lookup": action_skills.act,
    # a delivery from outside: contact details in it become a proposal, the rest a plan
    "triage": contact_skills.triage,
    # free text the classifier was not sure about: ask, offering the two likeliest intents
    "clarify": clarification.ask,
    "draft": action_skills.draft,
    # "what's new in my inbox", "reply to Ana's last email" (IMAP)
    "inbox": inbox_skills.inbox_summary,
    "reply": inbox_skills.reply_email,
    "playbook": run_playbook,
    "capability": action_skills.run_capability,
    # the operator's clock: "my time zone is Europe/Madrid", /timezone, "I work 9 to 6", /hours
    "timezone": profile_skills.timezone,
    "hours": profile_skills.timezone,
    # greetings and thanks get a short reply, not the help text
    "smalltalk": smalltalk.smalltalk,
    # forget a text in every store (a preview card first); a project's retention
    "forget": forget_skills.forget,
    "project": forget_skills.project,
    # contacts and deals: "Ana's new email is …", "what's Bob's number", /contact, "move the Acme deal to won"
    "save_contact": contact_skills.save_contact,
    "find_contact": contact_skills.find_contact,
    "contact": contact_skills.contact,
    "update_deal": deal_skills.update_deal,
    "stale_leads": deal_skills.stale_leads,
    # "undo that": the newest action of this thread that can still be undone
    "undo": undo_skills.undo_that,
}
# a request with a time, from an operator whose zone no channel told (Telegram), first asks for it, once
SKILLS.update({name: profile_skills.zone_first(SKILLS[name]) for name in profile_skills.TIMED_SKILLS if name in SKILLS})
