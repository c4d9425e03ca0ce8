"""Trying a model call again, on the record: after a timeout, a lost connection, 429 or a server error the call is
made again (OPENAI_MAX_RETRIES times at most, each after a longer wait), and every timeout and every retry is an
event in the run's trace, so a slow local model is seen being slow rather than retried in secret."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from agents.budget import Charge, current_charge
from agents.llm import Completion, Llm, LlmTimeout, LlmUnavailable, Progress, ToolSpec
from memory.events import EventLog


def _passing(err: BaseException) -> bool:
    return isinstance(err, LlmUnavailable) and err.retryable


@dataclass(eq=False)
class RetryingLlm:
    """Wraps the model client (which tries once): retries with backoff, each timeout and retry an event."""

    inner: Llm
    events: EventLog
    retries: int = 1
    # the first wait before trying again; later ones about double (with jitter), up to max_wait_s
    wait_s: float = 1.0
    max_wait_s: float = 10.0
    # how long one try may take (OPENAI_TIMEOUT_S): a retry that could not end before the job's deadline is skipped
    timeout_s: float | None = None
    clock: Callable[[], float] = time.time

    def complete(
        self, messages: list[dict[str, Any]], tools: list[ToolSpec] | None = None, model: str | None = None, purpose: str = "",
        *, max_tokens: int | None = None, tool_choice: str | None = None, on_delta: Progress | None = None,
    ) -> Completion:
        charge = current_charge()
        tries = 0

        def once() -> Completion:
            nonlocal tries
            tries += 1
            try:
                return self.inner.complete(messages, tools=tools, model=model, purpose=purpose, max_tokens=max_tokens,
                                           tool_choice=tool_choice, on_delta=on_delta)
            except LlmTimeout as err:
                self._record(charge, "llm.timeout", purpose, model, timeout_s=err.timeout_s, attempt=tries)
                raise

        def retrying(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            waited = state.next_action.sleep if state.next_action is not None else 0.0
            self._record(charge, "llm.retry", purpose, model, attempt=state.attempt_number + 1,
                         error=str(error)[:200], waited_s=round(waited, 2))

        policy = Retrying(stop=stop_after_attempt(self.retries + 1) | self._out_of_time(charge, purpose, model),
                          retry=retry_if_exception(_passing),
                          wait=wait_exponential_jitter(multiplier=self.wait_s, max=self.max_wait_s, jitter=self.wait_s / 2),
                          before_sleep=retrying, reraise=True)
        try:
            return policy(once)
        except LlmTimeout as err:
            if tries < 2:
                raise
            raise LlmTimeout(err.timeout_s, tries) from err
        except LlmUnavailable as err:
            if tries < 2:
                raise
            raise LlmUnavailable(f"{err}, tried {tries} times", retryable=err.retryable) from err

    def _out_of_time(self, charge: Charge, purpose: str, model: str | None) -> Callable[[RetryCallState], bool]:
        """Stop, on the record, when the next try could not finish before the job is stopped (JOB_TIMEOUT_S): a
        job killed mid-call would be run again from the start, calls and all."""

        def stop(state: RetryCallState) -> bool:
            if charge.deadline is None or self.timeout_s is None or state.attempt_number > self.retries:
                return False
            left = charge.deadline - self.clock()
            if left >= state.upcoming_sleep + self.timeout_s:
                return False
            self._record(charge, "llm.retry_skipped", purpose, model, attempt=state.attempt_number + 1,
                         reason="the job would be stopped first (JOB_TIMEOUT_S)", left_s=round(max(left, 0.0), 1))
            return True

        return stop

    def _record(self, charge: Charge, kind: str, purpose: str, model: str | None, **data: Any) -> None:
        self.events.record(charge.run_id, kind, actor="model", project=charge.project, purpose=purpose, model=model or "", **data)
