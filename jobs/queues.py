"""The RQ queues and how work gets on them: JSON only, retries with backoff, deterministic ids."""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable, Iterable

from redis import Redis
from redis.client import Pipeline
from rq import Queue, Retry
from rq.job import Callback, Job, JobStatus
from rq.serializers import JSONSerializer
from rq.utils import now

from agents.scheduling import UnregisteredJob
from jobs.registry import JOBS, check

INTERACTIVE = "interactive"
DEFAULT = "default"
BACKGROUND = "background"
# workers drain them in this order
QUEUES = (INTERACTIVE, DEFAULT, BACKGROUND)


def _importing_registered(imports: property, name_attribute: str) -> property:
    """rq's property `imports`, on a job whose `name_attribute` names a registered function (or nothing)."""

    def get(job: DeputyJob) -> Any:
        job._checked(getattr(job, name_attribute))
        return imports.__get__(job)

    return property(get)


class DeputyJob(Job):
    """rq's Job, importing only Deputy's registered job functions, with a retry after backoff written
    in one transaction.

    rq 3.0's `Job.retry` marks the job `scheduled` at once and puts it in the scheduled registry
    through the caller's pipeline afterwards. A worker killed between the two left a job marked
    scheduled in no registry; the abandoned-job sweep only takes back jobs still `started`, so it
    was never run again (found by `deputy prove`'s worker SIGKILL storm). Here the status goes in the
    same pipeline: a kill before it executes leaves the job `started`, and the sweep retries it."""

    # the dotted names this job may import (jobs/registry.py); rq imports them lazily, by name
    registered: frozenset[str] = frozenset(JOBS)

    @classmethod
    def registering(cls, names: Iterable[str]) -> type["DeputyJob"]:
        """This class, importing `names` instead (a worker for tests' own job functions)."""
        return type(cls.__name__, (cls,), {"registered": frozenset(names)})

    def unregistered_name(self) -> str | None:
        """The first name this job would import that is not registered: its function, then its callbacks."""
        try:
            names = (self.func_name, self._success_callback_name, self._failure_callback_name, self._stopped_callback_name)
        except Exception:  # data that does not deserialize names nothing Deputy runs
            return "<unreadable job data>"
        return next((UnregisteredJob(name).name for name in names if not self._allowed(name)), None)

    def _allowed(self, name: object) -> bool:
        return name is None or (isinstance(name, str) and name in self.registered)

    def _checked(self, name: object) -> None:
        if not self._allowed(name):
            raise UnregisteredJob(name)

    # The worker refuses such a job before running it; these guard every other path rq takes to an
    # import, such as the failure callback its registry cleanup calls for an abandoned job.
    func = _importing_registered(Job.func, "func_name")
    success_callback = _importing_registered(Job.success_callback, "_success_callback_name")
    failure_callback = _importing_registered(Job.failure_callback, "_failure_callback_name")
    stopped_callback = _importing_registered(Job.stopped_callback, "_stopped_callback_name")

    def send_webhooks(self, status: str | JobStatus, *, exc_string: str | None = None) -> None:
        """Deputy registers no rq webhooks: one on a job was written by someone else, and is not called."""

    def retry(self, queue: Queue, pipeline: Pipeline) -> None:
        interval = self.get_retry_interval()
        # rq retries only a job with retries left; its own retry handles anything else as it always has
        if not interval or not self.retries_left:
            super().retry(queue, pipeline)
            return
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
        check(func, on_failure)
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
