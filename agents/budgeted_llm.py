"""Every model call priced before it is made: `BudgetedLlm` wraps any Llm with the project's caps
(agents/budget.py) and the ladder: cheaper model, tomorrow, or an "approve more spend" card. It also picks the
model for the kind of task (the call's purpose: intent, slots, plan, draft, digest, ask; LLM_MODELS) and bounds its
answer: the max_tokens sent is the completion the budget holds, so what a call spends never passes its hold."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from agents.budget import Budgets, Charge, Hold, OverBudget, current_charge
from agents.costs import OTHER, PriceTable, Spend, money
from agents.llm import Completion, Llm, Progress, ToolSpec
from kernel.messages import Outcome
from agents.spend_card import spend_card
from memory.events import EventLog


def estimate_prompt_tokens(messages: list[dict[str, Any]], tools: list[ToolSpec] | None) -> int:
    """About 4 characters a token for English and JSON, plus the chat format's per-message overhead;
    it errs high, which only makes the check stricter."""
    chars = sum(len(json.dumps(m, ensure_ascii=False)) for m in messages)
    chars += sum(len(t.model_dump_json()) for t in tools or [])
    return chars // 3 + 4 * len(messages) + 3


@dataclass(eq=False)
class BudgetedLlm:
    """Wraps any Llm: prices each call before it is made, refuses or degrades over a cap, records usage."""

    inner: Llm
    budgets: Budgets
    prices: PriceTable
    events: EventLog
    model: str
    cheap_model: str | None = None
    # max_tokens of a call whose kind `limits` does not list
    max_completion_tokens: int = 1024
    # the model per kind of task (purpose); a kind not listed goes to `model`
    tiers: Mapping[str, str] = field(default_factory=dict)
    # max_tokens per kind of task: sent with the call, and the completion its estimate holds
    limits: Mapping[str, int] = field(default_factory=dict)

    def complete(
        self, messages: list[dict[str, Any]], tools: list[ToolSpec] | None = None, model: str | None = None, purpose: str = "",
        *, max_tokens: int | None = None, tool_choice: str | None = None, on_delta: Progress | None = None,
    ) -> Completion:
        charge = current_charge()
        wanted = model or self.tiers.get(purpose) or self.model
        bound = max_tokens or self.limits.get(purpose) or self.max_completion_tokens
        prompt = estimate_prompt_tokens(messages, tools)
        chosen, hold, refusal = wanted, None, None
        for candidate in dict.fromkeys(m for m in (wanted, self.cheap_model) if m):
            estimate = self.prices.cost(candidate, prompt, bound)
            result = self.budgets.reserve(charge.project, estimate)
            if isinstance(result, Hold):
                chosen, hold = candidate, result
                break
            refusal = refusal or (candidate, estimate, *result)
        if hold is None:
            assert refusal is not None
            raise self._over(charge, *refusal, purpose=purpose)
        if chosen != wanted:
            self.events.record(charge.run_id, "budget.degraded", actor="budget", project=charge.project,
                               wanted=wanted, used=chosen, purpose=purpose)
        try:
            completion = self.inner.complete(messages, tools=tools, model=chosen, purpose=purpose, max_tokens=bound,
                                             tool_choice=tool_choice, on_delta=on_delta)
        except BaseException:
            self.budgets.settle(hold, None)
            raise
        usage = completion.usage
        if usage.counted:  # a stream without usage: its pieces were counted, the prompt is our (high) estimate
            usage = usage.model_copy(update={"prompt_tokens": usage.prompt_tokens or prompt})
        cost = self.prices.cost(completion.model or chosen, usage.prompt_tokens, usage.completion_tokens)
        spend = Spend(run_id=charge.run_id, project=charge.project, model=completion.model or chosen,
                      prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, cost=cost,
                      day=self.budgets.ledger.today().isoformat(), kind=purpose or OTHER,
                      unpriced=self.prices.unpriced(completion.model or chosen))
        self.budgets.settle(hold, spend)
        self.events.record(charge.run_id, "llm.call", actor="budget", project=charge.project, model=spend.model,
                           purpose=purpose, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                           cost_usd=cost / 1_000_000, estimate_prompt_tokens=prompt, max_tokens=bound,
                           finish_reason=completion.finish_reason, **({"usage": "counted"} if usage.counted else {}))
        return completion

    def _over(self, charge: Charge, model: str, estimate: int, scope: str, spent: int, cap: int, purpose: str) -> OverBudget:
        self.events.record(charge.run_id, "budget.refused", actor="budget", project=charge.project, model=model,
                           scope=scope, estimate_usd=estimate / 1_000_000, spent_usd=spent / 1_000_000,
                           cap_usd=cap / 1_000_000, purpose=purpose)
        scheduler = self.budgets.scheduler
        if charge.when_over == "defer" and charge.resume_func and scheduler is not None:
            at = self.budgets.tomorrow()
            job_id = hashlib.sha256(f"defer:{charge.run_id}:{at.date()}".encode()).hexdigest()[:16]
            scheduler.run_at(charge.resume_func, {**charge.resume_payload, "trace_id": job_id, "resumes": charge.run_id}, job_id, at)
            self.events.record(charge.run_id, "budget.deferred", actor="budget", project=charge.project, until=at.isoformat())
            text = (f"'{charge.project}' has reached its {scope} budget ({money(spent)} of {money(cap)}), "
                    f"so I will do this tomorrow at {at:%H:%M}.")
            return OverBudget(charge.project, Outcome(text=text))
        request = self.budgets.ask(charge, model, estimate, scope, spent, cap)
        text = (f"That needs a model call that would pass '{charge.project}''s {scope} budget "
                f"({money(spent)} of {money(cap)} spent). Nothing was spent; approve more if you want it done.")
        return OverBudget(charge.project, Outcome(text=text, card=spend_card(request)), request)
