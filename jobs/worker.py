"""Worker start-up: a pool of non-forking RQ workers (a fork per job tops out near 50 jobs/s here).

rq's WorkerPool cannot pass a maintenance interval to its workers, so the pool is ours: N processes,
each one SimpleWorker on its own connection, restarted if one dies, stopped together on SIGTERM."""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from contextlib import AbstractContextManager, ExitStack, nullcontext
from typing import TYPE_CHECKING, Any, Collection

from redis import Redis
from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq import worker_registration
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.job import Job, JobStatus
from rq.registry import clean_registries
from rq.scheduler import RQScheduler
from rq.scripts import release_lock
from rq.utils import now
from rq.serializers import JSONSerializer
from rq.worker import WorkerStatus

from kernel.settings import Settings, load_settings
from jobs.heartbeat import Heartbeats, Pulse
from jobs.memory_wiring import WeaviateWait
from jobs.queues import QUEUES, DeputyJob
from jobs.registry import JOBS
from jobs.runtime import Runtime, open_runtime, use_runtime
from kernel.metric_files import MetricFiles
from kernel.metrics import Metrics, job_kind, metrics_dir, process_metrics
from memory.events import EventLog

if TYPE_CHECKING:
    from agents.intents.model import IntentWatcher  # sklearn: imported where it is used (agents.intents.recognizers)

log = logging.getLogger("deputy.worker")

# A killed worker's job is found and retried within ABANDONED_AFTER_S + MAINTENANCE_INTERVAL_S
# (35 s): while a job runs, a side thread renews its lease every JOB_HEARTBEAT_S, so only a dead
# worker's job expires, however long a live one takes.
MAINTENANCE_INTERVAL_S = 15
ABANDONED_AFTER_S = 20
JOB_HEARTBEAT_S = 5.0
# rq's scheduler lock lasts its 1 s interval + 60 s and is refreshed every second by a live scheduler
SCHEDULER_LOCK_TTL_S = 61
SCHEDULER_SILENT_S = 10
# an idle worker wakes from its blocking dequeue every WORKER_TTL_S - 15 s to run maintenance
WORKER_TTL_S = 30


class DeputyScheduler(RQScheduler):
    """rq's scheduler process, tied to the worker that forked it.

    rq runs each worker's scheduler in a child process. A worker that is SIGKILLed (the OOM killer,
    a crash) leaves that child running as an orphan: it keeps its queue locks, and every later
    kill leaks another one. Here the child asks the kernel for SIGTERM when its parent dies
    (PR_SET_PDEATHSIG on Linux). rq's handler then stops the loop and releases the locks, so a live
    worker's scheduler takes them at its next maintenance."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parent_pid = os.getpid()

    def work(self) -> None:
        _signal_on_parent_death(signal.SIGTERM)
        if os.getppid() != self.parent_pid:
            return  # the worker died before the line above took effect
        super().work()


def _signal_on_parent_death(signum: int) -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signum), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: an orphaned scheduler lives until its locks are freed by maintenance


class DeputyWorker(SimpleWorker):
    """SimpleWorker that opens the jobs' runtime while it works, with a short, actively renewed job
    lease and throttled worker heartbeats.

    rq's SimpleWorker leases a job for its whole timeout + 60 s and never renews it, so a killed
    worker's job waits minutes to be retried, and a job running past its lease is retried while it
    still runs. rq also refreshes the worker key (3 round trips) several times per job; once a
    second is plenty with a TTL of 30 s."""

    heartbeat_every_s = 1.0
    abandoned_after_s = ABANDONED_AFTER_S
    job_heartbeat_s = JOB_HEARTBEAT_S
    job_class: type[DeputyJob]
    # what the runtime is built from, and where a refused job is written (make_worker sets it)
    settings: Settings
    # job durations, failures and retries, counted in this process (make_worker sets it)
    metrics: Metrics
    # this process's heartbeat (`deputy health --role worker`); a pool's workers have one, burst workers none
    pulse: Pulse | None = None
    # the pool's intent models and classifier, loaded before it forked this worker (shared pages); None: its own
    intents: IntentWatcher | None = None

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """rq's loop, with the runtime open and current: job functions and the failure callbacks
        maintenance calls reach it through jobs.runtime.current_runtime(). No job is taken before the
        runtime is open: a Weaviate that does not answer yet is waited for, never replaced by the embedded store."""
        with ExitStack() as stack:
            with self._warming():
                runtime = stack.enter_context(open_runtime(self.settings, self.connection, self._weaviate_wait(), metrics=self.metrics,
                                                           intents=self.intents))
                stack.enter_context(use_runtime(runtime))
            self._warm_recognizer(runtime)
            return bool(super().work(*args, **kwargs))

    def _warm_recognizer(self, runtime: Runtime) -> None:
        """Ready means able to answer free text: the recogniser is warmed (its classifier read back, the small
        model loaded) in a thread while commands are already taken; a free-text job meanwhile waits for it."""
        pulse = self.pulse
        if pulse is None:
            return  # a burst worker (tests, `deputy worker --burst`) loads it when a message needs it
        pulse.mark(False, "loading the intent classifier")

        def warm() -> None:
            try:
                log.info("intent recogniser ready in %.2f s", runtime.recognizer.warm())
            except Exception:  # the first free-text job tries again, and says why if it fails too
                log.exception("could not warm the intent recogniser")
            pulse.mark(True)

        threading.Thread(target=warm, name="deputy-intents-warm", daemon=True).start()

    def _warming(self) -> AbstractContextManager[object]:
        return self.pulse.warming() if self.pulse is not None else nullcontext()

    def _weaviate_wait(self) -> WeaviateWait:
        def missed(reason: str) -> None:
            if self.pulse is not None:
                self.pulse.mark(False, f"waiting for Weaviate: {reason}")

        return WeaviateWait(self.settings.weaviate.retry_max_s, on_miss=missed)

    def unsubscribe(self) -> None:
        """rq unsubscribes, then stops its listener thread and waits for it. A listener that reads the
        unsubscribe reply first waits up to 60 s for a subscription that will never come, and the
        worker with it; told to stop first, it exits on that reply."""
        if self.pubsub_thread is None or self.pubsub is None:
            return
        self.pubsub_thread.stop(timeout=0)
        self.pubsub.unsubscribe()
        self.pubsub_thread.join(timeout=1)
        self.pubsub.close()

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if self.pulse is not None:
            self.pulse.beat_if_due()
        last = getattr(self, "_last_beat", 0.0)
        if pipeline is None and timeout is None and time.monotonic() - last < self.heartbeat_every_s:
            return
        self._last_beat = time.monotonic()
        super().heartbeat(timeout, pipeline)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return int(self.abandoned_after_s)

    def execute_job(self, job: DeputyJob, queue: Queue) -> None:  # type: ignore[override]
        refused = job.unregistered_name()
        if refused is not None:
            self._refuse(job, queue, refused)
            return
        execution = self.prepare_execution(job)
        stop = threading.Event()
        beats = threading.Thread(target=self._renew_lease, args=(job, execution, stop), daemon=True)
        beats.start()
        started = time.perf_counter()
        try:
            self.perform_job(job, queue, execution)
        finally:
            stop.set()
            beats.join(5)
            self.metrics.job_done(_kind(job), time.perf_counter() - started)
        self.set_state(WorkerStatus.IDLE)

    def handle_job_failure(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """rq's handling, counted: a failed attempt, and whether it runs again (rq's own test, made before it decides)."""
        self.metrics.job_failed(_kind(job), retrying=bool(job.should_retry) and self._stopped_job_id != job.id)
        super().handle_job_failure(job, queue, *args, **kwargs)

    def _refuse(self, job: DeputyJob, queue: Queue, name: str) -> None:
        """A job naming a function (or callback) Deputy does not register: failed without importing
        anything, and written to the workspace's event log."""
        reason = f"refused: {name!r} is not one of Deputy's job functions (jobs/registry.py); nothing was imported or run"
        log.warning("job %s from queue %s %s", job.id, queue.name, reason)
        EventLog(self.connection, self.settings.workspace).record(job.id, "job.refused", actor="worker", job=name, job_id=job.id,
                                                                  queue=queue.name, reason="not a registered job function")
        job.retries_left = 0  # it would be refused every time
        job.ended_at = now()
        self.handle_job_failure(job, queue, exc_string=reason)
        # rq keeps a taken job in the queue's intermediate list until it starts; this one never will
        self.connection.lrem(queue.intermediate_queue_key, 1, job.id)
        self.set_state(WorkerStatus.IDLE)

    def _start_scheduler(self, burst: bool = False, logging_level: str | None = "INFO",
                         date_format: str = DEFAULT_LOGGING_DATE_FORMAT, log_format: str = DEFAULT_LOGGING_FORMAT) -> None:
        """rq's own start-up, with a scheduler process that dies with this worker (DeputyScheduler)."""
        self.scheduler = DeputyScheduler(self.queues, connection=self.connection, serializer=self.serializer,
                                         logging_level=logging_level if logging_level is not None else self.log.level,
                                         date_format=date_format, log_format=log_format)
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if not burst:
            self.scheduler.start()
            return
        try:
            self.scheduler.register_birth()
            self.scheduler.enqueue_scheduled_jobs()
        finally:
            self.scheduler.release_locks()
            self.scheduler.register_death()

    def run_maintenance_tasks(self) -> None:
        self._free_dead_scheduler_locks()
        super().run_maintenance_tasks()

    def _free_dead_scheduler_locks(self) -> None:
        """rq's scheduler refreshes its per-queue lock every second (TTL 61 s). Its process dies with its
        Redis connection (a Redis restart) or its worker, and the lock it leaves would hold back every
        scheduled retry for a minute; a lock nobody refreshed for SCHEDULER_SILENT_S is let go, so a live
        worker's scheduler takes over at its next maintenance."""
        for queue in self.queues:
            key = RQScheduler.get_locking_key(queue.name)
            holder, ttl = self.connection.get(key), self.connection.ttl(key)
            if holder and 0 < ttl < SCHEDULER_LOCK_TTL_S - SCHEDULER_SILENT_S:
                if release_lock(self.connection, key, holder.decode() if isinstance(holder, bytes) else holder):
                    log.warning("scheduler lock of %s held by %s went %d s without a refresh; released", queue.name, holder,
                                SCHEDULER_LOCK_TTL_S - ttl)

    def clean_registries(self) -> None:
        """rq's maintenance, plus recovery of jobs a worker took but died before starting."""
        for queue in self.queues:
            # one worker at a time per queue, as in rq
            if queue.acquire_maintenance_lock():
                try:
                    self._requeue_never_started(queue)
                    clean_registries(queue, self._exc_handlers)
                    worker_registration.clean_worker_registry(queue)
                    queue.intermediate_queue.cleanup(self, queue)
                finally:
                    queue.release_maintenance_lock()
        self.last_cleaned_at = now()

    def _requeue_never_started(self, queue: Queue) -> None:
        """A worker killed between taking a job and starting it leaves the job QUEUED, leased in the
        started registry, in no queue; rq's cleanup skips it (not STARTED) and drops the lease, so it
        would never run. It never ran, so it goes back to its queue without using a retry."""
        registry = queue.started_job_registry
        for job_id in registry.get_expired_job_ids():
            job = queue.fetch_job(job_id)
            if job is None or job.get_status(refresh=True) != JobStatus.QUEUED:
                continue
            with self.connection.pipeline() as pipe:
                pipe.lrem(queue.intermediate_queue_key, 0, job.id)
                pipe.lrem(queue.key, 0, job.id)
                queue.push_job_id(job.id, pipeline=pipe, at_front=True)
                pipe.execute()
            log.warning("job %s was taken by a worker that died before starting it; queued again", job.id)

    def _renew_lease(self, job: Job, execution: Execution, stop: threading.Event) -> None:
        while not stop.wait(self.job_heartbeat_s):
            try:
                self.maintain_heartbeats(job, execution)
            except Exception:  # a missed renewal is retried next tick; the lease has slack
                log.warning("could not renew the lease of job %s", job.id, exc_info=True)


def make_worker(redis: Redis, name: str | None = None, jobs: Collection[str] = JOBS, settings: Settings | None = None,
                metrics: Metrics | None = None) -> DeputyWorker:
    """A worker that runs only `jobs` (Deputy's registry; tests add their own), with a runtime built
    from `settings` (the environment's when not given) while it works, counting into `metrics`."""
    worker = DeputyWorker(
        list(QUEUES), connection=redis, serializer=JSONSerializer, name=name,
        job_class=DeputyJob if jobs is JOBS else DeputyJob.registering(jobs),
        maintenance_interval=MAINTENANCE_INTERVAL_S, worker_ttl=WORKER_TTL_S, job_monitoring_interval=int(JOB_HEARTBEAT_S),
    )
    worker.settings = settings or load_settings()
    worker.metrics = metrics if metrics is not None else Metrics()
    return worker


def _kind(job: Job) -> str:
    try:
        name = job.func_name
    except Exception:  # data that does not deserialize names no job of Deputy's
        name = None
    return job_kind(name, getattr(job, "registered", None))


def worker_metrics(settings: Settings) -> Metrics:
    """This worker process's metrics, written where the gateway's /metrics reads them."""
    return process_metrics(metrics_dir(settings.data_dir, settings.metrics_dir))


def run_burst(redis: Redis, jobs: Collection[str] = JOBS, metrics: Metrics | None = None) -> bool:
    """Run every queued job in this process, then return (tests, benchmarks, `deputy worker --burst`)."""
    return make_worker(redis, jobs=jobs, metrics=metrics).work(burst=True, with_scheduler=True, logging_level="WARNING")


def _work(redis_url: str, index: int, intents: IntentWatcher | None) -> None:
    redis = Redis.from_url(redis_url)
    worker = make_worker(redis, name=f"deputy-{os.getpid()}-{index}")
    worker.intents = intents
    worker.metrics = worker_metrics(worker.settings)
    health = worker.settings.health
    # the pool's signal handlers came with the fork, and would only flag a copy of its loop: until rq's own handlers
    # (a warm shutdown) are installed, a worker told to stop while it starts (warming up, waiting for Weaviate) stops
    signal.signal(signal.SIGTERM, _stop_starting)
    signal.signal(signal.SIGINT, _stop_starting)
    with Pulse(Heartbeats(redis), "worker", health.heartbeat_s, ready=False, detail="starting") as worker.pulse:
        worker.work(burst=False, with_scheduler=True, logging_level="WARNING")


def _stop_starting(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def run_pool(redis_url: str, workers: int, metric_files: MetricFiles | None = None, intents: IntentWatcher | None = None) -> None:
    """Run `workers` worker processes until SIGINT/SIGTERM; a process that dies is replaced, and the
    metrics it wrote are folded into `metric_files`' archive. `intents` (agents.intents.recognizers.preload_intents),
    loaded in this process, reaches each worker by fork: the pages of its models are shared, not copied per worker."""
    ctx = mp.get_context("fork")
    procs: dict[int, mp.process.BaseProcess] = {}
    stopping = False

    def start(index: int) -> None:
        proc = ctx.Process(target=_work, args=(redis_url, index, intents), name=f"deputy-worker-{index}", daemon=False)
        proc.start()
        procs[index] = proc

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    _fold(metric_files)
    for index in range(workers):
        start(index)
    log.info("worker pool: %d workers on queues %s", workers, ", ".join(QUEUES))
    while not stopping:
        time.sleep(0.5)
        for index, proc in list(procs.items()):
            if not proc.is_alive() and not stopping:
                log.warning("worker %d exited with %s; starting a new one", index, proc.exitcode)
                start(index)
                _fold(metric_files)
    # rq's warm shutdown: each worker finishes its current job on SIGTERM
    for proc in procs.values():
        if proc.is_alive() and proc.pid:
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.time() + 30
    for proc in procs.values():
        proc.join(max(0.0, deadline - time.time()))
        if proc.is_alive():
            proc.kill()


def _fold(files: MetricFiles | None) -> None:
    """Fold finished workers' metrics files (this host's), so a long-lived pool does not collect them forever."""
    if files is None:
        return
    try:
        files.fold_dead()
    except OSError:
        log.exception("could not fold the metrics files of finished workers in %s", files.directory)
