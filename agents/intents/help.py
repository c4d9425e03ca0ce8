"""/help: what works now with this configuration, grouped, one example per command, and what is not set up yet.

Built from COMMANDS (each command's group, example and the capability it needs) and the names of the configured
capabilities, so a new command shows up in its group without an edit here. Short enough for a phone screen;
`/help COMMAND` gives one command's full usage."""
from __future__ import annotations

from typing import Collection

from agents.intents.commands import COMMANDS, Command, command_named
from agents.setups import missing_families, setup_for

# the order groups are listed in; a group not named here comes before "Other"
GROUPS = ("Notes & memory", "Tasks & reminders", "Calendar", "Email", "Budget & traces", "Other")


def _works(command: Command, have: Collection[str]) -> bool:
    return not command.needs or command.needs in have


def _example(command: Command) -> str:
    return command.example or command.usage.split(" | ", 1)[0]


def help_text(have: Collection[str] = ()) -> str:
    """The /help answer for a process whose configured capabilities are `have` (agents/setup_hints.py names)."""
    listed = [c for c in COMMANDS if c.name != "help"]
    groups = list(dict.fromkeys([*GROUPS[:-1], *(c.group for c in listed), GROUPS[-1]]))
    lines = ["What works now (type a command, or just say it in your words):"]
    for group in groups:
        examples = [_example(c) for c in listed if c.group == group and _works(c, have)]
        if examples:
            lines.append(f"• {group}: " + " · ".join(examples))
    lines.append(f"/help COMMAND shows how to type one, e.g. /help {listed[0].name if listed else 'help'}.")
    pending = _not_set_up(listed, have)
    if pending:
        lines.append(f"Not set up yet: {pending}.")
    return "\n".join(lines)


def _not_set_up(listed: list[Command], have: Collection[str]) -> str:
    """"calendar (set CALDAV_URL, …), email for /email, /followup (set SMTP_HOST and SMTP_FROM)"."""
    parts = []
    for setup in missing_families(have):
        waiting = [f"/{c.name}" for c in listed if c.needs and not _works(c, have) and setup_for(c.needs) is setup]
        needed_by = f" for {', '.join(waiting)}" if waiting else ""
        parts.append(f"{setup.family}{needed_by} (set {', '.join(setup.required)})")
    # the sections' short names ("Connectors"), to keep the line short
    sections = dict.fromkeys(s.section.split(":", 1)[0] for s in missing_families(have))
    return "; ".join(parts) + (f" (README → {', '.join(sections)})" if parts else "")


def command_help(topic: str) -> str | None:
    """One command's usage and what it does, for `/help COMMAND`; None when there is no such command."""
    command = command_named(topic.split()[0]) if topic.strip() else None
    if command is None:
        return None
    example = f"\nFor example: {command.example}" if command.example else ""
    return f"/{command.name} — {command.summary}\nUsage: {command.usage}{example}"
