"""Deputy's reply markup: `*bold*`, `_italic_` and `` `code` ``, as Slack's mrkdwn writes them. Each
channel renders what it supports: Slack as it is, Telegram as HTML, the console in the page.

Spans never nest and need a word boundary outside and a non-space inside, so `task_id`, `2*3*4` and a
lone `*` stay text. Splitting into flat spans is what keeps the HTML well formed: Telegram rejects a
whole message over one crossed tag."""
from __future__ import annotations

import html
import re
from typing import Literal

Style = Literal["text", "bold", "italic", "code"]

_SPAN = re.compile(
    r"`(?P<code>[^`\n]+)`"
    r"|(?<![\w*])\*(?P<bold>[^*\s](?:[^*\n]*[^*\s])?)\*(?![\w*])"
    r"|(?<![\w_])_(?P<italic>[^_\s](?:[^_\n]*[^_\s])?)_(?![\w_])"
)
_TAGS: dict[Style, str] = {"bold": "b", "italic": "i", "code": "code"}


def spans(text: str) -> list[tuple[Style, str]]:
    """`text` as flat (style, text) pieces, in order; markup characters are dropped from styled ones."""
    out: list[tuple[Style, str]] = []
    at = 0
    for match in _SPAN.finditer(text):
        if match.start() > at:
            out.append(("text", text[at : match.start()]))
        style: Style = "code" if match.group("code") is not None else "bold" if match.group("bold") is not None else "italic"
        out.append((style, match.group(style)))
        at = match.end()
    if at < len(text):
        out.append(("text", text[at:]))
    return out


def to_html(text: str) -> str:
    """Telegram's HTML parse mode: everything escaped, then the spans as <b>, <i> and <code>."""
    parts = []
    for style, piece in spans(text):
        escaped = html.escape(piece, quote=False)
        parts.append(escaped if style == "text" else f"<{_TAGS[style]}>{escaped}</{_TAGS[style]}>")
    return "".join(parts)


def plain(text: str) -> str:
    """The text without its markup characters, for where nothing can be rendered."""
    return "".join(piece for _, piece in spans(text))
