"""Exact commands: `/name args`. Parsed strictly; a bad argument gets the command's usage."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from agents.zones import hours_in, zone_named
from kernel.messages import Intent


class UsageError(ValueError):
    """The operator typed a known command wrongly; the message says how to type it."""

    def __init__(self, command: "Command", problem: str) -> None:
        super().__init__(f"{problem}\nUsage: {command.usage}")
        self.command = command


Parser = Callable[["Command", str], dict[str, object]]


def _text(name: str) -> Parser:
    def parse(command: Command, args: str) -> dict[str, object]:
        if not args.strip():
            raise UsageError(command, f"/{command.name} needs some text.")
        return {name: args.strip()}

    return parse


def _none(command: Command, args: str) -> dict[str, object]:
    return {"topic": args.strip()} if args.strip() else {}


def _task(command: Command, args: str) -> dict[str, object]:
    verb, _, rest = args.strip().partition(" ")
    verb = verb.lower() or "list"
    rest = rest.strip()
    if verb == "add":
        if not rest:
            raise UsageError(command, "What is the task?")
        project = "inbox"
        match = re.search(r"(?:^|\s)#([\w-]+)\s*$", rest)
        if match:
            project, rest = match.group(1).lower(), rest[: match.start()].strip()
        return {"action": "add", "title": rest, "project": project}
    if verb == "list":
        return {"action": "list", "status": rest if rest in ("done", "snoozed") else "open"}
    if verb in ("done", "delete", "edit", "snooze"):
        number, _, detail = rest.partition(" ")
        if not number.lstrip("#").isdigit():
            raise UsageError(command, f"Which task? Give its number, e.g. /task {verb} 3{_EXAMPLES[verb]}.")
        slots: dict[str, object] = {"action": verb, "task_id": int(number.lstrip("#"))}
        return slots | _task_detail(command, verb, detail.strip())
    raise UsageError(command, f"I don't know '/task {verb}'.")


_EXAMPLES = {"done": "", "delete": "", "edit": " send the invoice to Acme", "snooze": " tomorrow 9am"}


def _task_detail(command: Command, verb: str, detail: str) -> dict[str, object]:
    if verb == "edit":
        slots: dict[str, object] = {}
        match = re.search(r"(?:^|\s)#([\w-]+)\s*$", detail)
        if match:
            slots["project"], detail = match.group(1).lower(), detail[: match.start()].strip()
        if detail:
            slots["title"] = detail
        if not slots:
            raise UsageError(command, "What should it say? e.g. /task edit 3 send the invoice to Acme")
        return slots
    if verb == "snooze":
        if not detail:
            raise UsageError(command, "Until when? e.g. /task snooze 3 tomorrow 9am")
        return {"when_text": detail}
    if detail:
        raise UsageError(command, f"/task {verb} takes only the task's number.")
    return {}


def _reminders(command: Command, args: str) -> dict[str, object]:
    verb, _, rest = args.strip().partition(" ")
    if not verb or verb.lower() == "list":
        return {"action": "list"}
    if verb.lower() != "cancel":
        raise UsageError(command, f"I don't know '/reminders {verb}'.")
    if not rest.strip():
        raise UsageError(command, "Which one? Give its number from /reminders, or its words, e.g. /reminders cancel 2.")
    return {"action": "cancel", "query": rest.strip()}


def _agenda(command: Command, args: str) -> dict[str, object]:
    # the day is read in the operator's zone by the skill (the gateway does not know it)
    return {}


def _zone(command: Command, args: str) -> dict[str, object]:
    if not args.strip():
        return {"show": True}
    zone = zone_named(args)
    if zone is None:
        raise UsageError(command, f"I don't know the time zone '{args.strip()}'. Give a city or an IANA name, e.g. /timezone Europe/Madrid.")
    return {"zone": zone}


def _hours(command: Command, args: str) -> dict[str, object]:
    hours = hours_in(args)
    if hours is None:
        raise UsageError(command, "From when to when? e.g. /hours 9-18 or /hours 9am-6pm.")
    return {"start": hours[0], "end": hours[1]}


def _trace(command: Command, args: str) -> dict[str, object]:
    trace_id = args.strip()
    if trace_id and not re.fullmatch(r"[0-9a-f]{6,32}", trace_id):
        raise UsageError(command, f"'{trace_id}' is not a trace id.")
    return {"trace_id": trace_id} if trace_id else {}


def _budget(command: Command, args: str) -> dict[str, object]:
    verb, _, rest = args.strip().partition(" ")
    if not verb or verb.lower() == "show":
        return {"action": "show"}
    if verb.lower() != "set":
        raise UsageError(command, f"I don't know '/budget {verb}'.")
    match = re.fullmatch(r"\$?(\d+(?:\.\d+)?)(?:\s+#?([\w-]+))?", rest.strip())
    if not match:
        raise UsageError(command, "How much per month? e.g. /budget set 30 (0 removes the cap).")
    slots: dict[str, object] = {"action": "set", "amount": float(match.group(1))}
    if match.group(2):
        slots["project"] = match.group(2).lower()
    return slots


def _email(command: Command, args: str) -> dict[str, object]:
    to, _, rest = args.strip().partition(" ")
    subject, bar, body = rest.partition("|")
    if "@" not in to or not bar or not subject.strip() or not body.strip():
        raise UsageError(command, "Give the address, the subject, a | and the text.")
    return {"to": to.strip(), "subject": subject.strip(), "body": body.strip()}


def _followup(command: Command, args: str) -> dict[str, object]:
    lead, _, body = args.partition("|")
    if not lead.strip():
        raise UsageError(command, "Who should I follow up with?")
    return {"lead": lead.strip(), "body": body.strip() or "Just following up on my last message. Any thoughts?"}


def _reply(command: Command, args: str) -> dict[str, object]:
    sender, _, body = args.partition("|")
    if not sender.strip():
        raise UsageError(command, "Whose email should I reply to? Give a name or an address.")
    return {"sender": sender.strip(), "body": body.strip()}


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    summary: str
    parse: Parser
    aliases: tuple[str, ...] = ()
    # where /help lists it (agents/intents/help.py GROUPS), one example of it, and the capability it needs
    # (agents/setup_hints.py), so /help lists it only where that is configured
    group: str = "Other"
    example: str = ""
    needs: str = ""


# The one list of commands Deputy understands.
COMMANDS: tuple[Command, ...] = (
    Command("help", "/help", "what I can do", _none, aliases=("start",)),
    Command("remember", "/remember TEXT", "keep a note for later", _text("text"),
            group="Notes & memory", example="/remember Ana prefers calls after 10am"),
    Command("ask", "/ask QUESTION", "answer from what you told me", _text("question"),
            group="Notes & memory", example="/ask when does Ana like calls?"),
    Command("task", "/task add TITLE [#project] | /task list [done|snoozed] | /task done N | /task edit N TITLE [#project] "
            "| /task delete N | /task snooze N WHEN", "your to-do list", _task,
            group="Tasks & reminders", example="/task add send the invoice #billing"),
    Command("trace", "/trace [TRACE_ID]", "show how a request was handled (the last one by default)", _trace,
            group="Budget & traces", example="/trace"),
    Command("digest", "/digest", "what happened and what needs you, now", _none,
            example="/digest"),
    Command("budget", "/budget | /budget set USD [#project]", "model spend against budget, or a new monthly cap", _budget,
            group="Budget & traces", example="/budget"),
    Command("remind", "/remind WHAT WHEN", "a reminder in this thread, e.g. /remind call Ana Friday 10am, or "
            "/remind every Monday at 9 to send invoices", _text("text"),
            group="Tasks & reminders", example="/remind call Ana Friday 10am"),
    Command("reminders", "/reminders | /reminders cancel N", "your pending reminders, or cancel one (by number or words)",
            _reminders, group="Tasks & reminders", example="/reminders"),
    Command("email", "/email ADDRESS SUBJECT | TEXT", "send an email (I show it to you first)", _email,
            group="Email", example="/email ana@acme.io Contract | Signed copy attached.", needs="email.send"),
    Command("followup", "/followup NAME_OR_EMAIL [| TEXT]", "follow up a lead by email and keep a task for the reply", _followup,
            group="Email", example="/followup Ana", needs="email.send"),
    Command("contact", "/contact NAME[, EMAIL, PHONE, COMPANY]", "save or update a contact, or show one (the name alone)",
            _text("args"), group="Notes & memory", example="/contact Ana Lopez, ana@acme.io, Acme"),
    Command("do", "/do GOAL", "anything else: I plan it with the model and ask before acting", _text("goal"),
            example="/do find a time with Ana next week", needs="model"),
    Command("draft", "/draft [ADDRESS] ABOUT", "a draft email for you to check, then Send (with approval) or Discard", _text("request"),
            group="Email", example="/draft ana@acme.io about the May invoice"),
    Command("inbox", "/inbox", "the emails that arrived since I last showed you, each with Reply / Make task / Ignore", _none,
            group="Email", example="/inbox", needs="email.read_inbox"),
    Command("reply", "/reply NAME_OR_EMAIL [| TEXT]", "a draft reply to that person's latest email, in its thread", _reply,
            group="Email", example="/reply Ana | Thanks, Tuesday works.", needs="email.read_inbox"),
    Command("agenda", "/agenda [WHEN]", "what is on your calendar (today by default), e.g. /agenda tomorrow afternoon",
            _agenda, group="Calendar", example="/agenda tomorrow", needs="calendar.agenda"),
    Command("calendar", "/calendar GOAL", "a calendar change in your words, planned by the model (I ask before acting)",
            _text("goal"), group="Calendar", example="/calendar move my Friday calls with Ana to Monday", needs="calendar.create"),
    Command("timezone", "/timezone [ZONE]", "your time zone (a city or an IANA name), or which one I use now", _zone,
            example="/timezone Europe/Madrid"),
    Command("hours", "/hours START-END", "your working hours, for the meeting times I suggest", _hours,
            example="/hours 9-18"),
    Command("forget", "/forget TEXT", "remove what you told me about TEXT from every store (I show what goes first)",
            _text("query"), group="Notes & memory", example="/forget Bob's wine"),
    Command("project", "/project NAME retention 90d|off", "how long a project's memories are kept", _text("text"),
            group="Notes & memory", example="/project sales retention 90d"),
)

_BY_NAME = {alias: c for c in COMMANDS for alias in (c.name, *c.aliases)}


def parse_command(text: str) -> Intent | None:
    """An Intent for `/command args`, None for text that is not a command.

    Raises UsageError for a known command with bad arguments, and for an unknown command."""
    text = text.strip()
    if not text.startswith("/"):
        return None
    head, _, args = text[1:].partition(" ")
    name = head.split("@", 1)[0].lower()  # Telegram appends @botname in groups
    command = _BY_NAME.get(name)
    if command is None:
        raise UsageError(_BY_NAME["help"], f"I don't know /{name}.")
    return Intent(name=command.name, text=args.strip(), slots=command.parse(command, args), source="command")


def command_named(name: str) -> Command | None:
    return _BY_NAME.get(name.lstrip("/").split("@", 1)[0].lower())
