"""The operator in a private Telegram chat: webhook updates (messages, button clicks), as Telegram sends them."""
from __future__ import annotations

import html
import json
import re
import time
import uuid
from typing import Any, Mapping

from bot.channels.telegram import SECRET_HEADER
from harness.fakes.telegram_api import BOT
from kernel.keys import Keys
from tests.journeys.cluster import JourneyCluster
from tests.journeys.driver import ButtonView, CardView, Said, User, expect_status, request_json
from tests.journeys.world import TELEGRAM_SECRET

_TITLE = re.compile(r"<b>([^<]*)</b>")
_FIELD = re.compile(r"<b>([^<]*):</b> ?(.*)")
_TAGS = re.compile(r"<[^>]+>")


def _plain(text: str) -> str:
    return html.unescape(_TAGS.sub("", text))


def telegram_card(text: str, buttons: tuple[ButtonView, ...]) -> tuple[str, CardView | None]:
    """The reply text and the card back from the HTML Deputy drew it as (bot/channels/telegram_cards.py)."""
    lines = text.split("\n")
    at = next((i for i, line in enumerate(lines) if _TITLE.fullmatch(line)), None)
    if at is None:
        return _plain(text), None
    title = html.unescape(_TITLE.fullmatch(lines[at]).group(1))  # type: ignore[union-attr]
    fields: dict[str, str] = {}
    rationale = preview = resolution = ""
    last = ""
    rest = iter(lines[at + 1:])
    for line in rest:
        if match := _FIELD.fullmatch(line):
            last = html.unescape(match.group(1))
            fields[last] = html.unescape(match.group(2))
        elif line.startswith("<i>Why:</i> "):
            rationale = _plain(line.removeprefix("<i>Why:</i> "))
        elif line.startswith("<pre>"):
            block = [line]
            while not block[-1].endswith("</pre>"):
                block.append(next(rest, "</pre>"))
            preview = _plain("\n".join(block))
        elif line.startswith("✔ "):
            resolution = _plain(line.removeprefix("✔ "))
        elif line and last:  # a field's value that runs over several lines
            fields[last] += "\n" + html.unescape(line)
    said = _plain("\n".join(lines[:at]).strip()) or title
    return said, CardView(title, fields, buttons, resolution, rationale, preview)


class TelegramUser(User):
    """An operator in a private chat with the bot: webhook updates (messages, callback queries) posted to
    the gateway's /telegram/webhook as Telegram does; Deputy's side read from the Telegram fake."""

    def __init__(self, cluster: JourneyCluster, user_id: int | None = None) -> None:
        super().__init__(cluster)
        if cluster.telegram is None:
            raise AssertionError("this module's cluster has no Telegram (ClusterConfig(telegram=False))")
        self.api = cluster.telegram
        self.user_id = user_id or cluster.next_telegram_operator()
        self.person = {"id": self.user_id, "is_bot": False, "first_name": "Journey", "username": f"op{self.user_id}"}
        self.chat = {"id": self.user_id, "type": "private", "first_name": "Journey"}
        self._actions: dict[str, tuple[str, str]] = {}

    def _button(self, raw: Mapping[str, Any]) -> ButtonView:
        token = str(raw.get("callback_data", ""))
        if token not in self._actions:
            # a button carries only a token; what it stands for is in Redis until the card changes
            stored = self.cluster.redis.get(Keys(self.cluster.workspace)("telegram", "button", token))
            if stored:
                pressed = json.loads(stored)
                self._actions[token] = (pressed["action"], pressed["value"])
        action, value = self._actions.get(token, ("", ""))
        return ButtonView(str(raw.get("text", "")), action, value, token)

    def events(self) -> list[Said]:
        out: list[Said] = []
        for call in list(self.api.calls):
            params = call.params
            if call.status != 200 or str(params.get("chat_id")) != str(self.user_id):
                continue
            if call.method not in ("sendMessage", "editMessageText"):
                continue
            markup = params.get("reply_markup") or {}
            markup = json.loads(markup) if isinstance(markup, str) else markup
            buttons = tuple(self._button(b) for row in markup.get("inline_keyboard", ()) for b in row)
            text = str(params.get("text", ""))
            said, card = telegram_card(text, buttons) if params.get("parse_mode") == "HTML" else (text, None)
            edit = call.method == "editMessageText"
            message_id = params.get("message_id") if edit else call.response["message_id"]
            out.append(Said(str(message_id), said, card, edit, {"text": text, **params}))
        return out

    def _update(self, **content: Any) -> None:
        update_id = next(self.cluster.update_ids)
        status, answer = request_json(f"{self.cluster.url}/telegram/webhook", json.dumps({"update_id": update_id, **content}).encode(),
                               {"Content-Type": "application/json", SECRET_HEADER: TELEGRAM_SECRET})
        expect_status(status, answer, (200,), "POST /telegram/webhook")

    def _send(self, text: str) -> None:
        message: dict[str, Any] = {"message_id": next(self.cluster.update_ids), "date": int(time.time()), "chat": self.chat,
                                   "from": self.person, "text": text}
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        self._update(message=message)

    def _press(self, said: Said, button: ButtonView) -> str:
        query_id = f"cb-{uuid.uuid4().hex[:12]}"
        message = {"message_id": int(said.id), "date": int(time.time()), "chat": self.chat,
                   "from": BOT, "text": said.text}
        self._update(callback_query={"id": query_id, "from": self.person, "message": message, "chat_instance": "journey",
                                     "data": button.data})
        answers = [c for c in list(self.api.calls) if c.method == "answerCallbackQuery" and c.params.get("callback_query_id") == query_id]
        return str(answers[-1].params.get("text", "")) if answers else ""
