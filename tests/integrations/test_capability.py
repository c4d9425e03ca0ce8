"""invoke(): validate, claim, breaker, retry with backoff, record — each effect at most once per key."""
from __future__ import annotations

import pytest
from pydantic import BaseModel

from integrations.breaker import CircuitBreaker, CircuitOpen
from integrations.capability import Capability, EffectContext, PermanentError, RetryPolicy, RiskClass, TransientError
from integrations.invoke import EffectInDoubt, EffectInProgress, InvalidInput, call, invoke
from integrations.ledger import EffectLedger
from tests.waiting import redis_now, wait_past


class Ping(BaseModel):
    to: str


class Pong(BaseModel):
    delivered: int


def counting(redis, name: str = "ping.send", idempotency: str = "ledger", failures: list[Exception] | None = None,
             attempts: int = 3) -> Capability:
    """A capability whose effect is an INCR in Redis; it raises the scripted failures first."""
    script = list(failures or [])

    def run(args: BaseModel, ctx: EffectContext) -> Pong:
        if script:
            raise script.pop(0)
        return Pong(delivered=int(redis.incr(f"effects:{name}")))

    return Capability(name, "test effect", Ping, Pong, RiskClass.EXTERNAL_WRITE, side_effect=True, reversible=False,
                      compensation=None, idempotency=idempotency, retry=RetryPolicy(attempts=attempts, base_s=0.5, max_s=4, jitter=0.1),
                      run=run)  # type: ignore[arg-type]


def effects(redis, name: str = "ping.send") -> int:
    return int(redis.get(f"effects:{name}") or 0)


def ctx(key: str = "run:0") -> EffectContext:
    return EffectContext(idempotency_key=key, workspace="ws", trace_id="t", run_id="run")


def test_second_call_with_the_same_key_returns_the_recorded_result(redis):
    cap, ledger, breaker = counting(redis), EffectLedger(redis, "ws"), CircuitBreaker(redis, "ping")
    first = call(cap, {"to": "a@b.c"}, ctx(), ledger, breaker)
    again = call(cap, {"to": "a@b.c"}, ctx(), ledger, breaker)
    assert first.output == again.output == Pong(delivered=1)
    assert (first.replayed, again.replayed) == (False, True)
    assert effects(redis) == 1
    invoke(cap, {"to": "a@b.c"}, ctx("run:1"), ledger, breaker)
    assert effects(redis) == 2


def test_transient_failures_are_retried_with_growing_waits(redis):
    cap = counting(redis, failures=[TransientError("503"), TransientError("503")])
    waits: list[float] = []
    result = call(cap, {"to": "a@b.c"}, ctx(), EffectLedger(redis, "ws"), CircuitBreaker(redis, "ping"), sleep=waits.append)
    assert result.attempts == 3 and effects(redis) == 1
    assert len(waits) == 2 and 0.5 <= waits[0] <= 0.6 and 1.0 <= waits[1] <= 1.1


def test_exhausted_retries_give_the_key_back_and_a_later_job_can_act(redis):
    ledger = EffectLedger(redis, "ws")
    cap = counting(redis, failures=[TransientError("503")] * 3)
    with pytest.raises(TransientError):
        call(cap, {"to": "a@b.c"}, ctx(), ledger, CircuitBreaker(redis, "ping"), sleep=lambda s: None)
    assert effects(redis) == 0
    assert call(cap, {"to": "a@b.c"}, ctx(), ledger, CircuitBreaker(redis, "ping"), sleep=lambda s: None).output.delivered == 1


def test_permanent_errors_are_not_retried(redis):
    cap = counting(redis, failures=[PermanentError("550 no such user")])
    waits: list[float] = []
    with pytest.raises(PermanentError, match="550"):
        call(cap, {"to": "a@b.c"}, ctx(), EffectLedger(redis, "ws"), CircuitBreaker(redis, "ping"), sleep=waits.append)
    assert waits == [] and effects(redis) == 0


def test_invalid_input_is_refused_before_anything_is_claimed(redis):
    ledger = EffectLedger(redis, "ws")
    with pytest.raises(InvalidInput, match="to"):
        call(counting(redis), {"recipient": "x"}, ctx(), ledger, CircuitBreaker(redis, "ping"))
    assert ledger.claim("run:0").state == "new"


def test_breaker_opens_and_then_fails_fast_without_calling_the_target(redis):
    breaker = CircuitBreaker(redis, "ping", failure_threshold=3, cooldown_s=60)
    cap = counting(redis, failures=[TransientError("503")] * 10, attempts=3)
    with pytest.raises(TransientError):
        call(cap, {"to": "a@b.c"}, ctx("r:0"), EffectLedger(redis, "ws"), breaker, sleep=lambda s: None)
    assert breaker.status().state == "open"
    with pytest.raises(CircuitOpen):
        call(cap, {"to": "a@b.c"}, ctx("r:1"), EffectLedger(redis, "ws"), breaker, sleep=lambda s: None)
    assert effects(redis) == 0


def test_a_live_claim_elsewhere_means_try_later(redis):
    ledger = EffectLedger(redis, "ws")
    ledger.claim("run:0")  # another worker is acting
    with pytest.raises(EffectInProgress):
        call(counting(redis), {"to": "a@b.c"}, ctx(), ledger, CircuitBreaker(redis, "ping"))
    assert effects(redis) == 0


def test_stale_claim_is_retaken_only_when_the_target_dedupes(redis):
    ledger = EffectLedger(redis, "ws", lease_s=0.05)
    ledger.claim("run:0")
    ledger.claim("run:1")
    # both workers died between the effect and the record; their leases lapse
    wait_past(redis, redis_now(redis) + 0.05)
    with pytest.raises(EffectInDoubt, match="Check it by hand"):
        call(counting(redis, idempotency="ledger"), {"to": "a@b.c"}, ctx("run:0"), ledger, CircuitBreaker(redis, "ping"))
    natural = call(counting(redis, idempotency="natural"), {"to": "a@b.c"}, ctx("run:1"), ledger, CircuitBreaker(redis, "ping"))
    assert natural.took_over and natural.output.delivered == 1


def test_read_only_capabilities_skip_the_ledger(redis):
    def run(args: BaseModel, c: EffectContext) -> Pong:
        return Pong(delivered=int(redis.incr("reads")))

    reader = Capability("ping.read", "read", Ping, Pong, RiskClass.READ, side_effect=False, reversible=True, compensation=None,
                        idempotency="ledger", retry=RetryPolicy(), run=run)  # type: ignore[arg-type]
    ledger = EffectLedger(redis, "ws")
    assert invoke(reader, {"to": "x"}, ctx(), ledger, CircuitBreaker(redis, "r")).delivered == 1
    assert invoke(reader, {"to": "x"}, ctx(), ledger, CircuitBreaker(redis, "r")).delivered == 2


class CutShort(Exception):
    """What a job timeout raises inside a call that hangs (rq's JobTimeoutException is a plain Exception)."""


def test_calls_cut_short_by_a_hanging_target_open_the_breaker_and_keep_the_claim(redis):
    breaker = CircuitBreaker(redis, "ping", failure_threshold=3, cooldown_s=60)
    ledger = EffectLedger(redis, "ws")
    cap = counting(redis, failures=[CutShort("job timeout")] * 3)
    for i in range(3):
        with pytest.raises(CutShort):
            call(cap, {"to": "a@b.c"}, ctx(f"r:{i}"), ledger, breaker, sleep=lambda s: None)
    # the target never answered: later calls fail fast instead of hanging a worker each
    assert breaker.status().state == "open"
    with pytest.raises(CircuitOpen):
        call(cap, {"to": "a@b.c"}, ctx("r:3"), ledger, breaker, sleep=lambda s: None)
    # a hung call may have taken effect: its key stays claimed, never handed back for a blind retry
    assert ledger.claim("r:0").state == "in_progress"
    assert effects(redis) == 0
