"""Builds the agent a worker uses: capabilities from settings, policy, stores, planner, executor."""
from __future__ import annotations

from typing import Any

from redis import Redis

from agents.agent import Agent
from agents.approvals import ApprovalStore
from agents.executor import Executor
from agents.inspector import Inspector
from agents.llm import Llm
from agents.planner import Planner
from agents.playbooks import load_playbooks
from agents.policy import Policy, load_policy
from agents.provenance import Acquainted
from agents.recording import Recordings
from agents.run_store import RunStore
from kernel.settings import Settings
from integrations.breaker import Breakers
from integrations.capability import Capability
from integrations.internal import ContactBook
from integrations.ledger import EffectLedger
from integrations.registry import build_capabilities
from jobs.queues import INTERACTIVE, JobQueues
from memory.events import EventLog
from memory.redaction import secret_values
from memory.facts import FactStore
from memory.undo_log import UndoLog
from kernel import job_names



def policy_for(settings: Settings) -> Policy:
    policy = load_policy(settings.policy.file)
    update: dict[str, Any] = {}
    if settings.policy.approval_ttl_s:
        update["approval_ttl_s"] = settings.policy.approval_ttl_s
    if settings.policy.approvers:
        update["approvers"] = tuple(settings.policy.approvers)
    return policy.model_copy(update=update) if update else policy


def approvers_for(settings: Settings, policy: Policy | None = None) -> tuple[str, ...]:
    """Who may decide approvals, approve more spend and set a budget: APPROVERS (or the policy's
    approvers) when set, else the operators of every channel a person speaks on."""
    policy = policy or policy_for(settings)
    if policy.approvers:
        return policy.approvers
    operators = {user for channel in ("console", "slack", "telegram") for user in settings.operators(channel)}
    return tuple(sorted(operators)) or ("operator",)


def build_agent(
    settings: Settings, redis: Redis, llm: Llm | None, queues: JobQueues, capabilities: dict[str, Capability] | None = None
) -> Agent:
    ws = settings.workspace
    caps = capabilities if capabilities is not None else build_capabilities(settings, redis)
    policy = policy_for(settings)
    events = EventLog(redis, ws, secrets=secret_values(settings))
    runs = RunStore(redis, ws)
    approvals = ApprovalStore(redis, ws)
    executor = Executor(
        caps, policy, runs, approvals, EffectLedger(redis, ws, lease_s=settings.effects.lease_s),
        Breakers(redis, ws, settings.effects.breaker_failures, settings.effects.breaker_cooldown_s), events,
        deciders=approvers_for(settings, policy), directory=ContactBook(redis, ws), undo_window_s=settings.undo.window_s,
    )
    known = Acquainted(ContactBook(redis, ws), FactStore(redis, ws))
    executor.inspector = Inspector(policy, provenance=settings.inspector_provenance, known=known)

    def enqueue(func: str, payload: dict[str, Any], job_id: str) -> None:
        queues.enqueue(func, payload, job_id=job_id, queue=INTERACTIVE, on_failure=job_names.REPORT_FAILURE)

    return Agent(planner=Planner(load_playbooks(), caps, llm), executor=executor, runs=runs, approvals=approvals,
                 events=events, enqueue=enqueue, workspace=ws, undo=UndoLog(redis, ws), undo_window_s=settings.undo.window_s,
                 recordings=Recordings(redis, ws, secrets=secret_values(settings)))
