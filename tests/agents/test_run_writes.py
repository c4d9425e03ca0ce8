"""A run's writes are batched into few round trips, and still: every step is checkpointed before the next one
runs, every step leaves its events, and a job that dies mid-run resumes after its last finished step."""
from __future__ import annotations

from typing import Any, Callable

import pytest
from pydantic import BaseModel

from kernel.messages import Intent
from agents.plan import Origin
from kernel.settings import Settings
from integrations.capability import Capability, EffectContext, RetryPolicy, RiskClass
from jobs.agent_wiring import build_agent
from jobs.queues import JobQueues
from memory.events import EventLog
from kernel.keys import Keys

TRACE = "tr-writes"


class Query(BaseModel):
    query: str
    limit: int = 5


class Found(BaseModel):
    contacts: list[dict[str, Any]] = []
    notes: list[str] = []


def read_only(name: str, run: Callable[[BaseModel, EffectContext], Found]) -> Capability:
    return Capability(name, "test lookup", Query, Found, RiskClass.READ, side_effect=False, reversible=True, compensation=None,
                      idempotency="ledger", retry=RetryPolicy(attempts=1), run=run,  # type: ignore[arg-type]
                      summary=lambda args, out: f"Found {len(out['contacts'])} contact." if out["contacts"] else f"{name}: done.")


def lookup_agent(settings: Settings, redis: Any, second: Callable[[BaseModel, EffectContext], Found]) -> tuple[Any, list[str]]:
    calls: list[str] = []

    def first(args: BaseModel, ctx: EffectContext) -> Found:
        calls.append("contacts.lookup")
        return Found(contacts=[{"email": "ana@acme.io"}])

    def then(args: BaseModel, ctx: EffectContext) -> Found:
        calls.append("notes.search")
        return second(args, ctx)

    caps = {"contacts.lookup": read_only("contacts.lookup", first), "notes.search": read_only("notes.search", then)}
    return build_agent(settings, redis, None, JobQueues(redis, 0), capabilities=caps), calls


def start(agent: Any) -> Any:
    intent = Intent(name="lookup", text="lookup ana", slots={"query": "ana"})
    return agent.start(intent, Origin(channel="console", thread_id="t1", actor="operator"), TRACE)


def kinds(redis: Any, settings: Settings) -> list[str]:
    return [e.kind for e in EventLog(redis, settings.workspace).timeline(TRACE)]


def checkpoints(redis: Any, settings: Settings) -> dict[int, str]:
    agent_runs = build_agent(settings, redis, None, JobQueues(redis, 0), capabilities={}).runs
    return {i: r.status for i, r in agent_runs.results(f"run-{TRACE}").items()}


def test_every_step_leaves_its_events_and_checkpoint_in_order(settings, redis):
    agent, calls = lookup_agent(settings, redis, lambda args, ctx: Found(notes=["Ana prefers mornings"]))
    outcome = start(agent)
    assert outcome.ok and "Found 1 contact." in outcome.text
    assert calls == ["contacts.lookup", "notes.search"]
    assert kinds(redis, settings) == ["plan.made", "step.assessed", "step.done", "step.assessed", "step.done", "run.finished"]
    assert checkpoints(redis, settings) == {0: "done", 1: "done"}
    assert redis.hget(Keys(settings.workspace)("run", f"run-{TRACE}"), "status") == b"done"


def test_a_step_runs_only_after_the_previous_one_is_checkpointed(settings, redis):
    seen: dict[str, Any] = {}

    def second(args: BaseModel, ctx: EffectContext) -> Found:
        # what a worker taking over at this instant would find in Redis
        seen["checkpoints"] = checkpoints(redis, settings)
        seen["kinds"] = kinds(redis, settings)
        return Found()

    agent, _ = lookup_agent(settings, redis, second)
    assert start(agent).ok
    assert seen["checkpoints"] == {0: "done"}
    assert seen["kinds"] == ["plan.made", "step.assessed", "step.done", "step.assessed"]


def test_a_job_that_dies_mid_run_keeps_what_it_did_and_the_retry_resumes_after_it(settings, redis):
    failures = [RuntimeError("worker bug")]

    def second(args: BaseModel, ctx: EffectContext) -> Found:
        if failures:
            raise failures.pop()
        return Found(notes=["Ana prefers mornings"])

    agent, calls = lookup_agent(settings, redis, second)
    with pytest.raises(RuntimeError):
        start(agent)
    # the first step's checkpoint and every event recorded before the failure are in Redis
    assert checkpoints(redis, settings) == {0: "done"}
    assert kinds(redis, settings) == ["plan.made", "step.assessed", "step.done", "step.assessed"]

    outcome = start(agent)  # the retried job
    assert outcome.ok
    assert calls == ["contacts.lookup", "notes.search", "notes.search"]  # the first step did not run again
    assert kinds(redis, settings).count("plan.made") == 1  # nor was the request planned again
    assert checkpoints(redis, settings) == {0: "done", 1: "done"}
    assert kinds(redis, settings)[-1] == "run.finished"
