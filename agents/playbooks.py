"""Playbooks: the built-in plans for common intents, loaded from agents/playbooks.yaml."""
from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

SLOT = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class StepTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    capability: str
    args: dict[str, Any] = Field(default_factory=dict)
    rationale: str = ""
    expect: str = ""


class Playbook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    requires: tuple[str, ...] = ()
    allowed: tuple[str, ...]
    # empty: the goal is planned by the model
    steps: tuple[StepTemplate, ...] = ()
    # what Deputy would do, as a phrase after "I would" ("send “{subject}” to {to}"): said when a connector it
    # needs is not set up; the description stands in when empty
    would: str = ""

    def missing(self, slots: dict[str, Any]) -> list[str]:
        return [name for name in self.requires if slots.get(name) in (None, "", [])]


def _text(value: Any) -> str:
    """A slot inside a sentence: a list reads as "a, b", not as Python's ['a', 'b']."""
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def fill(value: Any, slots: dict[str, Any]) -> Any:
    """Put slot values into a template: exact "{slot}" keeps the value's type; anything else is text."""
    if isinstance(value, str):
        whole = SLOT.fullmatch(value)
        if whole:
            return slots.get(whole.group(1), "")
        return SLOT.sub(lambda m: _text(slots.get(m.group(1), "")), value)
    if isinstance(value, dict):
        return {k: fill(v, slots) for k, v in value.items()}
    if isinstance(value, list):
        filled = [fill(v, slots) for v in value]
        # "{to}" holding a list inside a list flattens: ["{to}"] with to=[a, b] is [a, b]
        flat: list[Any] = []
        for item in filled:
            flat.extend(item if isinstance(item, list) else [item])
        return [v for v in flat if v not in ("", None)]
    return value


def load_playbooks(path: Path | str | None = None) -> dict[str, Playbook]:
    text = (
        Path(path).read_text(encoding="utf-8") if path
        else resources.files("agents").joinpath("playbooks.yaml").read_text(encoding="utf-8")
    )
    raw = yaml.safe_load(text) or {}
    return {name: Playbook.model_validate({"name": name, **body}) for name, body in raw.items()}
