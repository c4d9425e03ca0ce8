"""Cards as Slack Block Kit: header, fields, rationale, preview, then buttons or who decided."""
from __future__ import annotations

import time
from typing import Any

from kernel.messages import Button, Card

# Block Kit limits (api.slack.com/reference/block-kit): exceeding one makes Slack reject the message
HEADER_MAX = 150
TEXT_MAX = 3_000
FIELD_MAX = 2_000
FIELDS_MAX = 10
BUTTON_LABEL_MAX = 75
BUTTON_VALUE_MAX = 2_000
ID_MAX = 255
# action ids must be unique within a block; the suffix keeps them so when a card repeats an action
ACTION_SEPARATOR = "#"


def escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as markup (links, mentions); user text must not become markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _clip(text, TEXT_MAX)}


def action_id(button: Button, index: int) -> str:
    return _clip(f"{button.action}{ACTION_SEPARATOR}{index}", ID_MAX)


def parse_action_id(raw: str) -> str:
    """The card action a button's action_id stands for ("approval.approve#0" -> "approval.approve")."""
    action, sep, index = raw.rpartition(ACTION_SEPARATOR)
    return action if sep and index.isdigit() else raw


def block_id(card: Card) -> str:
    return _clip(f"card:{card.card_id}", ID_MAX)


def _button(button: Button, index: int) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": _clip(button.label, BUTTON_LABEL_MAX), "emoji": True},
        "action_id": action_id(button, index),
        "value": button.value[:BUTTON_VALUE_MAX],
    }
    if button.style in ("primary", "danger"):
        element["style"] = button.style
    return element


def decided_line(decided_by: str, decided_at: str) -> str:
    """'Decided by @user at 2026-05-01 14:03 UTC' in Slack's own date formatting (the reader's time zone)."""
    parts = []
    if decided_by:
        parts.append(f"by <@{decided_by}>")
    if decided_at.isdigit():
        fallback = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(int(decided_at)))
        parts.append(f"<!date^{decided_at}^{{date_short_pretty}} at {{time}}|{fallback}>")
    return ("Decided " + " ".join(parts)) if parts else ""


def card_blocks(card: Card, text: str = "", decided_by: str = "", decided_at: str = "") -> list[dict[str, Any]]:
    """The blocks of one message showing `card`, with `text` (the reply) above it."""
    blocks: list[dict[str, Any]] = []
    if text.strip() and text.strip() != card.title.strip():
        blocks.append({"type": "section", "text": _mrkdwn(escape(text))})
    blocks.append({"type": "header", "text": {"type": "plain_text", "text": _clip(card.title, HEADER_MAX), "emoji": True}})
    if card.fields:
        blocks.append({
            "type": "section",
            "fields": [_mrkdwn(_clip(f"*{escape(f.label)}*\n{escape(f.value)}", FIELD_MAX)) for f in card.fields[:FIELDS_MAX]],
        })
    if card.rationale:
        blocks.append({"type": "section", "text": _mrkdwn(f"*Why:* {escape(card.rationale)}")})
    if card.preview:
        # a code block shows the exact text that would be sent, without Slack formatting it
        preview = _clip(card.preview.replace("```", "ʼʼʼ"), TEXT_MAX - 8)
        blocks.append({"type": "section", "text": _mrkdwn(f"```{escape(preview)}```")})
    if card.resolution:
        line = escape(card.resolution)
        decided = decided_line(decided_by, decided_at)
        blocks.append({"type": "context", "elements": [_mrkdwn(f"{line} · {decided}" if decided else line)]})
    elif card.buttons:
        blocks.append({"type": "actions", "block_id": block_id(card), "elements": [_button(b, i) for i, b in enumerate(card.buttons)]})
    return blocks
