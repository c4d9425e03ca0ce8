"""RQ entry points for runs: run_plan (carry a run forward) and resume (after an approval). JSON in, JSON out."""
from __future__ import annotations

from typing import Any

from agents.executor import RunMissing
from kernel.messages import Outcome
from agents.plan import Plan, StepResult
from kernel.messages import Reply
from jobs.runtime import Runtime, current_runtime


def run_plan(payload: dict[str, Any]) -> dict[str, Any]:
    """Carry run `run_id` as far as it may go; answer in the run's thread."""
    rt = current_runtime()
    run_id = str(payload["run_id"])
    plan, results = _load(rt, run_id)
    outcome = rt.agent.run(run_id, plan, results)
    _answer(rt, plan, outcome, suffix=str(payload.get("suffix") or "run"))
    return {"run_id": run_id, "ok": outcome.ok}


def resume(payload: dict[str, Any]) -> dict[str, Any]:
    """After an approval: re-check the approved action's digest, run the step exactly once, report."""
    rt = current_runtime()
    approval = rt.agent.approvals.get(str(payload["approval_id"]))
    if approval is None:
        return {"ok": False, "reason": "no such approval"}
    rt.events.record(approval.trace_id, "job.started", actor="worker", job="resume", approval_id=approval.id)
    plan, results = _load(rt, approval.run_id)
    outcome = rt.agent.run(approval.run_id, plan, results)
    _answer(rt, plan, outcome, suffix=f"resume-{approval.id}")
    return {"run_id": approval.run_id, "ok": outcome.ok}


def _load(rt: Runtime, run_id: str) -> tuple[Plan, dict[int, StepResult]]:
    plan, results = rt.agent.runs.load(run_id)
    if plan is None:
        raise RunMissing(f"no run {run_id}")
    return plan, results


def _answer(rt: Runtime, plan: Plan, outcome: Outcome, suffix: str) -> None:
    origin = plan.origin
    reply = Reply(
        reply_id=f"{plan.run_id}.{suffix}", channel=origin.channel, thread_id=origin.thread_id, text=outcome.text,
        card=outcome.card, trace_id=plan.trace_id, reply_to=origin.reply_to, ok=outcome.ok,
    )
    rt.queue_reply(reply)
