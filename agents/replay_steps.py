"""What each step of a run did, read from its trace's events, and capabilities whose effect is that record.

The same reading serves the recorded run and its replay, so both are compared in the same terms."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from pydantic import BaseModel, ValidationError

from agents.plan import digest
from integrations.capability import Capability, EffectContext, PermanentError
from memory.events import Event

# an approval nobody decided (it expired, or a correction replaced it) replays as one still waiting
UNDECIDED = {"expired": "awaiting_approval", "superseded": "awaiting_approval"}
STOPS = ("step.denied", "step.rejected", "step.expired", "step.superseded", "step.blocked", "step.failed")
KINDS = ("step.assessed", "approval.requested", "step.done", *STOPS)


@dataclass
class StepFacts:
    index: int
    capability: str = ""
    # the arguments as they ran (earlier steps' results filled in), and the policy's decision on them
    inputs: dict[str, Any] | None = None
    decision: str = ""
    risk: int | None = None
    why: str = ""
    # "" when the run never reached this step
    status: str = ""
    output: dict[str, Any] | None = None
    error: str = ""
    approval_id: str = ""
    # the operator's decision on its approval ("approved", "rejected") and who made it
    verdict: str = ""
    decided_by: str = ""

    @property
    def inputs_digest(self) -> str:
        return digest(self.capability, self.inputs) if self.inputs is not None else ""

    @property
    def reached(self) -> str:
        """What happened when the run came to this step: the policy's decision, or why it went no further."""
        return self.decision or ("blocked" if self.status == "blocked" else "not reached")

    @property
    def outcome(self) -> str:
        return UNDECIDED.get(self.status, self.status) or "not reached"

    def view(self) -> dict[str, Any]:
        return {"capability": self.capability, "decision": self.reached, "risk": self.risk, "status": self.outcome,
                "approval": self.verdict or None}


def steps_of(events: Iterable[Event], run_id: str) -> dict[int, StepFacts]:
    """Per step index, what the run's events say it did; the latest event of a step wins."""
    steps: dict[int, StepFacts] = {}
    by_approval: dict[str, StepFacts] = {}
    for event in events:
        data = event.data
        if data.get("run_id") != run_id:
            continue
        if event.kind in ("approval.decided", "approval.expired"):
            facts = by_approval.get(str(data.get("approval_id")))
            if facts is not None:
                facts.verdict = str(data.get("verdict") or "expired")
                facts.decided_by = event.actor
            continue
        if event.kind not in KINDS or not isinstance(data.get("index"), int):
            continue
        facts = steps.setdefault(data["index"], StepFacts(index=data["index"]))
        facts.capability = str(data.get("capability") or facts.capability)
        _apply(facts, event)
        if event.kind == "approval.requested":
            by_approval[str(data.get("approval_id"))] = facts
    return steps


def _apply(facts: StepFacts, event: Event) -> None:
    data = event.data
    if event.kind == "step.assessed":
        facts.inputs = data.get("inputs") if isinstance(data.get("inputs"), dict) else {}
        facts.decision, facts.risk, facts.why = str(data.get("decision") or ""), data.get("risk"), str(data.get("why") or "")
    elif event.kind == "approval.requested":
        facts.status, facts.approval_id = "awaiting_approval", str(data.get("approval_id") or "")
    elif event.kind == "step.done":
        facts.status, facts.output = "done", data.get("result") if isinstance(data.get("result"), dict) else {}
    elif event.kind in STOPS:
        facts.status = event.kind.removeprefix("step.")
        facts.error = str(data.get("error") or data.get("reason") or "; ".join(data.get("reasons") or []))


class Unrecorded(RuntimeError):
    """A replayed step would act, but the recorded run never did: there is no result to give back."""

    def __init__(self, index: int, capability: str) -> None:
        super().__init__(f"step {index + 1} ({capability}) has no recorded result")
        self.index = index
        self.capability = capability


def stand_ins(capabilities: Mapping[str, Capability], recorded: Mapping[int, StepFacts]) -> dict[str, Capability]:
    """The capabilities as configured now (inputs, risk, presentation), each answering with what the same step
    gave when it ran: a recorded result, or its recorded failure. Nothing reaches the world."""
    return {name: replace(capability, run=_played(capability, recorded), health=None) for name, capability in capabilities.items()}


def _played(capability: Capability, recorded: Mapping[int, StepFacts]) -> Any:
    def run(data: BaseModel, ctx: EffectContext) -> BaseModel:
        # a step's effect key is "<run id>:<step index>" (integrations.capability.effect_key); a rollback's is not
        suffix = ctx.idempotency_key.removeprefix(f"{ctx.run_id}:")
        if not suffix.isdigit():
            raise PermanentError("a replay carries out no compensation")
        index = int(suffix)
        facts = recorded.get(index)
        if facts is None or facts.capability != capability.name or facts.status not in ("done", "failed"):
            raise Unrecorded(index, capability.name)
        if facts.status == "failed":
            raise PermanentError(facts.error or "it failed")
        try:
            return capability.output_model.model_validate(facts.output or {})
        except ValidationError as err:
            raise PermanentError(f"the recorded result no longer fits {capability.name}'s output: {err.errors()[0]['msg']}") from None
    return run
