"""The RQ queues and how work gets on them: JSON only, retries with backoff, deterministic ids."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

from redis import Redis
from redis.client import Pipeline
from rq import Queue, Retry
from rq.job import Callback, Job, JobStatus
from rq.serializers import JSONSerializer
from rq.utils import now

INTERACTIVE = "interactive"
DEFAULT = "default"
BACKGROUND = "background"
# workers drain them in this order
QUEUES = (INTERACTIVE, DEFAULT, BACKGROUND)


class DeputyJob(Job):
    """rq's Job, with a retry after backoff written in one transaction.

    rq 3.0's `Job.retry` marks the job `scheduled` at once and puts it in the scheduled registry
    through the caller's pipeline afterwards. A worker killed between the two left a job marked
    scheduled in no registry; the abandoned-job sweep only takes back jobs still `started`, so it
    was never run again (found by `deputy prove`'s worker SIGKILL storm). Here the status goes in the
    same pipeline: a kill before it executes leaves the job `started`, and the sweep retries it."""

    def retry(self, queue: Queue, pipeline: Pipeline) -> None:
        interval = self.get_retry_interval()
        if not interval:
            super().retry(queue, pipeline)
            return
        assert self.retries_left
        self.retries_left -= 1
        self.set_status(JobStatus.SCHEDULED, pipeline=pipeline)
        queue.schedule_job(self, now() + timedelta(seconds=interval), pipeline=pipeline)


class JobQueues:
    """Enqueue job functions by name with JSON arguments; the gateway's only way to reach workers."""

    def __init__(self, redis: Redis, retries: int = 3, backoff: list[int] | None = None, timeout_s: int = 120) -> None:
        self.redis = redis
        self.retries = retries
        self.backoff = backoff or [1, 5, 30]
        self.timeout_s = timeout_s
        self._queues = {name: Queue(name, connection=redis, serializer=JSONSerializer) for name in QUEUES}

    def queue(self, name: str) -> Queue:
        return self._queues[name]

    def enqueue(
        self,
        func: Callable[..., Any] | str,
        payload: dict[str, Any],
        job_id: str,
        queue: str = INTERACTIVE,
        pipeline: Pipeline | None = None,
        on_failure: Callable[..., Any] | str | None = None,
    ) -> Job:
        return self._queues[queue].enqueue_call(
            func,
            args=(payload,),
            job_id=job_id,
            timeout=self.timeout_s,
            retry=Retry(max=self.retries, interval=self.backoff) if self.retries else None,
            on_failure=Callback(on_failure) if on_failure else None,
            result_ttl=3_600,
            failure_ttl=7 * 86_400,
            meta={"retries": self.retries},
            pipeline=pipeline,
        )

    def exists(self, job_id: str) -> bool:
        return Job.exists(job_id, connection=self.redis)

    def fetch(self, job_id: str) -> Job | None:
        try:
            return Job.fetch(job_id, connection=self.redis, serializer=JSONSerializer)
        except Exception:
            return None
