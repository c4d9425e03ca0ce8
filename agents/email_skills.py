"""Sending an email from free text: "email bob@acme.io that the contract is signed", "send Ana a mail: the files are
ready". The recipient comes from the words (an address, or a name the contacts know), the text from what follows
"saying", "that", "telling her" or a colon; whatever is missing is asked in the thread. The email playbook then
shows the exact message for approval, and "add lisa@acme.io" before approving corrects it."""
from __future__ import annotations

import re

from agents.action_skills import act
from agents.conversation import ask
from agents.corrections import hold
from agents.skill_context import SkillContext
from kernel.messages import Intent, Outcome
from kernel.text import EMAIL, find_emails

# where the message itself starts: "… saying X", "… that X", "… telling her X", "…: X"
_BODY = re.compile(r"(?:\s*:\s*|\s+(?:saying|to say|that says|that|telling (?:him|her|them)|and tell (?:him|her|them)(?: that)?|"
                   r"and say)\s+|\s+(?=asking\s))(?P<body>.+)$", re.I | re.S)
_ABOUT = re.compile(r"\b(?:about|re|regarding)\s+(?:the\s+)?(?P<about>[^,.;:]{3,60}?)(?=\s+(?:asking|saying|that|telling)\b|[,.;:]|$)", re.I)
_SUBJECT_WORDS = 7


def recipient_names(intent: Intent) -> list[str]:
    return [str(p) for p in intent.slots.get("people") or []]


def body_of(text: str) -> str:
    without = EMAIL.sub(" ", text)
    found = _BODY.search(without)
    body = found.group("body").strip() if found else ""
    return body[:1].upper() + body[1:] if body else ""


def subject_of(text: str, body: str) -> str:
    """"about X" when the request names it; else the text's first clause, whole words, no ellipsis."""
    about = _ABOUT.search(text)
    if about:
        words = about.group("about").strip()
        return words[:1].upper() + words[1:]
    clause = re.split(r"[.,;:!?]|\s+(?:and|but|so|because)\s+", body, maxsplit=1)[0].strip()
    words = clause.split()[:_SUBJECT_WORDS]
    return " ".join(words)[:1].upper() + " ".join(words)[1:]


def _addresses(ctx: SkillContext, intent: Intent) -> tuple[list[str], str | None]:
    """Addresses to send to, and a name no address is known for (to ask about)."""
    emails = [str(e) for e in intent.slots.get("emails") or []] + find_emails(str(intent.slots.get("to_answer") or ""))
    for name in recipient_names(intent):
        if any(name.lower() in e.lower() for e in emails):
            continue
        found = []
        if ctx.agent is not None and "contacts.lookup" in ctx.agent.executor.capabilities:
            out = ctx.agent.executor.read("contacts.lookup", {"query": name}, ctx.trace_id, ctx.workspace)
            found = [c.email for c in getattr(out, "contacts", []) if c.email]
        if len(found) != 1 and not intent.slots.get("to_answer"):
            return emails, name
        emails += found[:1]
    return list(dict.fromkeys(emails)), None


def send_email(ctx: SkillContext, intent: Intent) -> Outcome:
    """The send_email intent: a complete email (asking for what is missing), then its approval card."""
    text = intent.text or str(intent.slots.get("request") or "")
    to, unknown = _addresses(ctx, intent)
    if unknown is not None:
        return ask(ctx, intent, "to_answer", f"What is {unknown}'s email address?", kind="text")
    if not to:
        return ask(ctx, intent, "to_answer", "Who should I send it to? (an email address)", kind="text")
    body = str(intent.slots.get("body") or body_of(text))
    if not body:
        return ask(ctx, intent, "body", f"What should the email to {', '.join(to)} say?", kind="text")
    subject = str(intent.slots.get("subject") or subject_of(text, body))
    email = Intent(name="email", text=text, slots={"to": to, "subject": subject, "body": body}, confidence=intent.confidence)
    outcome = act(ctx, email)
    # a correction ("add lisa@acme.io") changes this request and asks again
    held = intent.model_copy(update={"slots": {**intent.slots, "emails": to, "body": body, "subject": subject}})
    return hold(ctx, held.model_copy(update={"name": "send_email"}), outcome)
