"""The operator in the web console, through the JSON API a script uses (Bearer CONSOLE_TOKEN)."""
from __future__ import annotations

import json
import uuid
from typing import Any, Mapping

from tests.journeys.cluster import JourneyCluster
from tests.journeys.driver import ButtonView, CardView, Said, User, expect_status, request_json

def console_card(card: Mapping[str, Any] | None) -> CardView | None:
    if not card:
        return None
    buttons = tuple(ButtonView(b["label"], b["action"], b["value"], b["action"]) for b in card.get("buttons", ()))
    return CardView(card["title"], {f["label"]: f["value"] for f in card.get("fields", ())}, buttons, card.get("resolution", ""),
                    card.get("rationale", ""), card.get("preview", ""))


class ConsoleUser(User):
    """The operator in a console thread of their own, through the JSON API a script uses (Bearer CONSOLE_TOKEN)."""

    def __init__(self, cluster: JourneyCluster, thread_id: str | None = None, timezone: str | None = None) -> None:
        super().__init__(cluster)
        self.thread_id = thread_id or f"journey-{uuid.uuid4().hex[:12]}"
        # the browser's time zone, sent with each message as the console page does (when set)
        self.timezone = timezone
        self._log: list[Said] = []
        self._versions: dict[str, str] = {}

    def _api(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.cluster.console_token}", "Content-Type": "application/json"}
        data = json.dumps(body).encode() if body is not None else None
        return request_json(f"{self.cluster.url}{path}", data, headers)

    def thread(self) -> list[dict[str, Any]]:
        """The thread as the console page shows it: both sides' messages, raw."""
        status, body = self._api(f"/api/threads/{self.thread_id}/messages")
        expect_status(status, body, (200,), "GET /api/threads/…/messages")
        return list(body["messages"])

    def events(self) -> list[Said]:
        for message in self.thread():
            if message.get("role") != "deputy":
                continue
            # a card keeps its message id for life: a changed card is a new version of that message
            version = json.dumps([message.get("text"), message.get("card")], sort_keys=True)
            seen = self._versions.get(message["id"])
            if seen != version:
                self._versions[message["id"]] = version
                self._log.append(Said(message["id"], message.get("text", ""), console_card(message.get("card")), seen is not None, message))
        return list(self._log)

    def _send(self, text: str) -> None:
        body = {"thread_id": self.thread_id, "text": text, "client_id": uuid.uuid4().hex}
        if self.timezone:
            body["timezone"] = self.timezone
        status, answer = self._api("/api/messages", body)
        expect_status(status, answer, (202,), "POST /api/messages")

    def _press(self, said: Said, button: ButtonView) -> str:
        status, answer = self._api("/api/decisions", {"thread_id": self.thread_id, "action": button.action, "value": button.value,
                                                      "client_id": uuid.uuid4().hex})
        expect_status(status, answer, (202,), "POST /api/decisions")
        return str(answer.get("status", ""))
