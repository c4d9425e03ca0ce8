"""The agent: plan → inspect (send back to the planner, boundedly) → execute, and the approval decisions.

Skills and jobs call this; it owns no connections of its own (everything is passed in)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Protocol

from agents.approval_cards import approval_card
from agents.approvals import ApprovalState, ApprovalStore
from agents.compensation import undo_plan
from agents.executor import Executor, RunReport
from agents.inspector import Verdict
from kernel.messages import Card, Intent, Outcome
from agents.plan import Origin, Plan, StepResult
from agents.planner import Planner, PlanProblem, describe
from agents.recollections import Recollection
from agents.recording import Recording, Recordings, listening
from agents.run_store import RunStore
from agents.undo_cards import undo_card
from memory.events import EventLog
from memory.undo_log import Undoable, UndoLog
from kernel import job_names


class Enqueue(Protocol):
    """Put a job on the queue by the dotted name of its function (the agent never imports jobs/)."""

    def __call__(self, func: str, payload: dict[str, Any], job_id: str) -> None: ...


RESUME_JOB = job_names.RESUME_RUN
RUN_JOB = job_names.RUN_PLAN


def run_id_for(trace_id: str) -> str:
    # one run per request: a retried job finds the run it already started
    return f"run-{trace_id}"


def _clock(ts: float | None) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(ts or time.time()))


@dataclass
class Agent:
    planner: Planner
    executor: Executor
    runs: RunStore
    approvals: ApprovalStore
    events: EventLog
    enqueue: Enqueue
    workspace: str
    max_replans: int = 2
    # what each thread can undo, and for how long after it was done (UNDO_WINDOW); no Undo where None
    undo: UndoLog | None = None
    undo_window_s: float = 900
    # what each run is planned from (inputs and model answers), for `deputy replay`; nothing recorded where None
    recordings: Recordings | None = None

    def start(self, intent: Intent, origin: Origin, trace_id: str, untrusted: tuple[str, ...] = (),
              recalled: tuple[Recollection, ...] = ()) -> Outcome:
        """Plan the intent (once per request) and carry the run as far as it may go now; `untrusted` is the content
        acted on, `recalled` what Deputy knows about it (facts, notes, memories, each marked with whose words)."""
        run_id = run_id_for(trace_id)
        plan, results = self.runs.load(run_id)
        if plan is not None:  # a retried job: the run it already started goes on
            return self.render(self.executor.run(run_id, confidence=intent.confidence, plan=plan, results=results))
        heard = Recording(trace_id=trace_id, run_id=run_id, intent=intent, origin=origin, untrusted=untrusted, recalled=recalled)
        with listening(heard.calls):
            made = self._plan(intent, origin, trace_id, run_id, untrusted, recalled)
        if isinstance(made, PlanProblem):
            self._keep(heard.ended(problem=made.reason))
            return Outcome(text=made.reason, ok=False)
        plan, verdict, record = made
        kept = heard.ended(plan=plan, findings=verdict.reasons())
        # the recording goes with the plan and its event, in the same transaction
        if not self.runs.save(plan, also=lambda pipe: (record(pipe), self._keep(kept, pipe))):
            # another worker stored this run first: carry on with its plan, not ours
            return self.render(self.executor.run(run_id, confidence=intent.confidence))
        return self.render(self.executor.run(run_id, confidence=intent.confidence, plan=plan, results={}, verdict=verdict))

    def _plan(
        self, intent: Intent, origin: Origin, trace_id: str, run_id: str, untrusted: tuple[str, ...],
        recalled: tuple[Recollection, ...] = (),
    ) -> tuple[Plan, Verdict, Callable[[Any], object]] | PlanProblem:
        """The plan to run, the inspector's verdict on it, and its plan.made event (written with the plan)."""
        inspector = self.executor.inspector
        feedback = ""
        attempt = 0
        while True:
            attempt += 1
            made, usage = self.planner.plan(intent, run_id, trace_id, self.workspace, origin, untrusted, feedback, recalled)
            if isinstance(made, PlanProblem):
                self.events.record(trace_id, "plan.failed", actor="planner", reason=made.reason, attempt=attempt,
                                   llm_usage=usage.prompt_tokens + usage.completion_tokens)
                return made
            verdict = inspector.check_plan(made, self.executor.capabilities, made.request)
            # the specialist and the memories first: the trace's one-line summary keeps the start of an event
            fields: dict[str, Any] = dict(
                run_id=run_id, specialist=made.specialist, memories=list(made.memories), source=made.source, attempt=attempt,
                steps=describe(made), allowed=list(made.allowed),
                untrusted=len(made.untrusted), findings=verdict.reasons(), model=usage.model,
                llm_usage=usage.prompt_tokens + usage.completion_tokens,
            )
            if not verdict.blocked or made.source != "llm" or attempt > self.max_replans:
                return made, verdict, lambda pipe: self.events.record(trace_id, "plan.made", actor="planner", pipe=pipe, **fields)
            self.events.record(trace_id, "plan.made", actor="planner", **fields)
            # send it back with the reason; the executor refuses the blocked steps if the model insists
            feedback = "; ".join(verdict.reasons("block"))

    def propose(self, intent: Intent, origin: Origin, trace_id: str, untrusted: tuple[str, ...] = (),
                recalled: tuple[Recollection, ...] = ()) -> tuple[Plan, Verdict] | PlanProblem:
        """The plan `start` would make and the inspector's verdict on it, neither stored nor run (a dry-run replay)."""
        made = self._plan(intent, origin, trace_id, run_id_for(trace_id), untrusted, recalled)
        return made if isinstance(made, PlanProblem) else (made[0], made[1])

    def _keep(self, recording: Recording, pipe: Any = None) -> None:
        if self.recordings is not None:
            self.recordings.save(recording, pipe)

    def run(self, run_id: str, plan: Plan | None = None, results: Mapping[int, StepResult] | None = None) -> Outcome:
        """Carry a stored run forward; a caller that has already read the run passes what it read."""
        return self.render(self.executor.run(run_id, plan=plan, results=results))

    def render(self, report: RunReport) -> Outcome:
        if report.status == "awaiting_approval" and report.approval is not None:
            a = report.approval
            ask = a.title or f"Run {a.capability}?"
            return Outcome(text=f"{ask} I need your approval first (risk {a.risk_score}/100).",
                           # the executor has just seen it pending: no need to read it back
                           card=approval_card(a, ApprovalState("pending")))
        if report.status == "done" and report.undoable is not None and self.undo is not None:
            return Outcome(text=report.message, card=self._offer_undo(report.undoable))
        return Outcome(text=report.message, ok=report.status == "done")

    def _offer_undo(self, made: Undoable) -> Card:
        """The done card with Undo, for the undoable kept in the thread's log (a re-run keeps its first time)."""
        assert self.undo is not None
        item = self.undo.get(made.id)
        if item is None:
            self.undo.push(made)
            item = made
        now = self.undo.clock()
        return undo_card(item, self.undo_window_s, now, resolution="Undone" if self.undo.undone(item.id) else "")

    def undo_run(self, item: Undoable, origin: Origin, trace_id: str) -> RunReport:
        """Undo `item` as a run of its own (run id undo-ID): the same policy, approval, idempotency and trace as any
        run. Asked again (a double click, a retried job) it carries on with the run the first ask started."""
        plan = undo_plan(item, origin, trace_id, self.workspace, time.time())

        def requested(pipe: Any) -> object:
            return self.events.record(trace_id, "undo.requested", actor=origin.actor, pipe=pipe, undo_id=item.id, run_id=plan.run_id,
                                      undoes_run=item.run_id, undoes_trace=item.trace_id, summary=item.summary,
                                      steps=[s.capability for s in item.steps])

        if not self.runs.save(plan, also=requested):
            return self.executor.run(plan.run_id)
        return self.executor.run(plan.run_id, plan=plan, results={})

    def decide(self, approval_id: str, actor: str, verdict: Literal["approved", "rejected"], trace_id: str) -> Outcome:
        """One click on an approval card: first decision wins; everyone else is told what happened."""
        approval = self.approvals.get(approval_id)
        if approval is None:
            return Outcome(text="That approval no longer exists; nothing was changed.", ok=False)
        result = self.approvals.decide(approval_id, actor, verdict, trace_id)
        state = result.state
        common = dict(approval_id=approval_id, run_id=approval.run_id, decision_trace=trace_id, verdict=verdict)
        if result.outcome == "forbidden":
            self.events.record(approval.trace_id, "approval.refused", actor=actor, reason="not an allowed decider", **common)
            who = ", ".join(approval.deciders)
            return Outcome(text=f"Only {who} may decide this. Nothing was changed.", ok=False)
        if result.outcome == "missing":
            return Outcome(text="That approval no longer exists; nothing was changed.", ok=False)
        card = approval_card(approval, state)
        if result.outcome == "already":
            self.events.record(approval.trace_id, "approval.duplicate", actor=actor, already=state.status,
                               decided_by=state.decided_by, **common)
            if state.status == "superseded":
                return Outcome(text="You corrected this action after I showed it, so this card can no longer approve it; "
                                    "use the newer card. Nothing was changed.", card=card, ok=False)
            what = "expired" if state.status == "expired" else f"{state.status} by {state.decided_by} at {_clock(state.decided_at)}"
            return Outcome(text=f"Already decided: {what}. Nothing was changed.", card=card, ok=False)
        if result.outcome == "expired":
            self.events.record(approval.trace_id, "approval.expired", actor=actor, expired_at=approval.expires_at, **common)
            self.executor.run(approval.run_id)  # records the run as expired; nothing runs
            return Outcome(text=f"This approval expired at {_clock(approval.expires_at)}; nothing was done. Ask me again if you still want it.",
                           card=card, ok=False)
        self.events.record(approval.trace_id, "approval.decided", actor=actor, decided_at=state.decided_at, **common)
        if verdict == "rejected":
            self.executor.run(approval.run_id)
            return Outcome(text="Rejected: nothing was done.", card=card)
        plan = self.runs.plan(approval.run_id)
        origin = plan.origin.model_dump(mode="json") if plan else {}
        self.enqueue(RESUME_JOB, {"approval_id": approval_id, "trace_id": approval.trace_id, "decision": origin},
                     job_id=f"resume-{approval_id}")
        return Outcome(text=f"Approved by {actor}. On it.", card=card)
