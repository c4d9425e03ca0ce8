"""The policy's decision on each planned step, as the executor makes it, without executing anything: what a dry-run
replay compares. Earlier steps' recorded results fill in the references to them."""
from __future__ import annotations

from typing import Mapping

from agents.executor import Executor
from agents.inspector import Verdict
from agents.plan import Plan, StepResult
from agents.references import UnresolvedReference, resolve
from agents.replay_steps import StepFacts


def decisions(executor: Executor, plan: Plan, verdict: Verdict, results: Mapping[int, StepResult], confidence: float,
              approved: set[int]) -> dict[int, StepFacts]:
    """Per step, the decision and risk; it stops where the run would stop (a block, a refusal, an approval the
    operator did not give in the record)."""
    blocked = [f.step for f in verdict.findings if f.severity == "block" and f.step is not None]
    if blocked:
        first = plan.steps[min(blocked)]
        return {first.index: StepFacts(first.index, first.capability, status="blocked")}
    out: dict[int, StepFacts] = {}
    for step in plan.steps:
        facts = out[step.index] = StepFacts(step.index, step.capability)
        try:
            args = resolve(step.args, results)
        except UnresolvedReference as err:
            facts.status, facts.error = "blocked", str(err)
            break
        capability = executor.capabilities.get(step.capability)
        risk, decision, why, _ = executor.decide(plan, step, args, verdict, confidence)
        facts.inputs, facts.decision, facts.risk, facts.why = args, decision, risk.score, why
        if decision == "deny" or capability is None or (decision == "approve" and step.index not in approved):
            break
    return out
