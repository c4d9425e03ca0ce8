"""The executor: runs a plan's steps in order, checkpointing each; a re-run resumes after the last done step.

Read-only steps run at once. Each side-effect step is inspected, scored and put to policy first:
auto → run it; approve → suspend with an approval (resumed by a decision); deny → stop and say why.
Effects go through integrations.invoke, so a step runs at most once per (run, step) key."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from agents.approvals import Approval, ApprovalState, ApprovalStore, new_approval_id
from agents.compensation import UNDO_SOURCE, DoneStep, Saga, reversibility, undoable_of
from agents.inspector import Inspector, Verdict
from agents.plan import Plan, Step, StepResult, digest
from agents.policy import Policy
from agents.references import UnresolvedReference, resolve, resolved_or_as_written
from agents.risk import Assessment, Directory, assess
from agents.run_store import RunStatus, RunStore, Writes
from integrations.breaker import Breakers
from integrations.capability import Capability, CapabilityError, EffectContext, effect_key
from integrations.invoke import EffectInProgress, call
from integrations.ledger import EffectLedger
from memory.events import EventLog
from memory.undo_log import Undoable

TERMINAL = ("failed", "denied", "blocked", "rejected", "expired", "superseded")


class RunMissing(LookupError):
    pass


@dataclass(frozen=True)
class RunReport:
    run_id: str
    status: RunStatus
    results: tuple[StepResult, ...]
    message: str
    approval: Approval | None = None
    # what the operator may undo of a run that is done (its done card's Undo)
    undoable: Undoable | None = None


@dataclass(eq=False)
class Executor:
    capabilities: Mapping[str, Capability]
    policy: Policy
    runs: RunStore
    approvals: ApprovalStore
    ledger: EffectLedger
    breakers: Breakers
    events: EventLog
    # who may decide an approval when the policy names no approvers of its own
    deciders: tuple[str, ...]
    directory: Directory | None = None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] | None = None
    # how long a done action can be undone (UNDO_WINDOW), for the approval card's words
    undo_window_s: float = 900
    inspector: Inspector = field(init=False)
    saga: Saga = field(init=False)

    def __post_init__(self) -> None:
        self.deciders = self.policy.approvers or self.deciders
        self.inspector = Inspector(self.policy)
        # looked up at call time, so a test can make backoff instant
        self.sleep = self.sleep or (lambda seconds: time.sleep(seconds))
        # a failed run's rollback: the same policy, ledger, breakers and events as the steps it undoes
        self.saga = Saga(self.capabilities, self.policy, self.ledger, self.breakers, self.events, self.directory,
                         sleep=lambda seconds: self.sleep(seconds))  # type: ignore[misc]

    def read(self, name: str, args: Mapping[str, Any], trace_id: str, workspace: str) -> Any:
        """Run a read-only capability now (an agenda, a search) for a skill that answers from it: no plan, no
        approval, nothing to undo; the same validation, breaker and retries as a step, and an event saying so."""
        capability = self.capabilities.get(name)
        if capability is None or capability.side_effect:
            raise CapabilityError(f"{name} is not a read-only capability here")
        ctx = EffectContext(idempotency_key=f"read:{trace_id}:{name}", workspace=workspace, trace_id=trace_id, run_id="")
        done = call(capability, dict(args), ctx, self.ledger, self.breakers.for_(name), sleep=self.sleep)
        self.events.record(trace_id, "capability.read", actor="worker", capability=name, attempts=done.attempts, ms=round(done.ms, 1))
        return done.output

    def run(
        self, run_id: str, confidence: float = 1.0, *, plan: Plan | None = None, results: Mapping[int, StepResult] | None = None,
        verdict: Verdict | None = None,
    ) -> RunReport:
        """Carry the run forward as far as it may go now; safe to call again at any point.

        A caller that has just stored the plan passes it (with no results, and the inspector's verdict on it)
        instead of having it read back."""
        if plan is None:
            plan, results = self.runs.load(run_id)
            if plan is None:
                raise RunMissing(f"no run {run_id}")
        if verdict is None:
            verdict = self.inspector.check_plan(plan, self.capabilities, plan.request)
        writes = self.runs.writes()
        self.runs.set_status(run_id, "running", pipe=writes.pipe)
        try:
            return self._carry(plan, dict(results or {}), verdict, confidence, writes)
        except Exception:
            # what was decided before the failure stays on record (a retried job records it again, which is harmless)
            writes.flush_quietly()
            raise

    def _carry(self, plan: Plan, results: dict[int, StepResult], verdict: Verdict, confidence: float, writes: Writes) -> RunReport:
        # a blocked step stops the whole run before anything acts, not just when its turn comes
        pending = {s.index for s in plan.steps if not (results.get(s.index) and results[s.index].status == "done")}
        blocked = [f for f in verdict.findings if f.severity == "block" and f.step in pending]
        if blocked:
            step = plan.steps[min(f.step for f in blocked if f.step is not None)]
            reasons = [f.reason for f in blocked]
            self.events.record(plan.trace_id, "step.blocked", actor="inspector", pipe=writes.pipe, run_id=plan.run_id,
                               index=step.index, capability=step.capability, specialist=plan.specialist, reasons=reasons,
                               flags=verdict.reasons("flag"))
            return self._stop(plan, results, step, "blocked", "I did not act: " + "; ".join(reasons) + ".", writes)
        lines: list[str] = []
        for step in plan.steps:
            earlier = results.get(step.index)
            if earlier is not None and earlier.status == "done":
                # done by an earlier call (before an approval, or by a worker that died after it): still reported
                lines.append(self._summary(step, results, earlier.output or {}))
                continue
            if earlier is not None and earlier.status in TERMINAL:
                return self._finish(plan, results, earlier.status, earlier.error, writes)
            outcome = self._step(plan, step, results, verdict, confidence, writes)
            if isinstance(outcome, RunReport):
                return outcome
            results[step.index] = outcome
            lines.append(self._summary(step, results, outcome.output or {}))
        report = self._finish(plan, results, "done", "\n".join(lines) or "Done.", writes)
        return replace(report, undoable=undoable_of(plan, self._done(plan, results), self.capabilities, self.clock()))

    def _done(self, plan: Plan, results: Mapping[int, StepResult]) -> list[DoneStep]:
        """The run's done steps with the arguments they ran with: what an undo or a rollback compensates."""
        return [DoneStep(s.index, s.capability, resolved_or_as_written(s.args, results), results[s.index].output or {})
                for s in plan.steps if s.index in results and results[s.index].status == "done"]

    def _summary(self, step: Step, results: Mapping[int, StepResult], output: Mapping[str, Any]) -> str:
        """One line on what a done step did, in the capability's own words."""
        args = resolved_or_as_written(step.args, results)
        capability = self.capabilities.get(step.capability)
        # a capability no longer configured still has a done step to report
        return capability.summarize(args, output) if capability is not None else f"{step.capability}: done."

    def decide(self, plan: Plan, step: Step, args: dict[str, Any], verdict: Verdict,
               confidence: float) -> tuple[Assessment, str, str, tuple[str, ...]]:
        """The step's risk, the decision on it (auto / approve / deny) and why, and the inspector's flags on it —
        what a run acts on and what a dry-run replay compares."""
        capability = self.capabilities.get(step.capability)
        # findings about this step force approval; those about the whole plan are shown in the trace
        flags = tuple(f.reason for f in verdict.findings if f.severity == "flag" and f.step == step.index)
        # the plan's specialist adds its own rules (the money specialist asks before anything moves)
        risk = assess(capability, step.capability, args, self.policy.with_specialist(plan.specialist), self.directory, confidence,
                      bool(plan.untrusted), undo=plan.source.startswith(UNDO_SOURCE))
        if flags and risk.decision == "auto" and capability is not None and capability.side_effect:
            return risk, "approve", "the inspector flagged: " + "; ".join(flags), flags
        return risk, risk.decision, risk.why, flags

    def _step(self, plan: Plan, step: Step, results: dict[int, StepResult], verdict: Verdict, confidence: float,
              writes: Writes) -> StepResult | RunReport:
        trace = plan.trace_id
        capability = self.capabilities.get(step.capability)
        try:
            args = resolve(step.args, results)
        except UnresolvedReference as err:
            return self._stop(plan, results, step, "blocked", f"I could not fill in step {step.index + 1}: {err}.", writes)
        risk, decision, why, flags = self.decide(plan, step, args, verdict, confidence)
        self.events.record(
            trace, "step.assessed", actor="executor", pipe=writes.pipe, run_id=plan.run_id, index=step.index,
            capability=step.capability, specialist=plan.specialist, inputs=args, rationale=step.rationale, risk=risk.score,
            reasons=list(risk.reasons), decision=decision, why=why, flags=list(flags),
        )
        if decision == "deny" or capability is None:
            return self._stop(plan, results, step, "denied", f"I will not do step {step.index + 1} ({step.capability}): {risk.why}.",
                              writes, risk=risk.score)
        if decision == "approve":
            # the assessment goes out with the approval's checkpoint, before the card is sent
            gate = self._gate(plan, step, args, capability, risk, why, flags, results, writes)
            if gate is not None:
                return gate
        if capability.side_effect or writes.checkpoint:
            # an effect's assessment, and the previous step's checkpoint, are in Redis before the call
            writes.flush()
        return self._execute(plan, step, args, capability, risk.score, decision, results, writes)

    def _gate(self, plan: Plan, step: Step, args: dict[str, Any], capability: Capability, risk: Assessment, why: str,
              flags: tuple[str, ...], results: dict[int, StepResult], writes: Writes) -> RunReport | None:
        """None when an approval of exactly these arguments was given; otherwise the run waits or stops."""
        now = self.clock()
        found = self.approvals.for_step_with_state(plan.run_id, step.index, now=now)
        approval, state = found if found is not None else (None, None)
        if approval is None:
            asked = Approval(
                id=new_approval_id(), run_id=plan.run_id, step_index=step.index, trace_id=plan.trace_id,
                capability=step.capability, args=args, digest=digest(step.capability, args), rationale=step.rationale,
                risk_score=risk.score, risk_reasons=risk.reasons, why=why, flags=flags, specialist=plan.specialist,
                title=capability.approval_title, preview=capability.preview(args),
                reversibility=reversibility(capability, args, self.undo_window_s), deciders=self.deciders, created_at=now,
                expires_at=now + self.policy.approval_ttl_s,
            )
            approval = self.approvals.create(asked)
            if approval.id == asked.id:
                # ours and brand new: nobody has seen its card yet, so nobody can have decided it
                state = ApprovalState("pending") if now < approval.expires_at else None
                self.events.record(plan.trace_id, "approval.requested", actor="executor", pipe=writes.pipe, run_id=plan.run_id,
                                   index=step.index, approval_id=approval.id, digest=approval.digest,
                                   deciders=list(approval.deciders), expires_at=approval.expires_at)
        if state is None:
            state = self.approvals.state(approval.id, now=now)
        if state.status == "pending":
            waiting = StepResult(index=step.index, capability=step.capability, status="awaiting_approval", risk=risk.score,
                                 decision="approve", approval_id=approval.id)
            self.runs.checkpoint(plan.run_id, waiting, pipe=writes.pipe)
            self.runs.set_status(plan.run_id, "awaiting_approval", pipe=writes.pipe)
            writes.flush()
            merged = {**results, step.index: waiting}
            return RunReport(plan.run_id, "awaiting_approval", tuple(merged[k] for k in sorted(merged)),
                             "I need your approval first.", approval)
        if state.status in ("rejected", "expired", "superseded"):
            text = {"rejected": "Rejected: nothing was done.", "expired": "The approval expired: nothing was done.",
                    "superseded": "Replaced by a corrected version: nothing was done."}[state.status]
            return self._stop(plan, results, step, state.status, text, writes, risk=risk.score)
        if approval.digest != digest(step.capability, args):
            self.events.record(plan.trace_id, "approval.mismatch", actor="executor", pipe=writes.pipe, run_id=plan.run_id,
                               index=step.index, approval_id=approval.id, approved=approval.digest, now=digest(step.capability, args))
            return self._stop(plan, results, step, "blocked",
                              "I did not act: the action changed after it was approved. Ask me again to get a fresh approval.",
                              writes, risk=risk.score)
        return None

    def _execute(self, plan: Plan, step: Step, args: dict[str, Any], capability: Capability, risk: int, decision: str,
                 results: dict[int, StepResult], writes: Writes) -> StepResult | RunReport:
        ctx = EffectContext(idempotency_key=effect_key(plan.run_id, step.index), workspace=plan.workspace,
                            trace_id=plan.trace_id, run_id=plan.run_id, untrusted=bool(plan.untrusted))
        started = time.perf_counter()
        try:
            # the ledger's record of the effect joins the step's checkpoint: both land in one transaction
            done = call(capability, args, ctx, self.ledger, self.breakers.for_(capability.name), sleep=self.sleep,
                        record_in=writes.pipe)
        except EffectInProgress:
            raise  # another worker holds the step: let the job be retried later
        except CapabilityError as err:
            ms = round((time.perf_counter() - started) * 1000, 2)
            self.events.record(plan.trace_id, "step.failed", actor="executor", pipe=writes.pipe, run_id=plan.run_id,
                               index=step.index, capability=capability.name, error=str(err)[:500], ms=ms)
            # a run that cannot finish takes back what it did so far (a saga), and says what it could not
            writes.flush()
            rollback = self.saga.rollback(plan, self._done(plan, results))
            message = "\n".join(filter(None, [f"I could not do step {step.index + 1} ({capability.name}): {err}", rollback.text()]))
            return self._stop(plan, results, step, "failed", message, writes, risk=risk, record=False)
        output = done.output.model_dump(mode="json")
        result = StepResult(index=step.index, capability=capability.name, status="done", output=output, decision=decision,
                            risk=risk, ms=done.ms, replayed=done.replayed)
        self.runs.checkpoint(plan.run_id, result, pipe=writes.pipe)
        after = self.inspector.check_result(step, output)
        self.events.record(plan.trace_id, "step.done", actor="executor", pipe=writes.pipe, run_id=plan.run_id, index=step.index,
                           capability=capability.name, specialist=plan.specialist, result=output, ms=done.ms,
                           attempts=done.attempts, replayed=done.replayed, took_over=done.took_over, flags=after.reasons())
        # sent before the next step's call or with the run's end, whichever comes first: nothing that could
        # fail or take long runs in between (an effect's record included)
        writes.checkpoint = True
        return result

    def _stop(self, plan: Plan, results: Mapping[int, StepResult], step: Step, status: RunStatus, message: str, writes: Writes,
              risk: int = 0, record: bool = True) -> RunReport:
        result = StepResult(index=step.index, capability=step.capability, status=status, error=message, risk=risk)  # type: ignore[arg-type]
        self.runs.checkpoint(plan.run_id, result, pipe=writes.pipe)
        if record and status != "blocked":
            self.events.record(plan.trace_id, f"step.{status}", actor="executor", pipe=writes.pipe, run_id=plan.run_id,
                               index=step.index, capability=step.capability, reason=message)
        merged = {**results, step.index: result}
        return self._finish(plan, merged, status, message, writes)

    def _finish(self, plan: Plan, results: Mapping[int, StepResult], status: RunStatus, message: str, writes: Writes) -> RunReport:
        self.runs.set_status(plan.run_id, status, message, pipe=writes.pipe)
        self.events.record(plan.trace_id, "run.finished", actor="executor", pipe=writes.pipe, run_id=plan.run_id, status=status,
                           steps=len(plan.steps), done=sum(1 for r in results.values() if r.status == "done"))
        writes.flush()
        return RunReport(plan.run_id, status, tuple(results[k] for k in sorted(results)), message)

