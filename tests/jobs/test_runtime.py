"""The worker's runtime: built when a worker starts from the settings of that moment, current while it
works, closed when it stops."""
from __future__ import annotations

import time

import apsw
import pytest
from rq.serializers import JSONSerializer
from rq import Queue

from jobs.runtime import current_runtime, open_runtime
from jobs.worker import make_worker, run_burst
from kernel.settings import load_settings
from tests.jobs.work import JOBS, SEEN, wait


def probe(redis, job_id: str) -> None:  # type: ignore[no-untyped-def]
    Queue("default", connection=redis, serializer=JSONSerializer).enqueue_call("tests.jobs.work.probe", args=({},), job_id=job_id)


def closed(runtime) -> bool:  # type: ignore[no-untyped-def]
    try:
        runtime.memory.store.count(runtime.settings.workspace)
    except apsw.ConnectionClosedError:
        return True
    return False


def test_each_worker_builds_its_runtime_from_the_settings_of_the_moment_and_closes_it(settings, redis, openai_server,
                                                                                        monkeypatch):
    SEEN.clear()
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    for workspace in ("one", "two"):
        monkeypatch.setenv("WORKSPACE", workspace)
        probe(redis, f"probe-{workspace}")
        probe(redis, f"probe-{workspace}-again")
        run_burst(redis, jobs=JOBS)
    first, again, second, _ = SEEN
    # one runtime per worker, for every job it runs
    assert first is again and second is not first
    assert [first.settings.workspace, second.settings.workspace] == ["one", "two"]
    # what it opened is closed when the worker stops, and no job function can reach it any more
    assert closed(first) and closed(second)
    # the model client, under the budget, the recording of planning calls and the retries
    assert first.llm is not None and first.llm.inner.inner.inner.client.is_closed()  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="inside a Deputy worker"):
        current_runtime()


def test_a_runtime_is_closed_even_when_its_user_fails(settings, redis):
    with pytest.raises(ValueError), open_runtime(load_settings(), redis) as runtime:
        raise ValueError("a worker that crashed")
    assert closed(runtime)


def test_a_stopping_worker_does_not_wait_on_its_listener(settings, redis):
    """rq's listener thread may read the unsubscribe reply before it is told to stop; it must not then
    wait for a subscription that will never come, and hold the stopping worker with it."""
    worker = make_worker(redis)
    worker.subscribe()
    pubsub = worker.pubsub
    send = pubsub.unsubscribe

    def unsubscribe_and_let_the_listener_read_the_reply(*args):  # type: ignore[no-untyped-def]
        sent = send(*args)
        assert wait(lambda: not pubsub.subscribed, 5), "the listener never read the reply"
        return sent

    pubsub.unsubscribe = unsubscribe_and_let_the_listener_read_the_reply
    started = time.monotonic()
    worker.unsubscribe()
    assert time.monotonic() - started < 5
    assert not worker.pubsub_thread.is_alive()


def test_what_workers_record_never_carries_a_configured_secret(settings, redis, monkeypatch):
    """An error a connector reports may quote a password or token: the worker's event logs mask it."""
    secret = "smtp-pass-8d1f2c"
    monkeypatch.setenv("SMTP_PASSWORD", secret)
    with open_runtime(load_settings(), redis) as runtime:
        for events in (runtime.events, runtime.agent.executor.events):
            events.record("t-secret", "step.failed", actor="worker", error=f"535 login failed for ops:{secret}@mail")
        timeline = runtime.events.timeline("t-secret")
    assert len(timeline) == 2
    assert all(secret not in e.data["error"] and "login failed" in e.data["error"] for e in timeline)
