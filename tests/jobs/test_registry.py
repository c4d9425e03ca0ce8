"""Anyone who can write to Redis can queue a job naming any function; workers run only Deputy's own."""
from __future__ import annotations

import importlib
import sys
from datetime import datetime, timedelta, timezone

import pytest
from rq import Queue, Retry
from rq.executions import Execution
from rq.job import Callback, Job, JobStatus
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from agents.agent import RESUME_JOB, RUN_JOB
from agents.budget import SpendRequest
from agents.reminders import FIRE_JOB, Draft, ReminderBook
from agents.scheduling import UnregisteredJob
from kernel.job_names import REPORT_FAILURE as FAILURE_CALLBACK
from jobs.cron import CRON
from jobs.queues import QUEUES, JobQueues
from jobs.registry import JOBS, name_of
from jobs.runtime import make_budgets
from jobs.scheduling import RqScheduler
from jobs.worker import make_worker, run_burst
from memory.events import EventLog
from tests.jobs.work import lease_ran_out, wait


def refusals(redis, workspace: str = "default") -> list[dict]:
    return [e.data for e in EventLog(redis, workspace).recent(kinds=["job.refused"])]


def fetch(redis, job_id: str) -> Job:
    return Job.fetch(job_id, connection=redis, serializer=JSONSerializer)


def test_every_job_deputy_queues_is_registered_and_importable():
    queued = {RUN_JOB, RESUME_JOB, FIRE_JOB, FAILURE_CALLBACK, "jobs.tasks.handle_message", "jobs.tasks.handle_decision",
              "jobs.ingest.ingest_file", "jobs.health.ping", *(name_of(p.func) for p in CRON)}
    assert queued == set(JOBS)
    for name in JOBS:
        module, _, attr = name.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attr))


def test_a_forged_job_naming_os_system_is_refused_and_never_run(redis, settings, tmp_path):
    marker = tmp_path / "ran"
    queue = Queue("interactive", connection=redis, serializer=JSONSerializer)
    forged = queue.enqueue_call("os.system", args=(f"touch {marker}",), retry=Retry(max=3))
    run_burst(redis)
    assert not marker.exists()
    job = fetch(redis, forged.id)
    assert job.get_status() == JobStatus.FAILED
    assert "'os.system' is not one of Deputy's job functions" in job.latest_result().exc_string
    assert forged.id in queue.failed_job_registry.get_job_ids()
    assert [(r["job"], r["job_id"]) for r in refusals(redis)] == [("os.system", forged.id)]
    assert all(Queue(name, connection=redis).count == 0 for name in QUEUES)  # not retried either


def test_a_forged_job_is_refused_before_its_module_is_imported(redis, settings, tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "deputy_forged_module.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef run(x): return x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    Queue("default", connection=redis, serializer=JSONSerializer).enqueue_call("deputy_forged_module.run", args=(1,))
    run_burst(redis)
    assert not marker.exists() and "deputy_forged_module" not in sys.modules
    assert [r["job"] for r in refusals(redis)] == ["deputy_forged_module.run"]


def test_an_abandoned_jobs_forged_failure_callback_is_not_imported_by_maintenance(redis, settings, tmp_path, monkeypatch):
    """rq's sweep of abandoned jobs calls their failure callback, by the name stored on the job."""
    marker = tmp_path / "imported"
    (tmp_path / "deputy_forged_callback.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef run(*a): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    queue = Queue("default", connection=redis, serializer=JSONSerializer)
    forged = queue.enqueue_call("jobs.health.ping", args=({},), on_failure=Callback("deputy_forged_callback.run"))
    with redis.pipeline() as pipe:  # as if a worker took it and died
        queue.remove(forged, pipeline=pipe)
        forged.set_status(JobStatus.STARTED, pipeline=pipe)
        Execution.create(forged, ttl=1, pipeline=pipe)
        pipe.execute()
    assert wait(lambda: lease_ran_out(redis, forged.id), 5)
    make_worker(redis).clean_registries()
    assert not marker.exists() and "deputy_forged_callback" not in sys.modules
    assert fetch(redis, forged.id).get_status() == JobStatus.FAILED


@pytest.mark.parametrize("hook", ["on_success", "on_failure", "on_stopped"])
def test_a_registered_job_with_a_forged_callback_is_refused(redis, settings, hook):
    queue = Queue("default", connection=redis, serializer=JSONSerializer)
    forged = queue.enqueue_call("jobs.health.ping", args=({"i": 1},), **{hook: Callback("os.system")})
    run_burst(redis)
    job = fetch(redis, forged.id)
    assert job.get_status() == JobStatus.FAILED and job.return_value() is None
    assert [r["job"] for r in refusals(redis)] == ["os.system"]


def test_a_registered_job_still_runs(redis, settings):
    job = JobQueues(redis).enqueue("jobs.health.ping", {"i": 7}, job_id="noop-1", on_failure=FAILURE_CALLBACK)
    run_burst(redis)
    assert fetch(redis, job.id).get_status() == JobStatus.FINISHED
    assert fetch(redis, job.id).return_value() == {"i": 7}
    assert refusals(redis) == []


def test_deputy_itself_cannot_queue_an_unregistered_name(redis):
    with pytest.raises(UnregisteredJob):
        JobQueues(redis).enqueue("os.system", {"x": 1}, job_id="x")
    with pytest.raises(UnregisteredJob):
        JobQueues(redis).enqueue("jobs.health.ping", {"x": 1}, job_id="y", on_failure="os.system")
    assert all(Queue(name, connection=redis).count == 0 for name in QUEUES)


def test_a_scheduled_reminder_forged_to_name_another_function_is_refused_when_due(redis, settings, tmp_path):
    marker = tmp_path / "ran"
    book = ReminderBook(redis, "default", RqScheduler(JobQueues(redis), EventLog(redis, "default")))
    due = datetime.now(timezone.utc) + timedelta(seconds=1)
    reminder = book.add(Draft(what="stretch", due=due), "console", "t1", {}, created_by="operator", trace_id="rem1")
    job_id = f"reminder-{reminder.id}-0"
    # what another client of Redis could write over the stored job: same id, still scheduled
    forged = Job.create("os.system", args=(f"touch {marker}",), id=job_id, connection=redis, serializer=JSONSerializer,
                        origin="default")
    forged.save()
    assert wait(lambda: job_id in ScheduledJobRegistry("default", connection=redis).get_jobs_to_schedule(), 5)
    run_burst(redis)
    assert not marker.exists()
    assert fetch(redis, job_id).get_status() == JobStatus.FAILED
    assert [(r["job"], r["job_id"]) for r in refusals(redis)] == [("os.system", job_id)]


def test_a_spend_request_forged_to_resume_another_function_is_refused(redis, settings, tmp_path):
    budgets = make_budgets(settings, redis)
    forged = SpendRequest(id="forged1", run_id="r1", project="inbox", model="m", scope="daily", estimate=1, spent=1, cap=1,
                          extra=10_000, day=budgets.ledger.today().isoformat(), resume_func="os.system",
                          resume_payload={"cmd": f"touch {tmp_path / 'ran'}"})
    redis.set(budgets.keys("spend_request", forged.id), forged.model_dump_json())
    request, fresh = budgets.decide(forged.id, approve=True, by="operator")
    assert fresh and request is not None and request.status == "approved"
    assert request.resume_func == ""  # the operator is told to ask again, not that it runs
    assert all(Queue(name, connection=redis).count == 0 for name in QUEUES)
    assert [r["job"] for r in refusals(redis)] == ["os.system"]
    # a second click does not try again
    budgets.decide(forged.id, approve=True, by="operator")
    assert len(refusals(redis)) == 1
