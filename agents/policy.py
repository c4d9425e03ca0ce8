"""Policy: per capability an autonomy level (auto / approve / deny) and rules; deny by default."""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

Autonomy = Literal["auto", "approve", "deny"]
ORDER: dict[str, int] = {"auto": 0, "approve": 1, "deny": 2}


class CapabilityRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    autonomy: Autonomy = "deny"
    max_recipients: int | None = None
    max_amount: float | None = None


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # "always": every step that changes something (a specialist that asks before anything moves)
    when: Literal["irreversible", "external_recipient", "new_recipient", "amount_over", "untrusted_input", "always"]
    then: Autonomy
    amount: float | None = None


class UndoRule(BaseModel):
    """How an undo is decided: compensating the operator's own recent action, which they have just asked for by name
    (Undo on its done card, "undo that"), or a failed plan's rollback of its earlier steps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    autonomy: Autonomy = "auto"


class SpecialistRules(BaseModel):
    """A specialist's own risk rules, added to the policy's rules for its plans (so only ever stricter)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[Rule, ...] = ()


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    approve: int = Field(default=40, ge=0, le=100)
    deny: int = Field(default=90, ge=0, le=101)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    thresholds: Thresholds = Thresholds()
    default: Autonomy = "deny"
    capabilities: dict[str, CapabilityRule] = Field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    approvers: tuple[str, ...] = ()
    internal_domains: tuple[str, ...] = ()
    approval_ttl_s: int = Field(default=1800, gt=0)
    undo: UndoRule = UndoRule()
    # per specialist (agents/specialists.py), rules of its own; a POLICY_FILE that names none has none
    specialists: dict[str, SpecialistRules] = Field(default_factory=dict)

    def rule_for(self, capability: str) -> CapabilityRule | None:
        return self.capabilities.get(capability)

    def autonomy(self, capability: str) -> Autonomy:
        rule = self.rule_for(capability)
        return rule.autonomy if rule else self.default

    def with_specialist(self, specialist: str) -> "Policy":
        """The policy a specialist's step is decided by: these rules, with the specialist's own added."""
        own = self.specialists.get(specialist)
        return self.model_copy(update={"rules": self.rules + own.rules}) if own is not None and own.rules else self

    def is_internal(self, address: str) -> bool:
        domain = address.rsplit("@", 1)[-1].strip().lower().rstrip(">")
        return domain in {d.lower() for d in self.internal_domains}


def stricter(a: Autonomy, b: Autonomy) -> Autonomy:
    return a if ORDER[a] >= ORDER[b] else b


class PolicyError(ValueError):
    """The policy file is not valid; the message says where."""


def load_policy(path: Path | str | None = None) -> Policy:
    """The policy at `path`, or the built-in default (agents/policy.yaml)."""
    if path is None:
        text = resources.files("agents").joinpath("policy.yaml").read_text(encoding="utf-8")
        where = "agents/policy.yaml"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as err:
            raise PolicyError(f"cannot read the policy file {path}: {err.strerror}; check POLICY_FILE") from err
        where = str(path)
    try:
        raw: Any = yaml.safe_load(text) or {}
        return Policy.model_validate(raw)
    except (yaml.YAMLError, ValueError) as err:
        raise PolicyError(f"the policy file {where} is not valid: {err}") from err
