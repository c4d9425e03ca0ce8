"""What Deputy can do in the world: one Capability per action, with its risk, idempotency and retry policy.

Connectors (SMTP, CalDAV, webhooks, Deputy's own state) each build Capabilities; registry.py lists them."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict


class Input(BaseModel):
    """What a capability takes: frozen, and a field it does not know is refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Output(BaseModel):
    """What a capability gives back, and the parts it is made of: frozen."""

    model_config = ConfigDict(frozen=True)


class RiskClass(str, Enum):
    """How much harm a capability can do, least to most."""

    READ = "read"
    INTERNAL_WRITE = "internal_write"
    EXTERNAL_WRITE = "external_write"
    FINANCIAL = "financial"
    IRREVERSIBLE = "irreversible"


# "ledger": claim a key in the effect ledger before acting and record the result after.
# "natural": the ledger as well, and the target itself dedupes by our key (SMTP Message-ID,
# HTTP Idempotency-Key, CalDAV UID), which settles the one case the ledger cannot: a worker
# that died after the effect but before recording it.
Idempotency = Literal["ledger", "natural"]


class CapabilityError(Exception):
    """A connector call failed; subclasses say whether trying again can help."""


class TransientError(CapabilityError):
    """Worth retrying: 5xx, timeouts, connection refused, rate limits."""


class PermanentError(CapabilityError):
    """Retrying cannot help: 4xx, bad credentials, a rejected recipient, invalid input."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter (applied with tenacity): wait ~ base_s * 2**n, capped at max_s."""

    attempts: int = 3
    base_s: float = 0.5
    max_s: float = 8.0
    # extra random wait, up to this many seconds, so retrying workers do not stampede together
    jitter: float = 0.5
    retry_on: tuple[type[BaseException], ...] = (TransientError, ConnectionError, TimeoutError)


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class EffectContext:
    """Who is acting and under which key: the same step of the same run always has the same key."""

    idempotency_key: str
    workspace: str
    trace_id: str
    run_id: str
    # the run was made from someone else's text: what the step stores keeps that provenance
    untrusted: bool = False


def effect_key(run_id: str, step_index: int) -> str:
    return f"{run_id}:{step_index}"


Run = Callable[[BaseModel, EffectContext], BaseModel]
Args = Mapping[str, Any]


def plain_preview(args: Args) -> str:
    """The arguments as YAML: the approval card's preview for a capability that declares none."""
    return yaml.safe_dump(dict(args), sort_keys=True, allow_unicode=True, default_flow_style=False).strip()


@dataclass(frozen=True)
class Capability:
    name: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    risk: RiskClass
    side_effect: bool
    reversible: bool
    # the capability that undoes this one, if any
    compensation: str | None
    idempotency: Idempotency
    retry: RetryPolicy
    # the connector call; sync, because workers are sync
    run: Run
    health: Callable[[], Health] | None = None
    # who the effect reaches, for policy and risk (e.g. "to" for email, "attendees" for events)
    recipient_fields: tuple[str, ...] = field(default=())
    # which input field carries an amount of money, if any
    amount_field: str | None = None
    # fields that name where the effect goes without being an address (a configured webhook's name): like
    # recipients, someone else's text may not choose them
    target_fields: tuple[str, ...] = field(default=())
    # how the operator sees it, so executors and cards never switch on names: the approval card's question,
    # the exact action as that card previews it (from the arguments), and one line on what was done
    # (from the arguments and the output as JSON)
    title: str = ""
    preview: Callable[[Args], str] = plain_preview
    summary: Callable[[Args, Args], str] | None = None
    # the compensation's arguments, from the done step's arguments and its output (JSON); None when this
    # particular effect cannot be undone (a webhook whose target declares no reverse call)
    undo: Callable[[Args, Args], dict[str, Any] | None] | None = None
    # for a capability only some arguments of which can be undone (a webhook target that declares a reverse call):
    # whether these can, so a card never promises an undo that is not there
    reversible_if: Callable[[Args], bool] | None = None

    @property
    def approval_title(self) -> str:
        return self.title or f"Run {self.name}?"

    @property
    def reversibility(self) -> str:
        """Whether the effect can be undone, in the operator's words."""
        if not self.side_effect:
            return "changes nothing"
        if not self.reversible:
            return "cannot be undone"
        return f"undone by {self.compensation}" if self.compensation else "can be undone"

    def undoable(self, args: Args) -> bool:
        """Whether the effect of a step with these arguments can be undone."""
        return self.side_effect and self.reversible and (self.reversible_if is None or self.reversible_if(args))

    def reversibility_of(self, args: Args) -> str:
        """`reversibility` for a step with these arguments."""
        if self.side_effect and self.reversible and not self.undoable(args):
            return "cannot be undone"
        return self.reversibility

    def summarize(self, args: Args, output: Args) -> str:
        return self.summary(args, output) if self.summary is not None else f"{self.name}: done."

    def parse(self, args: BaseModel | dict[str, object]) -> BaseModel:
        """Validate arguments into the input model (pydantic ValidationError on bad input)."""
        if isinstance(args, self.input_model):
            return args
        raw = args.model_dump() if isinstance(args, BaseModel) else args
        return self.input_model.model_validate(raw)
