"""`deputy check`'s report on the model endpoint: the models it lists, and whether it answers with a tool call.

The probe is one tiny call, with a trivial tool named in tool_choice and a few tokens at most, made through the
budgeted model like every other call (priced first, recorded in the trace it names)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from agents.budget import Charge, OverBudget, charge_to
from agents.llm import Llm, LlmUnavailable, ToolSpec

PROBE = ToolSpec(name="ping", description="Answer Deputy's check.",
                 parameters={"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]})
PROBE_MESSAGES = [{"role": "user", "content": "Call the ping tool with ok set to true."}]
PROBE_MAX_TOKENS = 32


@dataclass(frozen=True)
class EndpointReport:
    """What the endpoint at `base_url` answered; `tool_calls` is None where the probe got no answer."""

    base_url: str
    model: str
    models: tuple[str, ...] = ()
    models_error: str = ""
    tool_calls: bool | None = None
    latency_s: float = 0.0
    probe_error: str = ""
    trace_id: str = ""

    @property
    def ok(self) -> bool:
        return not self.models_error and not self.probe_error

    def lines(self) -> list[str]:
        listed = ", ".join(self.models) or "none"
        lines = [f"{'ok  ' if not self.models_error else 'FAIL'} {'model endpoint':<18} {self.base_url}: "
                 + (f"lists {listed}" if not self.models_error else f"GET /models failed ({self.models_error})")]
        if self.probe_error:
            lines.append(f"FAIL {'tool calls':<18} no answer from {self.model} ({self.probe_error})")
        else:
            said = ("yes" if self.tool_calls else
                    "no — it answered in words, so /do will not find plans (try another model, or a chat format with "
                    "function calling)")
            lines.append(f"ok   {'tool calls':<18} {said}; {self.model} answered in {self.latency_s:.1f} s "
                         f"(deputy trace {self.trace_id})")
        return lines

    def as_json(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "model": self.model, "models": list(self.models), "models_error": self.models_error,
                "tool_calls": self.tool_calls, "latency_s": round(self.latency_s, 3), "probe_error": self.probe_error,
                "trace_id": self.trace_id, "ok": self.ok}


def listed_models(base_url: str, api_key: str | None, timeout_s: float) -> tuple[tuple[str, ...], str]:
    """The ids GET /models lists, or the reason there are none."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=0)
    try:
        return tuple(m.id for m in client.models.list()), ""
    except openai.OpenAIError as err:
        return (), f"{type(err).__name__}: {err}"[:200]
    finally:
        client.close()


def check_endpoint(llm: Llm, base_url: str, model: str, api_key: str | None, timeout_s: float) -> EndpointReport:
    """The endpoint's model list and one tool-call probe of `model`; `llm` is bounded by `timeout_s` already."""
    models, models_error = listed_models(base_url, api_key, timeout_s)
    trace_id = f"check-{int(time.time())}"
    started = time.monotonic()
    try:
        with charge_to(Charge(run_id=trace_id)):
            answer = llm.complete(list(PROBE_MESSAGES), tools=[PROBE], model=model, purpose="check",
                                  max_tokens=PROBE_MAX_TOKENS, tool_choice=PROBE.name)
    except (LlmUnavailable, OverBudget) as err:
        return EndpointReport(base_url, model, models, models_error, probe_error=str(err)[:200], trace_id=trace_id)
    return EndpointReport(base_url, model, models, models_error, tool_calls=bool(answer.tool_calls),
                          latency_s=time.monotonic() - started, trace_id=trace_id)
