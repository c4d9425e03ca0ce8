"""Workers: a killed worker's job is found and retried; a long job on a live worker is not."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from jobs.worker import make_worker, run_burst
from tests.jobs.work import JOBS, lease_end, lease_ran_out, past, release, wait

ROOT = Path(__file__).resolve().parents[2]


def start_worker(redis_url: str, lease_s: float, beat_s: float) -> subprocess.Popen[bytes]:
    code = (
        "import jobs.worker as w; from redis import Redis;"
        f"w.DeputyWorker.abandoned_after_s={lease_s}; w.DeputyWorker.job_heartbeat_s={beat_s};"
        f"w.make_worker(Redis.from_url({redis_url!r}), jobs={JOBS!r}).work(burst=False, logging_level='WARNING')"
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def enqueue(redis, first_attempt_s: float) -> Job:  # type: ignore[no-untyped-def]
    queue = Queue("default", connection=redis, serializer=JSONSerializer)
    return queue.enqueue_call("tests.jobs.work.slow_or_stuck", args=({"key": "w", "first_attempt_s": first_attempt_s},),
                              retry=Retry(max=2), timeout=120)


def test_job_of_a_killed_worker_is_retried_once(redis, redis_url):
    job = enqueue(redis, first_attempt_s=600)
    worker = start_worker(redis_url, lease_s=2, beat_s=0.5)
    try:
        assert wait(lambda: redis.get("w:started") == b"1", 30), "the worker never started the job"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert wait(lambda: lease_ran_out(redis, job.id), 10), "the dead worker's lease never ran out"
    run_burst(redis, jobs=JOBS)  # its maintenance finds the abandoned job and retries it
    assert redis.get("w:attempts") == b"2"
    assert redis.get("w:done") == b"1"
    assert Job.fetch(job.id, connection=redis, serializer=JSONSerializer).get_status() == JobStatus.FINISHED


def test_long_job_on_a_live_worker_keeps_its_lease(redis, redis_url):
    job = enqueue(redis, first_attempt_s=60)
    worker = start_worker(redis_url, lease_s=2, beat_s=0.5)
    try:
        assert wait(lambda: redis.get("w:started") == b"1", 30)
        first = lease_end(redis, job.id)
        assert wait(lambda: past(first), 10)  # the job outlived its first lease: only renewals keep it
        make_worker(redis, jobs=JOBS).run_maintenance_tasks()
        assert not lease_ran_out(redis, job.id) and redis.get("w:done") is None
        release(redis, "w")
        assert wait(lambda: redis.get("w:done") == b"1", 15)
    finally:
        worker.terminate()
        worker.wait(20)
    assert redis.get("w:attempts") == b"1"
    assert Job.fetch(job.id, connection=redis, serializer=JSONSerializer).get_status() == JobStatus.FINISHED


def test_a_job_taken_by_a_worker_that_died_before_starting_it_runs_once(redis):
    """rq leaves such a job QUEUED in no queue; maintenance must put it back."""
    job = enqueue(redis, first_attempt_s=0)
    dying = make_worker(redis, jobs=JOBS)
    dying.abandoned_after_s = 0  # its lease has run out by the time anyone looks
    queue = Queue("default", connection=redis, serializer=JSONSerializer)
    taken, _ = Queue.dequeue_any([queue], None, connection=redis, serializer=JSONSerializer)
    assert taken.id == job.id
    dying.prepare_execution(taken)  # leased in the started registry... and the worker dies here
    assert queue.count == 0 and taken.get_status(refresh=True) == JobStatus.QUEUED
    assert wait(lambda: lease_ran_out(redis, job.id), 5)
    run_burst(redis, jobs=JOBS)
    assert redis.get("w:attempts") == b"1" and redis.get("w:done") == b"1"
    assert Job.fetch(job.id, connection=redis, serializer=JSONSerializer).get_status() == JobStatus.FINISHED


def test_a_dead_schedulers_lock_does_not_hold_back_scheduled_retries(redis):
    """A scheduler that died with its Redis connection (a Redis restart) leaves its lock for a minute; until
    maintenance lets it go, no worker moves a scheduled retry back to its queue."""
    from datetime import timedelta

    from rq.scheduler import RQScheduler

    queue = Queue("default", connection=redis, serializer=JSONSerializer)
    queue.enqueue_in(timedelta(seconds=0), "tests.jobs.work.slow_or_stuck", {"key": "s", "first_attempt_s": 0})
    dead, live = RQScheduler.get_locking_key("default"), RQScheduler.get_locking_key("interactive")
    redis.set(dead, "scheduler-of-a-dead-worker", ex=45)  # nobody refreshed it for 16 s
    redis.set(live, "scheduler-of-a-live-worker", ex=60)  # refreshed a second ago
    run_burst(redis, jobs=JOBS)
    assert redis.get("s:done") is None  # held back
    make_worker(redis, jobs=JOBS).run_maintenance_tasks()
    assert redis.get(dead) is None and redis.get(live) == b"scheduler-of-a-live-worker"
    run_burst(redis, jobs=JOBS)
    assert redis.get("s:done") == b"1"


def test_a_killed_workers_scheduler_process_dies_with_it_and_lets_its_locks_go(redis, redis_url):
    """rq runs a worker's scheduler in a child process; a SIGKILLed worker must not leave it running as an
    orphan that keeps the queues' scheduler locks (and one more orphan per kill)."""
    from rq.scheduler import RQScheduler

    code = (
        "import jobs.worker as w; from redis import Redis;"
        f"w.make_worker(Redis.from_url({redis_url!r}), jobs={JOBS!r}).work(burst=False, with_scheduler=True, logging_level='WARNING')"
    )
    worker = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lock = RQScheduler.get_locking_key("interactive")
    try:
        assert wait(lambda: redis.get(lock) is not None, 30), "the worker's scheduler never took its lock"
        children = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 1, children
        scheduler = int(children[0])
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        assert wait(lambda: not Path(f"/proc/{scheduler}").exists() or _zombie(scheduler), 10), "the scheduler outlived its worker"
        assert wait(lambda: redis.get(lock) is None, 10), "the dead scheduler kept its lock"
    finally:
        if worker.poll() is None:
            worker.kill()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_worker_killed_while_scheduling_a_retry_leaves_the_job_to_the_abandoned_job_sweep(redis):
    """The kill lands after the retry was decided but before its pipeline ran: the job must still look
    started, so the sweep of the dead worker's executions schedules the retry instead of skipping it."""
    from rq.executions import Execution
    from rq.registry import ScheduledJobRegistry, StartedJobRegistry

    from jobs.queues import DeputyJob

    queue = Queue("default", connection=redis, serializer=JSONSerializer, job_class=DeputyJob)
    queued = queue.enqueue_call("tests.jobs.work.slow_or_stuck", args=({"key": "r", "first_attempt_s": 0},),
                                retry=Retry(max=2, interval=1))
    job = DeputyJob.fetch(queued.id, connection=redis, serializer=JSONSerializer)
    with redis.pipeline() as pipe:  # what a worker writes as it starts the job
        queue.remove(job, pipeline=pipe)
        job.set_status(JobStatus.STARTED, pipeline=pipe)
        Execution.create(job, ttl=60, pipeline=pipe)
        pipe.execute()
    dying = redis.pipeline()
    job.retry(queue, dying)  # the attempt failed; the worker is killed before this pipeline executes
    dying.reset()
    assert DeputyJob.fetch(job.id, connection=redis, serializer=JSONSerializer).get_status() == JobStatus.STARTED
    StartedJobRegistry(queue=queue, job_class=DeputyJob).cleanup(timestamp=time.time() + 120)  # the lease ran out
    assert job.id in ScheduledJobRegistry(queue=queue).get_job_ids()
    assert DeputyJob.fetch(job.id, connection=redis, serializer=JSONSerializer).get_status() == JobStatus.SCHEDULED
