"""The intent registry: built-in intents plus the operator's own, read from YAML.

An intent has a name, example phrases the classifier learns from, the slots it takes, and what it
triggers: a built-in skill, a playbook or a capability."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from kernel.messages import Frozen

BUILTIN_FILE = Path(__file__).with_name("builtin.yaml")
# libyaml's safe loader where PyYAML was built with it: the built-ins (1,250 phrases) parse in ~8 ms, not ~80
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# the label of the "none of the above" class the classifier learns from `out_of_scope:` examples
OUT_OF_SCOPE = "out_of_scope"

# entity slots anyone may ask for; each has an extractor in slots.py and a JSON schema for the model
SlotName = Literal["when", "people", "emails", "amount"]


class IntentSpec(Frozen):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,40}$")
    description: str
    examples: tuple[str, ...]
    # exactly one of these says what the intent does
    skill: str | None = None
    playbook: str | None = None
    capability: str | None = None
    # entity slots to extract, and the slot that receives the request itself (trigger words removed)
    slots: tuple[SlotName, ...] = ()
    text_slot: str | None = None
    # fixed slots the triggered skill expects (e.g. {"action": "add"} for the task skill)
    defaults: dict[str, Any] = Field(default_factory=dict)
    # slot names the triggered skill uses instead of ours, e.g. {"when": "start", "emails": "attendees"}
    rename: dict[str, str] = Field(default_factory=dict)
    # leading phrases removed before filling text_slot ("remind me to", "please note that")
    strip: tuple[str, ...] = ()
    # offered as a clarification button and to the model; False for intents only reached by command
    suggest: bool = True

    @field_validator("examples")
    @classmethod
    def _enough_examples(cls, examples: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(e.strip() for e in examples if e and e.strip())
        if len(cleaned) < 3:
            raise ValueError("give at least 3 example phrases")
        return cleaned

    @model_validator(mode="after")
    def _one_target(self) -> "IntentSpec":
        targets = [t for t in (self.skill, self.playbook, self.capability) if t]
        if len(targets) != 1:
            raise ValueError("set exactly one of skill, playbook or capability")
        return self

    @property
    def target(self) -> str:
        """The skill name the worker runs: the skill itself, or the playbook / capability runner."""
        if self.skill:
            return self.skill
        return "playbook" if self.playbook else "capability"

    @property
    def label(self) -> str:
        return self.description.rstrip(".")


class RegistryError(ValueError):
    """The intents file is not valid; the message says where and how to fix it."""


class IntentRegistry:
    """An ordered, immutable set of intents. Operator intents override built-ins of the same name."""

    def __init__(self, specs: list[IntentSpec], out_of_scope: tuple[str, ...] = ()) -> None:
        self._specs = {s.name: s for s in specs}
        self.out_of_scope = out_of_scope

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def get(self, name: str) -> IntentSpec | None:
        return self._specs.get(name)

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def training_data(self) -> tuple[list[str], list[str]]:
        texts, labels = [], []
        for spec in self:
            texts += spec.examples
            labels += [spec.name] * len(spec.examples)
        texts += self.out_of_scope
        labels += [OUT_OF_SCOPE] * len(self.out_of_scope)
        return texts, labels

    def digest(self) -> str:
        """Changes whenever anything the classifier learns from changes."""
        payload = json.dumps([[s.model_dump(mode="json") for s in self], self.out_of_scope], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def parse_specs(raw: str, source: str) -> tuple[list[IntentSpec], tuple[str, ...]]:
    try:
        data = yaml.load(raw, Loader=_SAFE_LOADER) or {}
    except yaml.YAMLError as err:
        raise RegistryError(f"{source} is not valid YAML: {err}") from err
    items = data.get("intents") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise RegistryError(f"{source} needs a top-level `intents:` list (see docs/intents.md)")
    negatives = data.get("out_of_scope") or []
    if not isinstance(negatives, list) or not all(isinstance(n, str) for n in negatives):
        raise RegistryError(f"{source}: `out_of_scope:` must be a list of phrases")
    specs = []
    for index, item in enumerate(items):
        name = item.get("name", f"#{index + 1}") if isinstance(item, dict) else f"#{index + 1}"
        try:
            specs.append(IntentSpec.model_validate(item))
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'intent'}: {e['msg']}" for e in err.errors())
            raise RegistryError(f"{source}, intent {name}: {problems}") from err
        if specs[-1].name == OUT_OF_SCOPE:
            raise RegistryError(f"{source}: `{OUT_OF_SCOPE}` is reserved; list such phrases under `out_of_scope:`")
    return specs, tuple(n.strip() for n in negatives if n.strip())


def load_registry(operator_file: Path | None = None) -> IntentRegistry:
    """Built-in intents, then the operator's file when it exists (a missing file is not an error)."""
    specs, negatives = parse_specs(BUILTIN_FILE.read_text(encoding="utf-8"), str(BUILTIN_FILE))
    if operator_file is not None and operator_file.exists():
        more, more_negatives = parse_specs(operator_file.read_text(encoding="utf-8"), str(operator_file))
        specs, negatives = specs + more, negatives + more_negatives
    return IntentRegistry(specs, negatives)
