"""The typed things agents take and give: intents in, outcomes and cards out."""
from __future__ import annotations

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
