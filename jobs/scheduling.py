"""The JobScheduler agents use to run work now or later, over Deputy's queues (rq's enqueue_at)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from rq import Retry
from rq.job import Callback

from jobs.queues import DEFAULT, INTERACTIVE, JobQueues

FAILURE_CALLBACK = "jobs.tasks.report_failure"


class RqScheduler:
    """JobScheduler over Deputy's queues. Workers run with rq's scheduler on, which moves a job
    from the scheduled registry to its queue once it is due."""

    def __init__(self, queues: JobQueues) -> None:
        self.queues = queues

    def run_now(self, func: str, payload: dict[str, Any], job_id: str) -> None:
        if self.queues.exists(job_id):
            return  # a retried caller: the job is already on its way
        self.queues.enqueue(func, payload, job_id=job_id, queue=INTERACTIVE, on_failure=FAILURE_CALLBACK)

    def run_at(self, func: str, payload: dict[str, Any], job_id: str, at: datetime) -> None:
        q = self.queues
        q.queue(DEFAULT).enqueue_at(
            at, func, args=(payload,), job_id=job_id, job_timeout=q.timeout_s,
            retry=Retry(max=q.retries, interval=q.backoff) if q.retries else None,
            on_failure=Callback(FAILURE_CALLBACK), result_ttl=3_600, failure_ttl=7 * 86_400,
            meta={"retries": q.retries},
        )
