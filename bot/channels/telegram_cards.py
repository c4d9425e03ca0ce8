"""Cards as Telegram messages: HTML text plus an inline keyboard whose buttons carry only a token.

Telegram limits callback_data to 64 bytes and hands it back from the client untouched, so it is
untrusted: a button carries a short random token, and what it stands for (action, value, card)
stays in Redis. An unknown token is a forged or expired button and changes nothing."""
from __future__ import annotations

import html
import json
import re
import secrets
import time
from dataclasses import dataclass

from redis.asyncio import Redis as AsyncRedis
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from kernel.markup import to_html
from kernel.messages import Button, Card
from kernel.keys import Keys

MESSAGE_MAX = 4_096
CALLBACK_DATA_MAX = 64
BUTTONS_PER_ROW = 3
TOKEN_TTL_S = 30 * 86_400
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16}")


@dataclass(frozen=True)
class Pressed:
    """What a button token stands for."""

    action: str
    value: str
    card_id: str


class ButtonTokens:
    """token -> (action, value, card_id), issued when a card is shown, revoked when it is replaced."""

    def __init__(self, redis: AsyncRedis, workspace: str, ttl_s: int = TOKEN_TTL_S) -> None:
        self.redis = redis
        self.keys = Keys(workspace)
        self.ttl_s = ttl_s

    def _key(self, token: str) -> str:
        return self.keys("telegram", "button", token)

    async def issue(self, card: Card, button: Button) -> str:
        token = secrets.token_urlsafe(12)  # 16 characters, 96 random bits
        payload = {"action": button.action, "value": button.value, "card_id": card.card_id}
        await self.redis.set(self._key(token), json.dumps(payload), ex=self.ttl_s)
        return token

    async def resolve(self, data: str) -> Pressed | None:
        if not _TOKEN.fullmatch(data or ""):
            return None
        raw = await self.redis.get(self._key(data))
        if not raw:
            return None
        payload = json.loads(raw)
        return Pressed(action=str(payload["action"]), value=str(payload["value"]), card_id=str(payload["card_id"]))

    async def revoke(self, tokens: list[str]) -> None:
        if tokens:
            await self.redis.delete(*(self._key(t) for t in tokens))


async def keyboard(card: Card, tokens: ButtonTokens) -> tuple[InlineKeyboardMarkup | None, list[str]]:
    """The inline keyboard for a card's buttons (None once decided), and the tokens it carries."""
    if card.resolution or not card.buttons:
        return None, []
    issued = [await tokens.issue(card, b) for b in card.buttons]
    buttons = [InlineKeyboardButton(b.label[:64], callback_data=t) for b, t in zip(card.buttons, issued)]
    rows = [buttons[i : i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW)]
    return InlineKeyboardMarkup(rows), issued


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def card_html(card: Card, text: str = "", decided_by: str = "", decided_at: str = "") -> str:
    """The message text (parse_mode HTML) showing `card` below the reply `text`."""
    esc = html.escape
    head: list[str] = []
    if text.strip() and text.strip() != card.title.strip():
        head.append(to_html(text.strip()))
        head.append("")
    head.append(f"<b>{esc(card.title)}</b>")
    head += [f"<b>{esc(f.label)}:</b> {esc(f.value)}" for f in card.fields]
    if card.rationale:
        head.append(f"<i>Why:</i> {esc(card.rationale)}")
    tail: list[str] = []
    if card.resolution:
        line = f"✔ {esc(card.resolution)}"
        if decided_by:
            line += f" — by {esc(decided_by)}"
        if decided_at.isdigit():
            line += time.strftime(" at %Y-%m-%d %H:%M UTC", time.gmtime(int(decided_at)))
        tail.append(line)
    body = "\n".join(head)
    footer = ("\n\n" + "\n".join(tail)) if tail else ""
    if card.preview:
        # the preview is the longest part: it is what gets clipped to stay within one message
        room = MESSAGE_MAX - len(body) - len(footer) - len("\n<pre></pre>") - 1
        preview = esc(card.preview)
        if len(preview) > room:
            # cut the escaped text, never inside an entity such as &amp;
            preview = re.sub(r"&[#a-z0-9]*$", "", preview[: max(room, 0)]) + ("…" if room > 0 else "")
        if room > 0 and preview:
            body += f"\n<pre>{preview}</pre>"
    if len(body) + len(footer) > MESSAGE_MAX:
        # only a card with enormous fields gets here: drop the markup rather than send broken HTML
        plain = html.unescape(re.sub(r"<[^>]+>", "", body + footer))
        return html.escape(_clip(plain, MESSAGE_MAX // 5), quote=False)  # escaping grows text at most 5x
    return body + footer
