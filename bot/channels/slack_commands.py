"""The /deputy slash command: `/deputy COMMAND ARGS` is Deputy's `/COMMAND ARGS`, for every command
in the one list (agents/intents/commands.py); `/deputy` alone is /help and free text stays free text."""
from __future__ import annotations

import re

from agents.intents.commands import COMMANDS

# where a usage string names a command: its start, and after each " | "
_SLASH = re.compile(r"(^|[|] )/")


def _command_names() -> set[str]:
    return {name for command in COMMANDS for name in (command.name, *command.aliases)}


def command_text(text: str) -> str | None:
    """'/deputy task add X' arrives as 'task add X': give it back its slash when it names a command.
    Free text passes as it is; a single word that is no command is None (the caller shows the usage)."""
    text = text.strip()
    if not text:
        return "/help"
    head = text.split(maxsplit=1)[0].lower()
    if text.startswith("/") or head in _command_names():
        return text if text.startswith("/") else f"/{text}"
    return None if len(text.split()) == 1 else text


def on_slack(usage: str) -> str:
    """A command's usage as typed in Slack: '/task add TITLE | /task list' → '/deputy task add TITLE | /deputy task list'."""
    return _SLASH.sub(r"\1/deputy ", usage)


def command_usage(word: str) -> str:
    """What `/deputy WORD` answers when WORD is no command: how to use /deputy, from the one list."""
    lines = [f"I don't know `/deputy {word}`. Type `/deputy COMMAND`, or tell me in words (`/deputy remind me to call Ana at 3pm`):"]
    lines += [f"• `{on_slack(c.usage)}` — {c.summary}" for c in COMMANDS]
    return "\n".join(lines)
