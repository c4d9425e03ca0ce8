"""Requests Deputy understands before it can fully carry them out: contacts, forgetting a note, undo.

Each answers honestly with what it did instead (a contact kept as a note, the notes that match)
and what the operator can do meanwhile; none pretends to have done the job."""
from __future__ import annotations

import time

from kernel.messages import Intent, Outcome
from agents.skill_context import SkillContext

# notes made from a contact request, so they can be moved into contacts once there are contacts
CONTACT_PROJECT = "contacts"


def save_contact(ctx: SkillContext, intent: Intent) -> Outcome:
    details = str(intent.slots.get("details") or intent.text).strip()
    note, created = ctx.notes.add(details, project=CONTACT_PROJECT, author=ctx.actor, source_event=ctx.trace_id)
    if created and ctx.recall is not None:
        ctx.recall.remember(note.text, note.project, ctx.actor, ctx.trace_id)
    kept = "I kept it as a note" if created else "I already had that as a note"
    return Outcome(text=f"I don't have a contact book yet, so {kept}: \"{note.text}\" (note {note.id[:8]}). "
                        "Ask me for it any time, e.g. \"what's Ana's email?\".")


def find_contact(ctx: SkillContext, intent: Intent) -> Outcome:
    query = str(intent.slots.get("query") or intent.text)
    hits = ctx.notes.search(query, limit=3)
    if not hits:
        return Outcome(text="I don't have a contact book yet, and nothing in your notes matches. "
                            "Tell me the details (\"Ana's email is ana@acme.io\") and I'll find them next time.")
    lines = ["I don't have a contact book yet; from your notes:"]
    for note, _ in hits:
        when = time.strftime("%Y-%m-%d", time.localtime(note.created_at))
        lines.append(f"• {note.text} [note {note.id[:8]}, {when}]")
    return Outcome(text="\n".join(lines))


def forget(ctx: SkillContext, intent: Intent) -> Outcome:
    query = str(intent.slots.get("query") or "").strip()
    hits = ctx.notes.search(query, limit=3) if query else []
    lines = ["I can't delete notes from chat yet, so nothing was removed."]
    if hits:
        lines.append("These are the notes that match:")
        lines += [f"• {note.text} [note {note.id[:8]}]" for note, _ in hits]
    lines.append("If one is wrong, tell me the right version with /remember: when you ask, I show each note with its date.")
    return Outcome(text="\n".join(lines))


def undo(ctx: SkillContext, intent: Intent) -> Outcome:
    return Outcome(text="I can't undo yet, so nothing was changed. What you can do instead: a task — /task delete N; "
                        "a reminder — /reminders cancel N; a card you haven't approved yet — press Reject, and nothing happens.")
