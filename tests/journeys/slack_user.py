"""The operator in a Slack DM: signed Events API and interactivity payloads, as Slack sends them."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import quote

from slack_sdk.signature import SignatureVerifier

from bot.channels.slack_cards import parse_action_id, unescape
from tests.journeys.cluster import JourneyCluster
from tests.journeys.driver import ButtonView, CardView, Said, User, expect_status, request_json
from tests.journeys.world import SLACK_OPERATOR, SLACK_SECRET

def _blocks(value: Any) -> list[dict[str, Any]]:
    return json.loads(value) if isinstance(value, str) else list(value or [])


def slack_card(blocks: list[dict[str, Any]]) -> CardView | None:
    """A card back from the Block Kit Deputy drew it as (bot/channels/slack_cards.py)."""
    header = next((b for b in blocks if b.get("type") == "header"), None)
    if header is None:
        return None
    fields: dict[str, str] = {}
    buttons: list[ButtonView] = []
    rationale = preview = resolution = ""
    for block in blocks[blocks.index(header) + 1:]:
        kind = block.get("type")
        text = unescape(str((block.get("text") or {}).get("text", "")))
        if kind == "section" and block.get("fields"):
            for f in block["fields"]:
                label, _, value = unescape(f["text"]).partition("\n")
                fields[label.strip("*")] = value
        elif kind == "section" and text.startswith("*Why:* "):
            rationale = text.removeprefix("*Why:* ")
        elif kind == "section" and text.startswith("```"):
            preview = text.strip("`")
        elif kind == "context":
            resolution = unescape(block["elements"][0]["text"])
        elif kind == "actions":
            buttons = [ButtonView(e["text"]["text"], parse_action_id(e["action_id"]), e.get("value", ""), e["action_id"])
                       for e in block["elements"]]
    return CardView(header["text"]["text"], fields, tuple(buttons), resolution, rationale, preview)


class SlackUser(User):
    """An operator writing to Deputy in a Slack DM of their own: signed Events API and block_actions
    payloads to the gateway's /slack/events, as Slack sends them; Deputy's side read from the Slack fake."""

    def __init__(self, cluster: JourneyCluster, user: str = SLACK_OPERATOR, channel: str | None = None) -> None:
        super().__init__(cluster)
        if cluster.slack is None:
            raise AssertionError("this module's cluster has no Slack (ClusterConfig(slack=False))")
        self.api = cluster.slack
        self.user = user
        self.channel = channel or f"D{uuid.uuid4().hex[:10].upper()}"

    def _post(self, body: str, content_type: str) -> int:
        stamp = str(int(time.time()))
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp,
                   "X-Slack-Signature": SignatureVerifier(SLACK_SECRET).generate_signature(timestamp=stamp, body=body)}
        status, answer = request_json(f"{self.cluster.url}/slack/events", body.encode(), headers)
        expect_status(status, answer, (200,), "POST /slack/events")
        return status

    def events(self) -> list[Said]:
        out: list[Said] = []
        for call in list(self.api.calls):
            params = call.params
            if call.status != 200 or params.get("channel") != self.channel:
                continue
            text = unescape(str(params.get("text", "")))
            if call.method == "chat.postMessage":
                message = call.response.get("message", {})
                out.append(Said(str(call.response.get("ts")), text, slack_card(_blocks(params.get("blocks"))), False, message))
            elif call.method == "chat.update":
                message = {"type": "message", "ts": params.get("ts"), "text": params.get("text", ""), "blocks": _blocks(params.get("blocks"))}
                out.append(Said(str(params.get("ts")), text, slack_card(message["blocks"]), True, message))
            elif call.method == "chat.postEphemeral" and params.get("user") == self.user:
                out.append(Said(str(call.response.get("message_ts")), text, None, False, {"ephemeral": True, **params}))
        return out

    def _send(self, text: str) -> None:
        ts = f"{time.time():.6f}"
        event = {"type": "message", "user": self.user, "text": text, "ts": ts, "event_ts": ts, "channel": self.channel,
                 "channel_type": "im", "team": "T111"}
        body = {"token": "verification", "team_id": "T111", "api_app_id": "A111", "type": "event_callback",
                "event_id": f"Ev{uuid.uuid4().hex[:12].upper()}", "event_time": int(time.time()), "event": event,
                "authorizations": [{"team_id": "T111", "user_id": self.api.bot_user_id, "is_bot": True, "is_enterprise_install": False}]}
        self._post(json.dumps(body), "application/json")

    def _press(self, said: Said, button: ButtonView) -> str:
        message = said.raw if isinstance(said.raw, dict) else {}
        body = {
            "type": "block_actions", "user": {"id": self.user, "username": "operator", "name": "operator", "team_id": "T111"},
            "api_app_id": "A111", "token": "verification", "trigger_id": f"{uuid.uuid4().int % 10**12}.111.journey",
            "container": {"type": "message", "message_ts": said.id, "channel_id": self.channel, "is_ephemeral": False},
            "team": {"id": "T111", "domain": "journeys"}, "channel": {"id": self.channel, "name": "directmessage"},
            "message": {**message, "ts": said.id}, "response_url": "https://hooks.slack.com/actions/T111/1/journey",
            "actions": [{"action_id": button.data, "block_id": "card:journey", "value": button.value, "type": "button",
                         "text": {"type": "plain_text", "text": button.label, "emoji": True}, "action_ts": f"{time.time():.6f}"}],
        }
        return str(self._post("payload=" + quote(json.dumps(body)), "application/x-www-form-urlencoded"))
