"""The scheduler: periodic jobs on rq's CronScheduler. CRON is the one list."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from redis import Redis
from rq import Queue
from rq.cron import CronJob, CronScheduler
from rq.job import Job
from rq.serializers import JSONSerializer

from kernel.metrics import Metrics, job_kind, metrics_dir, process_metrics
from kernel.settings import Settings
from jobs.digest_jobs import digest_tick
from jobs.heartbeat import Heartbeats, Pulse
from jobs.inbox_jobs import inbox_tick
from jobs.ingest import sweep_retention

log = logging.getLogger("deputy.cron")


@dataclass(frozen=True)
class Periodic:
    func: Callable[..., Any]
    queue: str
    interval_s: int | None = None
    cron: str | None = None


# The one list of periodic jobs (each takes {"workspace": name}).
CRON: list[Periodic] = [
    # every minute; the job itself decides whether today's digest is due in the operator's time zone
    Periodic(digest_tick, "background", interval_s=60),
    # every minute; the job itself decides whether this INBOX_TRIAGE_EVERY_MIN slot's triage is due
    Periodic(inbox_tick, "background", interval_s=60),
    # semantic memories past their project's retention_days
    Periodic(sweep_retention, "background", interval_s=3_600),
]


class JsonCronJob(CronJob):
    """rq's CronJob enqueues with the default (pickle) serializer; Deputy's workers read JSON only."""

    def enqueue(self, connection: Redis) -> Job:
        queue = Queue(self.queue_name, connection=connection, serializer=JSONSerializer)
        with connection.pipeline() as pipeline:
            job = queue.enqueue(self.func, args=self.args, kwargs=self.kwargs, **self.job_options, pipeline=pipeline)
            pipeline.zadd(self.job_history_key, {job.id: job.enqueued_at.timestamp()})  # type: ignore[union-attr]
            pipeline.execute()
        return job


class Scheduler(CronScheduler):
    """rq's cron loop, beating for `deputy health --role cron` from the loop itself (a stuck loop goes stale):
    it wakes at least every heartbeat interval, rather than rq's 60 s, to do so."""

    pulse: Pulse | None = None
    # periodic jobs put on a queue, counted in this process (build_scheduler sets it)
    metrics: Metrics | None = None

    def enqueue_jobs(self) -> list[CronJob]:
        enqueued = super().enqueue_jobs()
        if self.metrics is not None:
            for job in enqueued:
                self.metrics.cron_enqueued.labels(job_kind(job.func_name)).inc()
        return enqueued

    def heartbeat(self) -> None:
        super().heartbeat()
        if self.pulse is not None:
            self.pulse.beat_if_due()

    def calculate_sleep_interval(self) -> float:
        interval = super().calculate_sleep_interval()
        return interval if self.pulse is None else min(interval, self.pulse.every_s)

    def register(self, func: Callable[..., Any], queue_name: str, args: tuple | None = None, kwargs: dict | None = None,  # type: ignore[override]
                 interval: int | None = None, cron: str | None = None, **options: Any) -> CronJob:
        job = JsonCronJob(queue_name=queue_name, func=func, args=args, kwargs=kwargs, interval=interval, cron=cron, **options)
        self._cron_jobs.append(job)
        return job


def build_scheduler(redis: Redis, settings: Settings, periodic: list[Periodic] | None = None, metrics: Metrics | None = None) -> Scheduler:
    scheduler = Scheduler(connection=redis, logging_level="WARNING")
    scheduler.metrics = metrics
    for item in CRON if periodic is None else periodic:
        scheduler.register(item.func, queue_name=item.queue, interval=item.interval_s, cron=item.cron,
                           args=({"workspace": settings.workspace},))
    return scheduler


def run_cron(redis: Redis, settings: Settings) -> None:
    scheduler = build_scheduler(redis, settings, metrics=process_metrics(metrics_dir(settings.data_dir, settings.metrics_dir)))
    log.info("cron: %d periodic jobs", len(scheduler.get_jobs()))
    with Pulse(Heartbeats(redis), "cron", settings.health.heartbeat_s) as scheduler.pulse:
        scheduler.start()
