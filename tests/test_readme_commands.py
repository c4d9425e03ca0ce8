"""The README's command table is /help's list: the same commands, the same usage, in the same order."""
from __future__ import annotations

import re
from pathlib import Path

from agents.intents.commands import COMMANDS

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- commands table: one row per command in agents/intents/commands.py, usage as /help shows it -->"
_CELL = re.compile(r"(?<!\\)\|")


def readme_usages() -> list[str]:
    """The first cell of each row of the table under MARKER, as typed (`\\|` read as |, backticks dropped)."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(MARKER) + 1
    usages = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        first = _CELL.split(line)[1].strip()
        if first.startswith("`/"):
            usages.append(first.strip("`").replace("\\|", "|"))
    return usages


def test_the_readme_lists_every_command_with_its_usage_as_help_does():
    assert readme_usages() == [c.usage for c in COMMANDS]
