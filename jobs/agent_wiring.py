"""Builds the agent a worker uses: capabilities from settings, policy, stores, planner, executor."""
from __future__ import annotations

from typing import Any

from redis import Redis

from agents.agent import Agent
from agents.approvals import ApprovalStore
from agents.executor import Executor
from agents.llm import Llm
from agents.planner import Planner
from agents.playbooks import load_playbooks
from agents.policy import Policy, load_policy
from agents.run_store import RunStore
from kernel.settings import Settings
from integrations.breaker import Breakers
from integrations.capability import Capability
from integrations.internal import ContactBook
from integrations.ledger import EffectLedger
from integrations.registry import IntegrationsConfig, WebhookTarget, build_capabilities
from jobs.queues import INTERACTIVE, JobQueues
from memory.events import EventLog
from kernel import job_names



def integrations_config(settings: Settings) -> IntegrationsConfig:
    return IntegrationsConfig(
        workspace=settings.workspace,
        smtp_host=settings.smtp_host, smtp_port=settings.smtp_port, smtp_security=settings.smtp_security,  # type: ignore[arg-type]
        smtp_username=settings.smtp_username, smtp_password=settings.smtp_password, smtp_from=settings.smtp_from,
        smtp_from_name=settings.smtp_from_name, smtp_ca_file=settings.smtp_ca_file, smtp_timeout_s=settings.smtp_timeout_s,
        imap_host=settings.imap_host, imap_port=settings.imap_port, imap_security=settings.imap_security,  # type: ignore[arg-type]
        imap_username=settings.imap_username, imap_password=settings.imap_password, imap_folder=settings.imap_folder,
        imap_ca_file=settings.imap_ca_file,
        caldav_url=settings.caldav_url, caldav_username=settings.caldav_username, caldav_password=settings.caldav_password,
        caldav_calendar=settings.caldav_calendar, timezone=settings.timezone,
        webhooks={name: WebhookTarget(url=t.url, secret=t.secret) for name, t in settings.outbound_webhooks.items()},
    )


def policy_for(settings: Settings) -> Policy:
    policy = load_policy(settings.policy_file)
    update: dict[str, Any] = {}
    if settings.approval_ttl_s:
        update["approval_ttl_s"] = settings.approval_ttl_s
    if settings.approvers.strip():
        update["approvers"] = tuple(p.strip() for p in settings.approvers.split(",") if p.strip())
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
    caps = capabilities if capabilities is not None else build_capabilities(integrations_config(settings), redis)
    policy = policy_for(settings)
    events = EventLog(redis, ws)
    runs = RunStore(redis, ws)
    approvals = ApprovalStore(redis, ws)
    executor = Executor(
        caps, policy, runs, approvals, EffectLedger(redis, ws, lease_s=settings.effect_lease_s),
        Breakers(redis, ws, settings.breaker_failures, settings.breaker_cooldown_s), events,
        deciders=approvers_for(settings, policy), directory=ContactBook(redis, ws),
    )

    def enqueue(func: str, payload: dict[str, Any], job_id: str) -> None:
        queues.enqueue(func, payload, job_id=job_id, queue=INTERACTIVE, on_failure=job_names.REPORT_FAILURE)

    return Agent(planner=Planner(load_playbooks(), caps, llm), executor=executor, runs=runs, approvals=approvals,
                 events=events, enqueue=enqueue, workspace=ws)
