"""The JobScheduler agents use to run work now or later, over Deputy's queues (rq's enqueue_at)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from rq import Retry
from rq.job import Callback

from agents.scheduling import UnregisteredJob
from jobs.queues import DEFAULT, INTERACTIVE, JobQueues
from jobs.registry import check
from memory.events import EventLog
from kernel import job_names



class RqScheduler:
    """JobScheduler over Deputy's queues. Workers run with rq's scheduler on, which moves a job
    from the scheduled registry to its queue once it is due.

    Some names come back from Redis (a spend request's resume job): one that is not a registered job
    function raises UnregisteredJob, and is written to `events` when given."""

    def __init__(self, queues: JobQueues, events: EventLog | None = None) -> None:
        self.queues = queues
        self.events = events

    def run_now(self, func: str, payload: dict[str, Any], job_id: str) -> None:
        self._check(func, job_id)
        if self.queues.exists(job_id):
            return  # a retried caller: the job is already on its way
        self.queues.enqueue(func, payload, job_id=job_id, queue=INTERACTIVE, on_failure=job_names.REPORT_FAILURE)

    def run_at(self, func: str, payload: dict[str, Any], job_id: str, at: datetime) -> None:
        self._check(func, job_id)
        q = self.queues
        q.queue(DEFAULT).enqueue_at(
            at, func, args=(payload,), job_id=job_id, job_timeout=q.timeout_s,
            retry=Retry(max=q.retries, interval=q.backoff) if q.retries else None,
            on_failure=Callback(job_names.REPORT_FAILURE), result_ttl=3_600, failure_ttl=7 * 86_400,
            meta={"retries": q.retries},
        )

    def _check(self, func: str, job_id: str) -> None:
        try:
            check(func)
        except UnregisteredJob as refused:
            if self.events is not None:
                self.events.record(job_id, "job.refused", actor="scheduler", job=refused.name, job_id=job_id,
                                   reason="not a registered job function")
            raise
