"""The bot's command menu (setMyCommands): every command Deputy understands, from the one list of
commands, within Telegram's rules for names and descriptions."""
from __future__ import annotations

import logging
import re

from telegram import BotCommand

from agents.intents.commands import COMMANDS, Command

log = logging.getLogger("deputy.telegram")

# Telegram's rules for the command menu (setMyCommands)
MENU_NAME = re.compile(r"[a-z0-9_]{1,32}")
MENU_DESCRIPTION = (3, 256)


def command_menu(commands: tuple[Command, ...] = COMMANDS) -> list[BotCommand]:
    """The bot's command menu: every command Deputy understands, as /help describes it."""
    shortest, longest = MENU_DESCRIPTION
    menu = []
    for command in commands:
        if not MENU_NAME.fullmatch(command.name):
            log.warning("telegram: /%s cannot be in the command menu (names are [a-z0-9_], 32 at most)", command.name)
            continue
        description = (command.summary[:1].upper() + command.summary[1:]).ljust(shortest, ".")[:longest]
        menu.append(BotCommand(command.name, description))
    return menu
