"""Calling a capability safely: validate → claim the idempotency key → breaker → retry → record.

Events are recorded by the caller (the agents executor), which knows the run and the trace."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, ValidationError
from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from integrations.breaker import CircuitBreaker, CircuitOpen
from integrations.capability import Capability, CapabilityError, EffectContext, PermanentError, TransientError
from integrations.ledger import Claim, EffectLedger


class InvalidInput(PermanentError):
    """The arguments do not fit the capability's input model."""


class EffectInProgress(TransientError):
    """Another worker holds this step's key right now; the job will come back to it."""


class EffectInDoubt(PermanentError):
    """A worker died between acting and recording, and the target cannot dedupe: a person must check."""


@dataclass(frozen=True)
class Invocation:
    output: BaseModel
    # True when the ledger already had the result (a retried step): nothing was done again
    replayed: bool
    attempts: int
    ms: float
    # True when an expired lease was taken over and the target's own dedupe was relied on
    took_over: bool = False


def call(
    capability: Capability,
    args: BaseModel | dict[str, object],
    ctx: EffectContext,
    ledger: EffectLedger,
    breaker: CircuitBreaker,
    sleep: Callable[[float], None] = time.sleep,
    record_in: Any = None,
) -> Invocation:
    """Run one capability call at most once per idempotency key, with retries and a breaker.

    `record_in`: a caller's Redis transaction that the ledger record joins (with the step's checkpoint, so
    both land together); the caller executes it right after. Without it the record is written here."""
    started = time.perf_counter()
    try:
        data = capability.parse(args)
    except ValidationError as err:
        raise InvalidInput(f"{capability.name}: {_validation_summary(err)}") from err

    claim: Claim | None = None
    took_over = False
    if capability.side_effect:
        claim = ledger.claim(ctx.idempotency_key)
        if claim.state == "done":
            output = capability.output_model.model_validate_json(claim.result or "{}")
            return Invocation(output, replayed=True, attempts=0, ms=_ms(started))
        took_over = _may_act(capability, ctx, claim)
    try:
        output, attempts = _run(capability, data, ctx, breaker, sleep)
    except RetryError as err:  # only without reraise; kept for clarity of intent
        _give_back(ledger, claim)
        raise TransientError(str(err)) from err
    except (CapabilityError, *capability.retry.retry_on):
        # the target refused or never answered: the effect did not happen, so a later try may act
        _give_back(ledger, claim)
        raise
    # anything else (a bug after the effect?) keeps the claim: its lease lapses into "stale",
    # which only a target that dedupes by our key may act on again
    if claim is not None:
        ledger.record(ctx.idempotency_key, output.model_dump_json(), pipe=record_in)
    return Invocation(output, replayed=False, attempts=attempts, ms=_ms(started), took_over=took_over)


def _may_act(capability: Capability, ctx: EffectContext, claim: Claim) -> bool:
    """Whether this worker may act on a claim that is not done; True when it takes over an expired lease."""
    if claim.state == "in_progress":
        raise EffectInProgress(f"{capability.name} for {ctx.idempotency_key} is being carried out by another worker")
    if claim.state != "stale":
        return False
    if capability.idempotency != "natural":
        raise EffectInDoubt(
            f"{capability.name} may or may not have happened (a worker stopped mid-way) and the target cannot "
            "tell duplicates apart. Check it by hand, then ask me again if it did not happen."
        )
    return True


def _run(capability: Capability, data: BaseModel, ctx: EffectContext, breaker: CircuitBreaker,
         sleep: Callable[[float], None]) -> tuple[BaseModel, int]:
    """The connector call under the breaker, retried by the capability's policy: its output and the attempts made."""
    attempts = 0

    def attempt() -> BaseModel:
        nonlocal attempts
        attempts += 1
        breaker.allow()
        try:
            result = capability.run(data, ctx)
        except PermanentError:
            # the target answered clearly: the connector works, this request does not
            breaker.success()
            raise
        except Exception:
            # anything but a clear answer from the target counts against the connector: a retryable
            # failure, and a call cut short from outside (the job's timeout firing while the target hangs)
            breaker.failure()
            raise
        breaker.success()
        return capability.output_model.model_validate(result.model_dump() if isinstance(result, BaseModel) else result)

    policy = capability.retry
    retrying = Retrying(
        stop=stop_after_attempt(max(1, policy.attempts)),
        wait=wait_exponential_jitter(multiplier=policy.base_s, max=policy.max_s, jitter=policy.jitter),
        retry=retry_if_exception(lambda e: isinstance(e, policy.retry_on) and not isinstance(e, CircuitOpen)),
        sleep=sleep,
        reraise=True,
    )
    return retrying(attempt), attempts


def invoke(
    capability: Capability,
    args: BaseModel | dict[str, object],
    ctx: EffectContext,
    ledger: EffectLedger,
    breaker: CircuitBreaker,
) -> BaseModel:
    """The capability's output; see call() for the details (replayed, attempts, duration)."""
    return call(capability, args, ctx, ledger, breaker).output


def _give_back(ledger: EffectLedger, claim: Claim | None) -> None:
    if claim is not None:
        ledger.release(claim)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _validation_summary(err: ValidationError) -> str:
    parts = [f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in err.errors()[:5]]
    return "; ".join(parts)


__all__ = ["CapabilityError", "EffectInDoubt", "EffectInProgress", "InvalidInput", "Invocation", "call", "invoke"]
