"""What a run needs to be replayed: the planner's inputs, every model call made while planning (request and
answer), and the plan and findings that came of them.

Written once per run, with secrets masked as in the event log, and kept as long as the trace. What the steps
did (decision, risk, result, the operator's approval) is not copied here: the trace's own events hold it
(step.assessed, step.done, approval.decided). Forgetting reaches a recording like any other copy of a text."""
from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterable, Iterator

from pydantic import BaseModel, Field
from redis import Redis

from agents.llm import Completion, ToolSpec
from agents.plan import Origin, Plan, Step
from agents.recollections import Recollection
from kernel.context import bound
from kernel.keys import WorkspaceStore
from kernel.messages import Intent
from memory.events import TRACE_TTL_S
from memory.redaction import Redactor
from memory.text_match import REDACTED


class ModelCall(BaseModel):
    purpose: str = ""
    # the model asked for ("" for the client's default); the one that answered is answer.model
    model: str = ""
    messages: list[dict[str, Any]]
    tools: list[str] = Field(default_factory=list)
    # the tools' descriptions and argument schemas, as offered
    tools_digest: str = ""
    answer: Completion


class Recording(BaseModel):
    trace_id: str
    run_id: str
    intent: Intent
    origin: Origin
    # the content acted on, and what Deputy recalled about the request (facts, notes, memories)
    untrusted: tuple[str, ...] = ()
    recalled: tuple[Recollection, ...] = ()
    # in the order they were made; an inspector's objection reaches the model in the next call's messages
    calls: list[ModelCall] = Field(default_factory=list)
    # the plan that ran ("playbook:NAME" or "llm") and the specialist it belongs to, or why there was none
    source: str = ""
    specialist: str = ""
    steps: tuple[Step, ...] = ()
    findings: list[str] = Field(default_factory=list)
    problem: str = ""
    recorded_at: float = 0.0

    def ended(self, plan: Plan | None = None, findings: Iterable[str] = (), problem: str = "") -> "Recording":
        """This recording with the planning's outcome: the plan and the inspector's findings on it, or the problem."""
        done: dict[str, Any] = {"findings": list(findings), "problem": problem, "recorded_at": time.time()}
        if plan is not None:
            done |= {"source": plan.source, "specialist": plan.specialist, "steps": plan.steps}
        return self.model_copy(update=done)


def tools_digest(tools: list[ToolSpec] | None) -> str:
    canonical = json.dumps([t.model_dump() for t in tools or []], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# the model calls of the planning under way in this context, if one is being recorded
_heard: ContextVar[list[ModelCall] | None] = ContextVar("deputy_model_calls", default=None)


@contextmanager
def listening(calls: list[ModelCall]) -> Iterator[list[ModelCall]]:
    """Model calls made inside the block through a RecordingLlm are appended to `calls`."""
    with bound(_heard, calls):
        yield calls


def heard(call: ModelCall) -> None:
    calls = _heard.get()
    if calls is not None:
        calls.append(call)


class Recordings(WorkspaceStore):
    """One recording per trace, as long as the trace is kept."""

    def __init__(self, redis: Redis, workspace: str, secrets: Iterable[str] = ()) -> None:
        super().__init__(redis, workspace)
        self.redactor = Redactor(secrets)

    def save(self, recording: Recording, pipe: Any = None) -> None:
        """Store the trace's recording (inside a caller's transaction when given one)."""
        data = self.redactor.value(recording.model_dump(mode="json"))
        (pipe if pipe is not None else self.redis).set(self.keys("replay", recording.trace_id), self.redactor.text(json.dumps(data, ensure_ascii=False)),
                       ex=TRACE_TTL_S)

    def get(self, trace_id: str) -> Recording | None:
        raw = self.redis.get(self.keys("replay", trace_id))
        return Recording.model_validate_json(raw) if raw else None


def forgotten_in(recording: Recording) -> list[str]:
    """Which of the recording's inputs were forgotten since (their text is gone), in the operator's words."""
    parts: list[tuple[str, Any]] = [("the request", recording.intent.text)]
    parts += [(f"the request's {name}", value) for name, value in recording.intent.slots.items()]
    parts += [(f"the content acted on ({n})", text) for n, text in enumerate(recording.untrusted, 1)]
    parts += [(f"what Deputy recalled ({r.id})", r.text) for r in recording.recalled]
    for n, call in enumerate(recording.calls, 1):
        parts += [(f"model request {n}", call.messages), (f"model answer {n}", call.answer.model_dump(mode="json"))]
    parts += [(f"plan step {s.index + 1} ({s.capability})", s.args) for s in recording.steps]
    return list(dict.fromkeys(name for name, value in parts if holds_forgotten(value)))


def holds_forgotten(value: Any) -> bool:
    return REDACTED in json.dumps(value, ensure_ascii=False, default=str)
