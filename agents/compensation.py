"""Compensation: what undoes a run's done steps (each capability's own `undo`), and a failed plan's rollback.

Undoing a finished run is a run of its own (`undo_plan`, carried by the executor like any other). A run whose later
step fails for good is rolled back here, at once: its earlier reversible steps are compensated newest first, each
under a key derived from the step it undoes, so a retried job compensates once."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from agents.plan import Origin, Plan, Step
from agents.policy import Policy
from agents.risk import Directory, assess
from agents.undo_cards import minutes
from integrations.breaker import Breakers
from integrations.capability import Capability, CapabilityError, EffectContext, effect_key
from integrations.invoke import EffectInProgress, call
from integrations.ledger import EffectLedger
from memory.events import EventLog
from memory.undo_log import Undoable, UndoStep

# a plan whose source starts so undoes an earlier action: it is not undone or rolled back in its turn
UNDO_SOURCE = "undo:"


@dataclass(frozen=True)
class DoneStep:
    """A step that has happened: its resolved arguments and its output (JSON)."""

    index: int
    capability: str
    args: dict[str, Any]
    output: dict[str, Any]


@dataclass(frozen=True)
class Compensation:
    """What undoes one done step, or why nothing can."""

    done: DoneStep
    # what the step did, in its capability's words
    summary: str
    step: UndoStep | None
    reason: str = ""


def compensation_for(done: DoneStep, capabilities: Mapping[str, Capability]) -> Compensation | None:
    """None for a step that changed nothing (a read)."""
    capability = capabilities.get(done.capability)
    if capability is None:
        return Compensation(done, f"{done.capability}: done.", None, f"{done.capability} is no longer set up here")
    if not capability.side_effect:
        return None
    summary = capability.summarize(done.args, done.output)
    if not capability.reversible:
        return Compensation(done, summary, None, capability.reversibility)
    if not capability.compensation or capability.undo is None:
        return Compensation(done, summary, None, "I know no way to undo it")
    args = capability.undo(done.args, done.output)
    if args is None:
        return Compensation(done, summary, None, "this one cannot be undone")
    if capability.compensation not in capabilities:
        return Compensation(done, summary, None, f"what undoes it ({capability.compensation}) is not set up here")
    return Compensation(done, summary, UndoStep(capability=capability.compensation, args=args, rationale=f"Undo: {summary}"))


def reversibility(capability: Capability, args: Mapping[str, Any], window_s: float) -> str:
    """An approval card's words, before approving, on whether the action with these arguments can be undone once done."""
    if not capability.side_effect:
        return ""
    if not capability.undoable(args):
        return "This cannot be undone"
    if capability.undo is None or not capability.compensation:
        return ""  # reversible in principle, but Deputy has no undo for it: nothing to promise
    return f"Can be undone for {minutes(window_s)} after it is done"


def compensations(done: list[DoneStep], capabilities: Mapping[str, Capability]) -> list[Compensation]:
    """Each done step's compensation, newest first: the order they must run in."""
    found = (compensation_for(d, capabilities) for d in sorted(done, key=lambda d: d.index, reverse=True))
    return [c for c in found if c is not None]


def undoable_of(plan: Plan, done: list[DoneStep], capabilities: Mapping[str, Capability], now: float) -> Undoable | None:
    """What the operator may undo of a finished run; None when nothing of it can be undone."""
    if plan.source.startswith(UNDO_SOURCE):
        return None
    undo = [c for c in compensations(done, capabilities) if c.step is not None]
    if not undo:
        return None
    return Undoable(id=plan.run_id, thread_id=plan.origin.thread_id, summary="\n".join(c.summary for c in reversed(undo)),
                    steps=[c.step for c in undo if c.step is not None], run_id=plan.run_id, trace_id=plan.trace_id, created_at=now)


def undo_plan(item: Undoable, origin: Origin, trace_id: str, workspace: str, now: float) -> Plan:
    """The undo as a run of its own: one run per undoable, whoever asks and however often."""
    steps = tuple(Step(index=i, capability=s.capability, args=s.args, rationale=s.rationale) for i, s in enumerate(item.steps))
    return Plan(run_id=f"undo-{item.id}", trace_id=trace_id, workspace=workspace, goal=f"Undo: {item.summary}", request="undo",
                intent="undo", source=f"{UNDO_SOURCE}{item.id}", steps=steps, origin=origin,
                allowed=tuple(dict.fromkeys(s.capability for s in item.steps)), created_at=now)


@dataclass(frozen=True)
class Rollback:
    """What a failed run's rollback undid (each compensation's own words) and what it could not, with why."""

    undone: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()

    def text(self) -> str:
        parts = []
        if self.undone:
            parts.append("So I undid what I had done before it:\n" + "\n".join(f"• {line}" for line in self.undone))
        if self.kept:
            parts.append("I could not undo:\n" + "\n".join(f"• {line}" for line in self.kept))
        return "\n".join(parts)


@dataclass
class Saga:
    """Rolls a failed run back: the same policy (its undo rule), idempotency and events as any step."""

    capabilities: Mapping[str, Capability]
    policy: Policy
    ledger: EffectLedger
    breakers: Breakers
    events: EventLog
    directory: Directory | None = None
    sleep: Callable[[float], None] = time.sleep

    def rollback(self, plan: Plan, done: list[DoneStep]) -> Rollback:
        """Compensate `done` newest first; a run that is itself an undo is not rolled back."""
        if plan.source.startswith(UNDO_SOURCE):
            return Rollback()
        undone: list[str] = []
        kept: list[str] = []
        for compensation in compensations(done, self.capabilities):
            said, reason = self._compensate(plan, compensation)
            if reason:
                kept.append(f"{compensation.summary} — {reason}")
                self.events.record(plan.trace_id, "step.not_compensated", actor="executor", run_id=plan.run_id,
                                   index=compensation.done.index, capability=compensation.done.capability, reason=reason)
            else:
                undone.append(said)
        return Rollback(tuple(undone), tuple(kept))

    def _compensate(self, plan: Plan, compensation: Compensation) -> tuple[str, str]:
        """(what the compensation did, "") or ("", why it was not done)."""
        step = compensation.step
        if step is None:
            return "", compensation.reason
        capability = self.capabilities[step.capability]
        risk = assess(capability, step.capability, step.args, self.policy, self.directory, undo=True)
        if risk.decision == "deny":
            return "", f"the policy does not let me undo it ({risk.why})"
        if risk.decision == "approve":
            return "", "the policy asks for your approval to undo it, so I left it as it is"
        index = compensation.done.index
        ctx = EffectContext(idempotency_key=f"{effect_key(plan.run_id, index)}:undo", workspace=plan.workspace,
                            trace_id=plan.trace_id, run_id=plan.run_id)
        try:
            done = call(capability, step.args, ctx, self.ledger, self.breakers.for_(capability.name), sleep=self.sleep)
        except EffectInProgress:
            raise  # another worker is compensating this step now: the job comes back to it
        except CapabilityError as err:
            return "", f"undoing it failed: {str(err)[:300]}"
        output = done.output.model_dump(mode="json")
        said = capability.summarize(step.args, output)
        self.events.record(plan.trace_id, "step.compensated", actor="executor", run_id=plan.run_id, index=index,
                           capability=compensation.done.capability, compensation=capability.name, inputs=step.args,
                           result=output, summary=said, decision=risk.decision, why=risk.why, replayed=done.replayed)
        return said, ""
