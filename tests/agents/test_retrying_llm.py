"""Slow and failing model calls on the record: a timeout or a server error is tried again OPENAI_MAX_RETRIES times
after a wait, each timeout and retry an event in the run's trace, and then the caller is told it failed."""
from __future__ import annotations

import pytest

from agents.budget import Budgets, Caps, Charge, charge_to
from agents.costs import CostLedger
from agents.llm import LlmTimeout, LlmUnavailable, OpenAiLlm
from agents.retrying_llm import RetryingLlm
from jobs.runtime import budgeted, model_client
from kernel.settings import load_settings
from memory.events import EventLog

HI = [{"role": "user", "content": "hello"}]


def trace(redis, run_id: str) -> list[tuple[str, dict]]:
    return [(e.kind, e.data) for e in EventLog(redis, "ws").timeline(run_id)]


def test_a_slow_model_is_retried_on_the_record_then_given_up(redis, openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_TIMEOUT_S", "0.3")
    monkeypatch.setenv("OPENAI_MAX_RETRIES", "1")
    settings = load_settings()
    openai_server.answer({"delay_s": 1.0, "content": "too late"})
    budgets = Budgets(redis, CostLedger(redis, "ws"), Caps.parse(1, 0))
    client = model_client(settings)
    assert client is not None
    llm = budgeted(client, settings, EventLog(redis, "ws"), budgets)

    with charge_to(Charge(run_id="slow", project="inbox")), pytest.raises(LlmTimeout) as timed_out:
        llm.complete(HI, purpose="draft")

    assert str(timed_out.value) == "no answer within 0.3 s, tried 2 times"
    # two tries, each bounded by the draft's max_tokens; the client itself never tried again in secret
    assert [r["body"]["max_tokens"] for r in openai_server.requests] == [600, 600]
    events = trace(redis, "slow")
    assert [kind for kind, _ in events] == ["llm.timeout", "llm.retry", "llm.timeout"]
    first, retry, _ = (data for _, data in events)
    assert first == {"project": "inbox", "purpose": "draft", "model": "gpt-4o-mini", "timeout_s": 0.3, "attempt": 1}
    assert retry["attempt"] == 2 and retry["error"] == "no answer within 0.3 s" and retry["waited_s"] > 0
    assert redis.zcard(budgets.holds_key("inbox")) == 0  # nothing stays held for a call that never answered
    client.client.close()


def test_a_retry_that_answers_is_used(redis, openai_server):
    openai_server.answer({"delay_s": 1.0, "content": "late"}, {"status": 503}, {"content": "here"})
    llm = RetryingLlm(OpenAiLlm(openai_server.base_url, None, "small", timeout_s=0.3), EventLog(redis, "ws"), retries=2, wait_s=0.01)
    with charge_to(Charge(run_id="r1")):
        assert llm.complete(HI, model="small", purpose="ask").text == "here"
    events = trace(redis, "r1")
    assert [kind for kind, _ in events] == ["llm.timeout", "llm.retry", "llm.retry"]
    assert [data["attempt"] for _, data in events] == [1, 2, 3]
    assert "503" in events[2][1]["error"]


def test_a_refused_request_is_not_retried(redis, openai_server):
    openai_server.answer({"status": 400})
    llm = RetryingLlm(OpenAiLlm(openai_server.base_url, None, "small"), EventLog(redis, "ws"), retries=2, wait_s=0.01)
    with charge_to(Charge(run_id="r2")), pytest.raises(LlmUnavailable) as refused:
        llm.complete(HI)
    assert not refused.value.retryable and len(openai_server.requests) == 1
    assert trace(redis, "r2") == []


def test_a_retry_that_would_outlast_the_job_is_skipped_on_the_record(redis, openai_server):
    # the first try times out with 0.5 s left before the job is stopped: a second 0.3 s try plus its wait would not fit
    openai_server.answer({"delay_s": 1.0, "content": "late"}, {"content": "never asked"})
    now = [1_000.0]
    llm = RetryingLlm(OpenAiLlm(openai_server.base_url, None, "small", timeout_s=0.3), EventLog(redis, "ws"), retries=2,
                      wait_s=0.3, timeout_s=0.3, clock=lambda: now[0])

    with charge_to(Charge(run_id="late", project="inbox", deadline=1_000.5)), pytest.raises(LlmTimeout):
        llm.complete(HI, purpose="plan")

    assert len(openai_server.requests) == 1
    events = trace(redis, "late")
    assert [kind for kind, _ in events] == ["llm.timeout", "llm.retry_skipped"]
    assert events[1][1]["reason"] == "the job would be stopped first (JOB_TIMEOUT_S)" and events[1][1]["attempt"] == 2


def test_with_time_left_in_the_job_the_retry_goes_ahead(redis, openai_server):
    openai_server.answer({"delay_s": 1.0, "content": "late"}, {"content": "here"})
    llm = RetryingLlm(OpenAiLlm(openai_server.base_url, None, "small", timeout_s=0.3), EventLog(redis, "ws"), retries=1,
                      wait_s=0.01, timeout_s=0.3, clock=lambda: 1_000.0)

    with charge_to(Charge(run_id="room", project="inbox", deadline=1_060.0)):
        assert llm.complete(HI, purpose="plan").text == "here"
    assert [kind for kind, _ in trace(redis, "room")] == ["llm.timeout", "llm.retry"]
