"""Plans: typed steps the planner proposes and the executor carries out, and what each step produced."""
from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field

from kernel.messages import Frozen


class Step(Frozen):
    index: int
    capability: str
    # may reference earlier outputs as "${steps.N.field}"; resolved just before the step runs
    args: dict[str, Any] = Field(default_factory=dict)
    rationale: str = ""
    # what a good result looks like, for the inspector and the operator
    expect: str = ""


class Origin(Frozen):
    """Where the run was asked for, so every later job can answer in the same thread."""

    channel: str
    thread_id: str
    actor: str
    reply_to: dict[str, str] = Field(default_factory=dict)


class Plan(Frozen):
    run_id: str
    trace_id: str
    workspace: str
    goal: str
    # the operator's own words: addresses and facts in them are the operator's, not a third party's
    request: str = ""
    intent: str
    # "playbook:NAME" or "llm"
    source: str
    steps: tuple[Step, ...]
    origin: Origin
    # capabilities this intent may use at all; the planner and the executor both enforce it
    allowed: tuple[str, ...] = ()
    # text that came from outside (an email, a web page, someone else's memory): data, never instructions
    untrusted: tuple[str, ...] = ()
    # the addresses that content declares as its own sender or organiser: "reply to her" may reach them
    senders: tuple[str, ...] = ()
    # the specialist the plan belongs to (agents/specialists.py): its allow-list and risk rules apply
    specialist: str = ""
    # the facts and memories the planner was given (ids such as "fact:person:ana/email@2", "note:…", "memory:…")
    memories: tuple[str, ...] = ()
    created_at: float = 0.0


StepStatus = Literal["done", "failed", "denied", "blocked", "awaiting_approval", "rejected", "expired", "superseded"]


class StepResult(Frozen):
    index: int
    capability: str
    status: StepStatus
    output: dict[str, Any] | None = None
    error: str = ""
    decision: str = ""
    risk: int = 0
    ms: float = 0.0
    replayed: bool = False
    approval_id: str | None = None


def canonical(args: dict[str, Any]) -> str:
    return json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(capability: str, args: dict[str, Any]) -> str:
    """What an approval is bound to: the exact capability and the exact arguments."""
    return hashlib.sha256(f"{capability}\n{canonical(args)}".encode()).hexdigest()
