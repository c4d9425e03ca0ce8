"""Model calls on the record: `RecordingLlm` keeps each call made while a run is planned; `RecordedLlm` answers a
replay from that record, and says so when the planner now asks something the record does not have."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from agents.llm import Completion, Llm, Progress, ToolSpec
from agents.recording import ModelCall, heard, tools_digest
from memory.redaction import Redactor


@dataclass(eq=False)
class RecordingLlm:
    """Wraps the model client: each answered call is kept, with its request, by the recording under way (if any)."""

    inner: Llm

    def complete(
        self, messages: list[dict[str, Any]], tools: list[ToolSpec] | None = None, model: str | None = None, purpose: str = "",
        *, max_tokens: int | None = None, tool_choice: str | None = None, on_delta: Progress | None = None,
    ) -> Completion:
        completion = self.inner.complete(messages, tools=tools, model=model, purpose=purpose, max_tokens=max_tokens,
                                         tool_choice=tool_choice, on_delta=on_delta)
        heard(ModelCall(purpose=purpose, model=model or "", messages=[dict(m) for m in messages],
                        tools=[t.name for t in tools or []], tools_digest=tools_digest(tools), answer=completion))
        return completion


class ModelDiverged(Exception):
    """The planner asked the model for something the record has no answer to."""

    def __init__(self, call: int, purpose: str, why: str) -> None:
        super().__init__(why)
        # 1-based, as the operator counts
        self.call = call
        self.purpose = purpose
        self.why = why


class RecordedLlm:
    """Answers each call with the recorded answer to the same request, in order; never calls a model."""

    def __init__(self, calls: Sequence[ModelCall], redactor: Redactor) -> None:
        self.calls = list(calls)
        self.redactor = redactor
        self.used = 0

    def complete(
        self, messages: list[dict[str, Any]], tools: list[ToolSpec] | None = None, model: str | None = None, purpose: str = "",
        *, max_tokens: int | None = None, tool_choice: str | None = None, on_delta: Progress | None = None,
    ) -> Completion:
        n = self.used + 1
        if self.used >= len(self.calls):
            raise ModelDiverged(n, purpose, f"the planner now makes a model call the record does not have "
                                            f"(it has {len(self.calls)})")
        # the record was masked before it was stored: the request is compared as it would have been stored
        asked = ModelCall(purpose=purpose, model=model or "", messages=self.redactor.value(messages),
                          tools=[t.name for t in tools or []], tools_digest=tools_digest(tools), answer=Completion())
        why = difference(self.calls[self.used], asked)
        if why:
            raise ModelDiverged(n, purpose, f"the planner now asks the model something else: {why}")
        self.used += 1
        return self.calls[n - 1].answer


def difference(recorded: ModelCall, asked: ModelCall) -> str:
    """How a request differs from the recorded one, in a few words ("" when it is the same request)."""
    if recorded.purpose != asked.purpose:
        return f"a '{asked.purpose}' call where the record has '{recorded.purpose}'"
    if recorded.tools != asked.tools:
        gained = sorted(set(asked.tools) - set(recorded.tools))
        lost = sorted(set(recorded.tools) - set(asked.tools))
        return "the tools offered changed" + "".join(
            f"; {word} {', '.join(names)}" for word, names in (("now also", gained), ("no longer", lost)) if names)
    if recorded.tools_digest != asked.tools_digest:
        return "a tool's description or arguments changed"
    for n, (was, now) in enumerate(zip(recorded.messages, asked.messages), 1):
        if _same(was) != _same(now):
            return f"message {n} ({now.get('role', '?')}) differs"
    if len(recorded.messages) != len(asked.messages):
        return f"{len(asked.messages)} messages where the record has {len(recorded.messages)}"
    return ""


def _same(message: dict[str, Any]) -> str:
    return json.dumps(message, sort_keys=True, ensure_ascii=False, default=str)
