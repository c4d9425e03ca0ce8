"""The types every layer speaks: messages in, button clicks in, replies out; intents, outcomes and cards."""
from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Intent(Frozen):
    """What the operator wants: a name, parsed slots and the text it came from."""

    name: str
    text: str = ""
    slots: dict[str, Any] = Field(default_factory=dict)
    confidence: float = 1.0
    # "command" (typed exactly), "classifier", "llm", "rule"
    source: str = "command"


ButtonStyle = Literal["primary", "danger", "default"]


class Button(Frozen):
    label: str
    # what a click sends back: the gateway turns it into a Decision
    action: str
    value: str
    style: ButtonStyle = "default"


class CardField(Frozen):
    label: str
    value: str


class Card(Frozen):
    """One rendering-neutral card; each channel draws it its own way (HTML, Block Kit, inline keyboard)."""

    card_id: str
    title: str
    fields: tuple[CardField, ...] = ()
    rationale: str = ""
    preview: str = ""
    buttons: tuple[Button, ...] = ()
    # set once decided: who, what and when, shown instead of the buttons
    resolution: str = ""


class Outcome(Frozen):
    """What handling one intent produced for the operator."""

    text: str
    card: Card | None = None
    ok: bool = True
    # earlier cards to redraw in place (an approval superseded by a correction, a question answered)
    updates: tuple[Card, ...] = ()
    # further cards, each posted as a message of its own after the reply (one per new email in an inbox summary)
    more: tuple[Card, ...] = ()


# Channels register themselves in bot/channels/__init__.py; these are their names.
ChannelName = str


def new_id() -> str:
    return uuid.uuid4().hex


class Delivery(Frozen):
    """Who sent something to Deputy, where, and how to answer there; what was sent is the subclass's."""

    channel: ChannelName
    # the platform's id for this delivery (Slack event_id, Telegram update_id, console client id)
    event_id: str
    user_id: str
    thread_id: str
    user_name: str = ""
    received_at: float = Field(default_factory=time.time)
    # platform details an outbound reply needs (Slack channel + thread_ts, Telegram chat id)
    reply_to: dict[str, str] = Field(default_factory=dict)


class Inbound(Delivery):
    """One message from the operator (or someone pretending), as a channel adapter saw it."""

    text: str
    # the sender's IANA time zone where the channel tells it (the console's browser, Slack's users.info)
    timezone: str = ""


class Decision(Delivery):
    """A button click: someone answered a card."""

    action: str
    value: str


class Reply(Frozen):
    """Something Deputy says in a thread: text, optionally a card, or an update of an earlier card."""

    reply_id: str = Field(default_factory=new_id)
    channel: ChannelName
    thread_id: str
    text: str
    trace_id: str = ""
    card: Card | None = None
    # set when this reply replaces an earlier card in place (after a decision)
    updates_card: str | None = None
    reply_to: dict[str, str] = Field(default_factory=dict)
    ok: bool = True
    # a small picture (base64 PNG, e.g. the digest's spend chart) for channels that show images;
    # the text must stand on its own for those that don't
    image_png: str | None = None
