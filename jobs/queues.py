"""The RQ queues and how work gets on them: JSON only, retries with backoff, deterministic ids."""
from __future__ import annotations

from typing import Any, Callable

from redis import Redis
from redis.client import Pipeline
from rq import Queue, Retry
from rq.job import Callback, Job
from rq.serializers import JSONSerializer

INTERACTIVE = "interactive"
DEFAULT = "default"
BACKGROUND = "background"
# workers drain them in this order
QUEUES = (INTERACTIVE, DEFAULT, BACKGROUND)


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
