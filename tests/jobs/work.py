"""Job functions the worker tests enqueue (module level, importable by a worker process), and waiting
on what they do."""
from __future__ import annotations

import time
from typing import Any, Callable

from redis import Redis
from rq import get_current_job
from rq.registry import StartedJobRegistry
from rq.utils import current_timestamp

import jobs.registry
from jobs.runtime import Runtime, current_runtime

# what a worker under test runs: Deputy's job functions and these
JOBS = (*jobs.registry.JOBS, "tests.jobs.work.slow_or_stuck", "tests.jobs.work.probe")
# the runtimes probe saw, in order
SEEN: list[Runtime] = []


def probe(payload: dict[str, Any]) -> str:
    """Note the runtime this job runs with."""
    SEEN.append(current_runtime())
    return current_runtime().settings.workspace


def slow_or_stuck(payload: dict[str, Any]) -> int:
    """First attempt: announce itself, then hold until `release(key)` or `first_attempt_s` has passed
    (a stuck job, to be killed); later attempts finish at once."""
    redis = get_current_job().connection
    key = payload["key"]
    attempt = int(redis.incr(f"{key}:attempts"))
    redis.set(f"{key}:started", attempt)
    if attempt == 1 and payload["first_attempt_s"]:
        redis.blpop([f"{key}:release"], timeout=payload["first_attempt_s"])
    redis.incr(f"{key}:done")
    return attempt


def release(redis: Redis, key: str) -> None:
    """Let a held first attempt of slow_or_stuck finish."""
    redis.rpush(f"{key}:release", 1)


def wait(predicate: Callable[[], object], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def lease_ran_out(redis: Redis, job_id: str, queue: str = "default") -> bool:
    """Whether `job_id`'s lease in the started registry has run out, by the clock rq's maintenance uses."""
    return job_id in StartedJobRegistry(queue, connection=redis).get_expired_job_ids()


def lease_end(redis: Redis, job_id: str, queue: str = "default") -> float:
    """When the job's current lease runs out (rq scores leases in whole seconds)."""
    registry = StartedJobRegistry(queue, connection=redis)
    return max(score for member, score in redis.zrange(registry.key, 0, -1, withscores=True)
               if registry.parse_job_id(member) == job_id)


def past(moment: float) -> bool:
    return current_timestamp() > moment
