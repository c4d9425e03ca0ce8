"""The circuit breaker: opens after N failures, fails fast, lets one probe through after the cool-down."""
from __future__ import annotations

import pytest

from integrations.breaker import CircuitBreaker, CircuitOpen
from tests.waiting import wait_for


def test_opens_after_consecutive_failures_and_fails_fast(redis):
    breaker = CircuitBreaker(redis, "smtp", failure_threshold=3, cooldown_s=60)
    for _ in range(2):
        breaker.allow()
        assert breaker.failure() is False
    breaker.allow()
    assert breaker.failure() is True
    with pytest.raises(CircuitOpen) as err:
        breaker.allow()
    assert "smtp is failing repeatedly" in str(err.value) and err.value.retry_in_s > 50
    assert breaker.status().state == "open"


def test_success_resets_the_count(redis):
    breaker = CircuitBreaker(redis, "smtp", failure_threshold=3, cooldown_s=60)
    breaker.failure()
    breaker.failure()
    breaker.success()
    breaker.failure()
    breaker.failure()
    breaker.allow()
    assert breaker.status().state == "closed"


def test_half_open_admits_one_probe_whose_outcome_decides(redis):
    breaker = CircuitBreaker(redis, "hook", failure_threshold=1, cooldown_s=0.1)
    breaker.failure()
    with pytest.raises(CircuitOpen):
        breaker.allow()
    # the cool-down runs on Redis's clock, the one every worker shares
    wait_for(lambda: breaker.status().state == "half_open", timeout=5)
    breaker.allow()  # the probe
    with pytest.raises(CircuitOpen):
        breaker.allow()  # everyone else still waits
    breaker.failure()  # probe failed: open again for a full cool-down
    with pytest.raises(CircuitOpen):
        breaker.allow()
    wait_for(lambda: breaker.status().state == "half_open", timeout=5)
    breaker.allow()
    breaker.success()
    breaker.allow()
    breaker.allow()
    assert breaker.status().state == "closed"


def test_state_is_shared_between_instances(redis):
    CircuitBreaker(redis, "cal", failure_threshold=1, cooldown_s=60).failure()
    with pytest.raises(CircuitOpen):
        CircuitBreaker(redis, "cal", failure_threshold=1, cooldown_s=60).allow()
    CircuitBreaker(redis, "other", failure_threshold=1, cooldown_s=60).allow()


def test_the_open_breaker_tells_the_operator_to_ask_again_rather_than_promising_a_retry(redis):
    # a failed step is final: nothing calls the connector again for this request by itself
    breaker = CircuitBreaker(redis, "smtp", failure_threshold=1, cooldown_s=60)
    breaker.failure()
    with pytest.raises(CircuitOpen) as err:
        breaker.allow()
    assert "ask me again in about" in str(err.value) and "I will try" not in str(err.value)
