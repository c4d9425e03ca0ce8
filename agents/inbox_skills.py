"""The inbox as an everyday job: "what's new in my inbox" (a card per new email: Reply / Make task / Ignore) and
"reply to Ana's last email" (a draft in her thread; Send goes through the email playbook's approval).

Reading changes nothing in the mailbox: "new" means not yet shown by Deputy (memory/mail_marks.py), so mail the
operator read elsewhere, or that inbox triage marked seen, still shows once. Email text is someone else's: it only
ever fills a card, a task title or the quoted subject of a reply, never an instruction."""
from __future__ import annotations

import re
import time
from typing import Any

from agents.action_skills import NOT_WIRED
from agents.contact_skills import crm_of, proposal_card
from agents.conversation import ask
from agents.drafts import Draft, Request, draft_card, new_draft
from agents.email_skills import body_of
from agents.setup_hints import unconfigured
from agents.skill_context import SkillContext
from integrations.capability import CapabilityError
from integrations.email_message import InboxMessage, task_title
from kernel.messages import Button, Card, CardField, Intent, Outcome
from kernel.text import EMAIL

READ = "email.read_inbox"
# how far back "new" looks for mail already read elsewhere, and how many cards one answer shows
RECENT_DAYS = 14
SHOWN = 5
REPLY, TASK, IGNORE = "inbox.reply", "inbox.task", "inbox.ignore"

# "reply to Ana's last email", "answer bob@acme.io's latest mail", "respond to the email from Ana Lopez"
_WHO = re.compile(r"\b(?:reply|respond|answer|write back|get back)\s+(?:to\s+)?(?:the\s+)?(?P<who>[\w.@+-]+(?:\s+[A-Z][\w-]+)?)"
                  r"(?:'s|’s)\s+(?:(?:last|latest|newest|most recent|recent|new)\s+)?(?:e-?mail|mail|message|note)", re.I)
_FROM = re.compile(r"\b(?:e-?mail|mail|message|note)\s+from\s+(?P<who>[\w.@+-]+(?:\s+[A-Z][\w-]+)?)", re.I)


def headers_of(message: InboxMessage) -> dict[str, Any]:
    """What a card and its buttons keep of an email: never its body, only its first line."""
    return {"message_id": message.message_id, "sender": message.sender, "sender_name": message.sender_name,
            "subject": message.subject, "references": message.reply_references, "first_line": message.first_line}


def _from(headers: dict[str, Any]) -> str:
    name, address = headers.get("sender_name") or "", headers.get("sender") or "unknown sender"
    return f"{name} <{address}>" if name else address


def mail_card(ref: str, headers: dict[str, Any], resolution: str = "") -> Card:
    buttons = () if resolution else (
        Button(label="Reply", action=REPLY, value=ref, style="primary"),
        Button(label="Make task", action=TASK, value=ref),
        Button(label="Ignore", action=IGNORE, value=ref),
    )
    return Card(card_id=f"mail-{ref}", title="New email",
                fields=(CardField(label="From", value=_from(headers)), CardField(label="Subject", value=headers.get("subject") or "(no subject)")),
                preview=str(headers.get("first_line") or ""), buttons=buttons, resolution=resolution)


def _read(ctx: SkillContext, args: dict[str, Any]) -> list[InboxMessage] | Outcome:
    assert ctx.agent is not None
    try:
        return list(ctx.agent.executor.read(READ, args, ctx.trace_id, ctx.workspace).messages)
    except CapabilityError as err:
        return Outcome(text=f"I could not read your inbox: {err}", ok=False)


def inbox_summary(ctx: SkillContext, intent: Intent) -> Outcome:
    """What arrived that Deputy has not shown yet, newest first: a line each, and a card each with its buttons."""
    hint = unconfigured(ctx, READ, "show you what's new in your inbox")
    if hint is not None:
        return hint
    if ctx.agent is None or ctx.mail is None:
        return NOT_WIRED
    found = _read(ctx, {"which": "recent", "days": RECENT_DAYS, "limit": 50})
    if isinstance(found, Outcome):
        return found
    shown_before = ctx.mail.shown([m.message_id for m in found])
    new = [m for m in found if m.message_id not in shown_before]
    if not new:
        return Outcome(text="Nothing new in your inbox since I last showed it to you.")
    now, later = new[:SHOWN], len(new) - SHOWN
    cards = tuple(mail_card(ctx.mail.keep(headers_of(m)), headers_of(m)) for m in now) + _sender_proposals(ctx, now)
    ctx.mail.mark_shown([m.message_id for m in now])
    ctx.events.record(ctx.trace_id, "inbox.shown", actor="worker", shown=len(now), more=max(later, 0))
    lines = [f"{len(new)} new email{'s' if len(new) != 1 else ''}, newest first:" if later <= 0 else
             f"{len(new)} new emails; the newest {SHOWN}:"]
    lines += [f"• {m.sender_name or m.sender} — {m.subject or '(no subject)'}: {m.first_line[:80]}" for m in now]
    if later > 0:
        lines.append(f"Ask again for the other {later}.")
    return Outcome(text="\n".join(lines), more=cards)


def _sender_proposals(ctx: SkillContext, messages: list[InboxMessage]) -> tuple[Card, ...]:
    """A Confirm / Reject card for each named sender the contacts do not know yet: the name and address are the
    sender's own words, so they become a contact only when the operator confirms them."""
    crm, since, cards = crm_of(ctx), time.time(), []
    for sender in {m.sender: m for m in messages if m.sender_name and m.sender}.values():
        if crm.contacts.by_email(sender.sender) is None:
            proposal = crm.proposals.propose(sender.sender_name, {"email": sender.sender}, "email", sender.sender)
            if proposal.status == "pending" and proposal.proposed_at >= since:
                cards.append(proposal_card(proposal))
    return tuple(cards)


def _sender_asked(intent: Intent) -> str:
    if intent.slots.get("sender"):
        return str(intent.slots["sender"]).strip()
    text = intent.text or str(intent.slots.get("request") or "")
    found = _WHO.search(text) or _FROM.search(text)
    if found:
        return found.group("who").strip()
    named = [str(e) for e in intent.slots.get("emails") or []] + [str(p) for p in intent.slots.get("people") or []]
    return named[0] if named else ""


def _theirs(who: str, message: InboxMessage) -> bool:
    # "Ana" is Ana Lopez or ana@…, not Banana Co; an address must be the sender's own
    if EMAIL.fullmatch(who):
        return message.sender == who.lower()
    return re.search(rf"(?<![\w]){re.escape(who)}", f"{message.sender_name} {message.sender}", re.I) is not None


def reply_email(ctx: SkillContext, intent: Intent) -> Outcome:
    """A draft answering the latest email from the person named, in its thread; Send asks for approval."""
    who = _sender_asked(intent)
    hint = unconfigured(ctx, READ, f"draft a reply to {who or 'that'} email")
    if hint is not None:
        return hint
    if ctx.agent is None or ctx.drafts is None:
        return NOT_WIRED
    if not who:
        return ask(ctx, intent, "sender", "Whose email should I reply to? (a name or an address)", kind="text")
    found = _read(ctx, {"which": "recent", "sender": who[:200].replace('"', ""), "limit": 20})
    if isinstance(found, Outcome):
        return found
    latest = next((m for m in found if _theirs(who, m)), None)
    if latest is None:
        return Outcome(text=f"I found no email from {who} in your inbox.", ok=False)
    said = str(intent.slots.get("body") or body_of(intent.text or str(intent.slots.get("request") or "")))
    made = reply_draft(ctx, headers_of(latest), said)
    return Outcome(text=f"Here is a reply to {latest.sender_name or latest.sender}'s “{latest.subject}”. "
                        "Send asks for your approval first.", card=draft_card(made))


def reply_draft(ctx: SkillContext, headers: dict[str, Any], said: str = "") -> Draft:
    """A reply to the email with these headers, kept as a draft: the operator's words, or a short template to edit."""
    assert ctx.drafts is not None
    sender, subject = str(headers["sender"]), str(headers.get("subject") or "(no subject)")
    first = str(headers.get("sender_name") or "").split(" ")[0]
    text = said or f"Thank you for your email about “{subject}”. I'll get back to you shortly."
    body = f"{'Hi ' + first + ',' if first else 'Hello,'}\n\n{text.rstrip()}\n\nBest regards"
    request = Request(to=(sender,), people=(), about=subject, text=f"reply to {sender}'s email “{subject}”")
    reply_subject = subject if re.match(r"(?i)re\s*:", subject) else f"Re: {subject}"
    made = new_draft(request, reply_subject, body, "operator" if said else "template", ctx.trace_id)
    made = made.model_copy(update={"in_reply_to": str(headers["message_id"]), "references": str(headers.get("references") or "")})
    ctx.drafts.save(made)
    ctx.events.record(ctx.trace_id, "draft.created", actor="worker", draft_id=made.id, to=list(made.to),
                      written_by=made.written_by, digest=made.digest, in_reply_to=made.in_reply_to)
    return made


def _clicked(ctx: SkillContext, ref: str, what: str) -> dict[str, Any] | Outcome:
    """The headers behind a card's button, once: a second click (or a copy's) says what was done before."""
    headers = ctx.mail.headers(ref) if ctx.mail is not None else None
    if headers is None:
        return Outcome(text="I no longer have that email's details (they are kept for 30 days); ask me what's new again.", ok=False)
    earlier = ctx.mail.settle(ref, what) if ctx.mail is not None else None
    if earlier is not None:
        return Outcome(text=f"Already done: {earlier}.", card=mail_card(ref, headers, earlier.capitalize()), ok=False)
    return headers


def reply_clicked(ctx: SkillContext, ref: str) -> Outcome:
    if ctx.drafts is None:
        return NOT_WIRED
    headers = _clicked(ctx, ref, "reply drafted")
    if isinstance(headers, Outcome):
        return headers
    made = reply_draft(ctx, headers)
    return Outcome(text="Here is a reply to edit or send; Send asks for your approval first.", card=draft_card(made),
                   updates=(mail_card(ref, headers, f"Reply drafted by {ctx.actor}"),))


def task_clicked(ctx: SkillContext, ref: str) -> Outcome:
    headers = _clicked(ctx, ref, "made a task")
    if isinstance(headers, Outcome):
        return headers
    message = InboxMessage(uid=0, message_id=headers["message_id"], sender=headers["sender"],
                           sender_name=headers.get("sender_name") or "", subject=headers.get("subject") or "")
    # the same task inbox triage would make for it (one per Message-ID), kept as someone else's words
    task = ctx.tasks.add(task_title(message), project="inbox", source_event=f"email:{message.message_id}", trust="untrusted")
    return Outcome(text=f"Added task #{task.id}: {task.title}", card=mail_card(ref, headers, f"Task #{task.id} made by {ctx.actor}"))


def ignore_clicked(ctx: SkillContext, ref: str) -> Outcome:
    headers = _clicked(ctx, ref, "ignored")
    if isinstance(headers, Outcome):
        return headers
    return Outcome(text="Ignored; it stays in your mailbox as it was.", card=mail_card(ref, headers, f"Ignored by {ctx.actor}"))
