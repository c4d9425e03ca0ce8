"""Worker start-up: a pool of non-forking RQ workers (a fork per job tops out near 50 jobs/s here).

rq's WorkerPool cannot pass a maintenance interval to its workers, so the pool is ours: N processes,
each one SimpleWorker on its own connection, restarted if one dies, stopped together on SIGTERM."""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import time
from typing import Any

from redis import Redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from jobs.queues import QUEUES

log = logging.getLogger("deputy.worker")

# how often a worker looks for abandoned jobs (their worker was killed) and retries them
MAINTENANCE_INTERVAL_S = 15


class DeputyWorker(SimpleWorker):
    """SimpleWorker whose stand-alone heartbeats are sent at most once a second.

    rq refreshes the worker key (3 round trips) several times per job; with a worker TTL of minutes,
    once a second keeps monitoring exact while leaving the round trips to the jobs."""

    heartbeat_every_s = 1.0

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        last = getattr(self, "_last_beat", 0.0)
        if pipeline is None and timeout is None and time.monotonic() - last < self.heartbeat_every_s:
            return
        self._last_beat = time.monotonic()
        super().heartbeat(timeout, pipeline)


def make_worker(redis: Redis, name: str | None = None) -> SimpleWorker:
    return DeputyWorker(
        list(QUEUES), connection=redis, serializer=JSONSerializer, name=name,
        maintenance_interval=MAINTENANCE_INTERVAL_S,
    )


def run_burst(redis: Redis) -> bool:
    """Run every queued job in this process, then return (tests, benchmarks, `deputy worker --burst`)."""
    return make_worker(redis).work(burst=True, with_scheduler=True, logging_level="WARNING")


def _work(redis_url: str, index: int) -> None:
    redis = Redis.from_url(redis_url)
    worker = make_worker(redis, name=f"deputy-{os.getpid()}-{index}")
    worker.work(burst=False, with_scheduler=True, logging_level="WARNING")


def run_pool(redis_url: str, workers: int) -> None:
    """Run `workers` worker processes until SIGINT/SIGTERM; a process that dies is replaced."""
    ctx = mp.get_context("fork")
    procs: dict[int, mp.process.BaseProcess] = {}
    stopping = False

    def start(index: int) -> None:
        proc = ctx.Process(target=_work, args=(redis_url, index), name=f"deputy-worker-{index}", daemon=False)
        proc.start()
        procs[index] = proc

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(workers):
        start(index)
    log.info("worker pool: %d workers on queues %s", workers, ", ".join(QUEUES))
    while not stopping:
        time.sleep(0.5)
        for index, proc in list(procs.items()):
            if not proc.is_alive() and not stopping:
                log.warning("worker %d exited with %s; starting a new one", index, proc.exitcode)
                start(index)
    # rq's warm shutdown: each worker finishes its current job on SIGTERM
    for proc in procs.values():
        if proc.is_alive() and proc.pid:
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.time() + 30
    for proc in procs.values():
        proc.join(max(0.0, deadline - time.time()))
        if proc.is_alive():
            proc.kill()
