"""What `deputy replay` runs on: the agent as a worker builds it from today's settings (policy, playbooks, inspector,
capabilities), reading the operator's contacts and facts as they are now, with three things swapped:

- the planner's model is the record (agents/recording_llm.RecordedLlm): no model is called;
- each capability gives back its step's recorded result (agents/replay_steps.stand_ins): nothing acts;
- what the replay writes (its run, approvals, effect ledger, events) goes to a scratch workspace, removed at the end."""
from __future__ import annotations

import uuid

from redis import Redis

from agents.agent import Agent
from agents.inspector import Inspector
from agents.provenance import Acquainted
from agents.recording import Recordings
from agents.recording_llm import RecordedLlm
from agents.replay import ReplayReport, replay
from agents.replay_steps import StepFacts, stand_ins, steps_of
from integrations.internal import ContactBook
from integrations.registry import build_capabilities
from jobs.agent_wiring import build_agent
from jobs.queues import JobQueues
from kernel.keys import Keys
from kernel.settings import Settings
from memory.events import EventLog
from memory.facts import FactStore
from memory.redaction import Redactor, secret_values

SCRATCH = "replay-"


def replay_trace(settings: Settings, redis: Redis, trace_id: str, dry_run: bool = False) -> ReplayReport:
    """Replay the run of `trace_id` in `settings.workspace`; the live workspace is only read."""
    secrets = secret_values(settings)
    recording = Recordings(redis, settings.workspace, secrets).get(trace_id)
    if recording is None:
        return ReplayReport(trace_id=trace_id, status="no_recording", dry_run=dry_run)
    recorded = EventLog(redis, settings.workspace).timeline(trace_id)
    answers = RecordedLlm(recording.calls, Redactor(secrets))
    scratch = f"{SCRATCH}{uuid.uuid4().hex[:12]}"
    try:
        agent = _scratch_agent(settings, redis, scratch, answers, steps_of(recorded, recording.run_id))
        return replay(recording, recorded, agent, answers, dry_run)
    finally:
        _wipe(redis, scratch)


def _scratch_agent(settings: Settings, redis: Redis, scratch: str, answers: RecordedLlm, recorded: dict[int, StepFacts]) -> Agent:
    capabilities = stand_ins(build_capabilities(settings, redis), recorded)
    agent = build_agent(settings.model_copy(update={"workspace": scratch}), redis, answers, JobQueues(redis), capabilities)
    # whom the operator knows decides risk and provenance: the live workspace's contacts and facts, read only
    known = ContactBook(redis, settings.workspace)
    executor = agent.executor
    executor.directory = known
    executor.inspector = Inspector(executor.policy, provenance=settings.inspector_provenance,
                                   known=Acquainted(known, FactStore(redis, settings.workspace)))
    executor.sleep = lambda seconds: None
    # a replayed approval is carried on by the replay itself, never by a worker
    agent.enqueue = lambda func, payload, job_id: None
    return agent


def _wipe(redis: Redis, scratch: str) -> None:
    batch: list[bytes] = []
    for key in redis.scan_iter(match=Keys(scratch)("*"), count=1_000):
        batch.append(key)
        if len(batch) >= 500:
            redis.unlink(*batch)
            batch.clear()
    if batch:
        redis.unlink(*batch)
