"""Replay: a recorded run carried out again by today's planner, inspector, policy and executor, on the recorded
model answers and capability results (no model call, no effect), and the first place it goes another way.

After a policy or playbook change it answers "what would Deputy do now with that same request?". The agent
given here is built for the replay (jobs/replay_wiring.py): its planner answers from the record, its
capabilities give back the recorded results, and its stores are a scratch workspace, so the live one keeps
nothing of it."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from itertools import zip_longest
from typing import Any, Literal

from agents.agent import Agent, run_id_for
from agents.plan import Step, StepResult, digest
from agents.planner import PlanProblem
from agents.recording import Recording, forgotten_in, holds_forgotten
from agents.recording_llm import ModelDiverged, RecordedLlm
from agents.replay_steps import StepFacts, Unrecorded, steps_of
from agents.replay_policy import decisions
from memory.events import Event

Status = Literal["reproduced", "diverged", "inputs_forgotten", "no_recording"]


@dataclass(frozen=True)
class Divergence:
    """The first place the replay went another way than the record."""

    where: str
    recorded: str = ""
    now: str = ""
    why: str = ""
    # 1-based, as the operator counts; None for the planning as a whole
    step: int | None = None
    capability: str = ""

    def __str__(self) -> str:
        said = f"recorded {self.recorded} → now {self.now}" if self.recorded or self.now else ""
        return f"{self.where}: {said} ({self.why})" if said and self.why else f"{self.where}: {said or self.why}"


@dataclass(frozen=True)
class ReplayReport:
    trace_id: str
    status: Status
    dry_run: bool = False
    divergence: Divergence | None = None
    # the inputs forgetting removed from the record (then nothing is replayed)
    forgotten: tuple[str, ...] = ()
    # per step, what the record and the replay say it did
    steps: tuple[dict[str, Any], ...] = ()
    # model answers the replay took from the record, of how many recorded
    answers_used: int = 0
    answers_recorded: int = 0

    def as_json(self) -> dict[str, Any]:
        divergence = None
        if self.divergence is not None:
            divergence = {**self.divergence.__dict__, "text": str(self.divergence)}
        return {"trace_id": self.trace_id, "status": self.status, "dry_run": self.dry_run, "divergence": divergence,
                "forgotten": list(self.forgotten), "steps": list(self.steps),
                "model_answers": {"used": self.answers_used, "recorded": self.answers_recorded}}


def replay(recording: Recording, recorded: list[Event], agent: Agent, answers: RecordedLlm, dry_run: bool = False) -> ReplayReport:
    """Plan, inspect, decide and (unless `dry_run`) execute the recorded request again with `agent`, whose planner
    answers from `answers`; compare with the recorded events step by step."""
    before = steps_of(recorded, recording.run_id)
    forgotten = forgotten_in(recording) + [
        f"step {i + 1} ({f.capability})'s {'result' if holds_forgotten(f.output) else 'arguments'}"
        for i, f in sorted(before.items()) if holds_forgotten(f.output) or holds_forgotten(f.inputs)]
    report = partial(ReplayReport, recording.trace_id, dry_run=dry_run, answers_recorded=len(recording.calls))
    if forgotten:
        return report("inputs_forgotten", forgotten=tuple(dict.fromkeys(forgotten)))
    try:
        now, after = _dry(recording, agent, before) if dry_run else _full(recording, agent, before)
    except ModelDiverged as err:
        diverged = Divergence(where=f"model call {err.call} ({err.purpose or 'model'})", why=err.why)
        return report("diverged", divergence=diverged, answers_used=answers.used)
    divergence = (_planning(recording, now, answers.used) or _findings(recording.findings, now.findings)
                  or _execution(before, after, dry_run))
    steps = tuple({"step": i + 1, "recorded": before.get(i, StepFacts(i)).view(), "now": after.get(i, StepFacts(i)).view()}
                  for i in sorted(set(before) | set(after)))
    return report("diverged" if divergence else "reproduced", divergence=divergence, steps=steps, answers_used=answers.used)


def _full(recording: Recording, agent: Agent, before: dict[int, StepFacts]) -> tuple[Recording, dict[int, StepFacts]]:
    """The whole run again: planned, inspected, decided, executed on the recorded results, approvals decided as the
    operator decided them."""
    if agent.recordings is None:
        raise ValueError("a replay's agent keeps its own recording: give it a Recordings store")
    gap: Unrecorded | None = None
    try:
        agent.start(recording.intent, recording.origin, recording.trace_id, recording.untrusted, recording.recalled)
        _decide_as_recorded(agent, recording, before)
    except Unrecorded as err:
        gap = err
    now = agent.recordings.get(recording.trace_id) or recording.model_copy(update={"problem": "no plan was made"})
    after = steps_of(agent.events.timeline(recording.trace_id), recording.run_id)
    if gap is not None:
        facts = after.setdefault(gap.index, StepFacts(gap.index, gap.capability))
        facts.status, facts.error = "would act", "the recorded run never did this step, so there is no result to replay"
    return now, after


def _decide_as_recorded(agent: Agent, recording: Recording, before: dict[int, StepFacts]) -> None:
    """Each approval the replay asks for gets the operator's recorded decision; one never decided stays waiting."""
    run_id = run_id_for(recording.trace_id)
    decided: set[str] = set()
    while True:
        waiting = [r for _, r in sorted(agent.runs.results(run_id).items()) if r.status == "awaiting_approval"]
        if not waiting or not waiting[0].approval_id or waiting[0].approval_id in decided:
            return
        step, approval_id = waiting[0].index, waiting[0].approval_id
        decided.add(approval_id)
        was = before.get(step)
        approval = agent.approvals.get(approval_id)
        if was is None or was.verdict not in ("approved", "rejected") or approval is None:
            return
        # the replay's deciders are today's; the recorded decider stands in when still among them
        actor = was.decided_by if was.decided_by in approval.deciders else approval.deciders[0]
        agent.decide(approval_id, actor, "approved" if was.verdict == "approved" else "rejected", recording.trace_id)
        if was.verdict != "approved":
            return  # a rejection stops the run there (decide has recorded it)
        agent.run(run_id)


def _dry(recording: Recording, agent: Agent, before: dict[int, StepFacts]) -> tuple[Recording, dict[int, StepFacts]]:
    """Planned and inspected again, and each step put to the policy; nothing is executed."""
    made = agent.propose(recording.intent, recording.origin, recording.trace_id, recording.untrusted, recording.recalled)
    if isinstance(made, PlanProblem):
        return recording.model_copy(update={"calls": []}).ended(problem=made.reason), {}
    plan, verdict = made
    now = recording.model_copy(update={"calls": []}).ended(plan=plan, findings=verdict.reasons())
    return now, decisions(agent.executor, plan, verdict, _results(before), recording.intent.confidence,
                          approved={i for i, f in before.items() if f.verdict == "approved"})


def _results(steps: dict[int, StepFacts]) -> dict[int, StepResult]:
    return {i: StepResult(index=i, capability=f.capability, status="done", output=f.output)
            for i, f in steps.items() if f.status == "done"}


def _planning(recording: Recording, now: Recording, used: int) -> Divergence | None:
    if used < len(recording.calls):
        return Divergence("planning", f"{len(recording.calls)} model calls", f"{used}",
                          "the planner now needs fewer answers from the model")
    if recording.problem or now.problem:
        if recording.problem == now.problem:
            return None
        return Divergence("planning", _outcome(recording), _outcome(now))
    if recording.source != now.source:
        return Divergence("planning", f"a plan from {recording.source}", f"a plan from {now.source}")
    if recording.specialist != now.specialist:
        return Divergence("planning", f"the {recording.specialist or 'general'} specialist", f"the {now.specialist or 'general'} specialist")
    for i, (was, new) in enumerate(zip_longest(recording.steps, now.steps)):
        found = _step_plan(i, was, new)
        if found is not None:
            return found
    return None


def _outcome(recording: Recording) -> str:
    return f"no plan ('{recording.problem}')" if recording.problem else f"a plan of {len(recording.steps)} steps"


def _step_plan(i: int, was: Step | None, new: Step | None) -> Divergence | None:
    """Step i as planned: the same capability with the same arguments."""
    name = (new or was).capability if (new or was) else ""
    where = f"step {i + 1} {name}"
    if was is None or new is None:
        return Divergence(where, "not planned" if was is None else "planned", "planned" if was is None else "not planned",
                          step=i + 1, capability=name)
    if was.capability != new.capability:
        return Divergence(f"step {i + 1}", was.capability, new.capability, step=i + 1, capability=new.capability)
    if digest(was.capability, was.args) != digest(new.capability, new.args):
        return Divergence(where, "these arguments", "other arguments", f"{_changed(was.args, new.args)} changed",
                          step=i + 1, capability=name)
    return None


def _findings(recorded: list[str], now: list[str]) -> Divergence | None:
    for was, new in zip_longest(recorded, now):
        if was != new:
            return Divergence("inspector", f"'{was}'" if was else "no finding", f"'{new}'" if new else "no finding")
    return None


def _execution(before: dict[int, StepFacts], after: dict[int, StepFacts], dry_run: bool) -> Divergence | None:
    """Step by step: the policy's decision, the arguments it ran with, and (not in a dry run) what came of it."""
    for i in sorted(set(before) | set(after)):
        was, new = before.get(i) or StepFacts(i), after.get(i) or StepFacts(i)
        name = new.capability or was.capability
        where = dict(where=f"step {i + 1} {name}", step=i + 1, capability=name)
        if was.reached != new.reached:
            return Divergence(recorded=was.reached, now=new.reached, why=new.why or new.error, **where)  # type: ignore[arg-type]
        if was.inputs is not None and new.inputs is not None and was.inputs_digest != new.inputs_digest:
            return Divergence(recorded="these arguments", now="other arguments",  # type: ignore[arg-type]
                              why=f"{_changed(was.inputs, new.inputs)} changed", **where)
        if not dry_run and was.outcome != new.outcome:
            return Divergence(recorded=was.outcome, now=new.outcome, why=new.error, **where)  # type: ignore[arg-type]
    return None


def _changed(was: dict[str, Any], now: dict[str, Any]) -> str:
    keys = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
    return ", ".join(keys) or "their order"

