"""What Redis holds, read when /metrics is scraped: queue depth and the oldest job's age per queue, the
outbox's undelivered replies, approvals waiting for a person, each capability's circuit breaker, spend
per project and refused requests. Two pipelined round trips per scrape; nothing is pushed, so the
acknowledgement path pays nothing for these."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job
from rq.utils import utcparse

from agents.approvals import Approval, ApprovalStore
from agents.costs import CostLedger, usd
from bot.refusals import counts_key
from integrations.breaker import BreakerStatus, Breakers, breaker_status
from jobs.queues import QUEUES
from kernel.outbox import GROUP, STREAM
from kernel.settings import Settings

log = logging.getLogger("deputy.metrics")

BREAKER_VALUE = {"closed": 0, "half_open": 1, "open": 2}


@dataclass
class QueueState:
    depth: int = 0
    oldest_age_s: float = 0.0
    running: int = 0
    scheduled: int = 0
    failed: int = 0


@dataclass
class Reading:
    """One scrape's view of the store."""

    queues: dict[str, QueueState] = field(default_factory=dict)
    outbox_undelivered: int = 0
    outbox_oldest_age_s: float = 0.0
    approvals_pending: int = 0
    approvals_oldest_age_s: float = 0.0
    breakers: dict[str, BreakerStatus] = field(default_factory=dict)
    spend: dict[tuple[str, str], float] = field(default_factory=dict)  # (project, day|month) → USD
    refusals: dict[tuple[str, str], int] = field(default_factory=dict)  # (channel, reason) → count


class StoreCollector(Collector):
    """Gauges read from Redis at scrape time for the workspace of `settings`; `capabilities` names the breakers."""

    def __init__(self, redis: Redis, settings: Settings, capabilities: Sequence[str], clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.clock = clock
        self.cooldown_s = settings.effects.breaker_cooldown_s
        self.queues = {name: Queue(name, connection=redis) for name in QUEUES}
        self.approvals = ApprovalStore(redis, settings.workspace)
        self.ledger = CostLedger(redis, settings.workspace, settings.timezone)
        breakers = Breakers(redis, settings.workspace, settings.effects.breaker_failures, settings.effects.breaker_cooldown_s)
        self.breaker_keys = {name: breakers.for_(name).key for name in sorted(capabilities)}
        self.refusals_key = counts_key(settings.workspace)

    def collect(self) -> Iterator[Metric]:
        try:
            reading = self.read()
        except RedisError as err:
            log.warning("metrics: Redis could not be read: %s", err)
            yield GaugeMetricFamily("deputy_redis_up", "Whether the gateway could read Deputy's store for this scrape", value=0)
            return
        yield GaugeMetricFamily("deputy_redis_up", "Whether the gateway could read Deputy's store for this scrape", value=1)
        yield from families(reading)

    def read(self) -> Reading:
        now = self.clock()
        first = self.redis.pipeline(transaction=False)
        first.time()
        for queue in self.queues.values():
            first.llen(queue.key)
            first.lindex(queue.key, 0)
            first.zcard(queue.started_job_registry.key)
            first.zcard(queue.scheduled_job_registry.key)
            first.zcard(queue.failed_job_registry.key)
        first.xinfo_groups(STREAM)
        first.xpending(STREAM, GROUP)
        pending_key = self.approvals.keys("approvals", "pending")
        first.zcount(pending_key, now, "+inf")
        first.zrangebyscore(pending_key, now, "+inf", start=0, num=1)
        for key in self.breaker_keys.values():
            first.hgetall(key)
        today = self.ledger.today()
        first.hgetall(self.ledger.day_key(today))
        first.hgetall(self.ledger.month_key(today))
        first.hgetall(self.refusals_key)
        answers = iter(first.execute(raise_on_error=False))
        redis_now = _redis_seconds(next(answers), now)
        reading = Reading()
        heads = self._queues(reading, answers)
        unread_after = self._outbox(reading, next(answers), next(answers), redis_now)
        reading.approvals_pending = _int(next(answers))
        oldest_approval = [_text(a) for a in _ok(next(answers), [])][:1]
        for name in self.breaker_keys:
            reading.breakers[name] = breaker_status(_ok(next(answers), {}), redis_now, self.cooldown_s)
        reading.spend = _spend(_ok(next(answers), {}), _ok(next(answers), {}))
        reading.refusals = _refusals(_ok(next(answers), {}))
        self._second_round(reading, heads, oldest_approval, unread_after, now, redis_now)
        return reading

    def _queues(self, reading: Reading, answers: Iterator[Any]) -> dict[str, str]:
        heads = {}
        for name in self.queues:
            depth, head, running, scheduled, failed = (next(answers) for _ in range(5))
            reading.queues[name] = QueueState(depth=_int(depth), running=_int(running), scheduled=_int(scheduled), failed=_int(failed))
            if isinstance(head, (bytes, str)):
                heads[name] = _text(head)
        return heads

    @staticmethod
    def _outbox(reading: Reading, groups: Any, pending: Any, redis_now: float) -> str | None:
        """Undelivered replies: read by a dispatcher and not yet acknowledged, plus those not read at all.
        When only unread ones wait, returns the id after which nothing was read (the oldest is fetched next)."""
        group = next((g for g in _ok(groups, []) if _text(g.get("name", b"")) == GROUP), None)
        if group is None:
            return None
        reading.outbox_undelivered = _int(group.get("pending")) + _int(group.get("lag"))
        oldest = _ok(pending, {}).get("min")
        if oldest:
            reading.outbox_oldest_age_s = _stream_age(oldest, redis_now)
            return None
        return _text(group.get("last-delivered-id") or b"0-0") if reading.outbox_undelivered else None

    def _second_round(self, reading: Reading, heads: dict[str, str], approval: list[str], unread_after: str | None,
                      now: float, redis_now: float) -> None:
        """What the first answers point at: each queue's first job, the oldest approval, the first unread reply."""
        second = self.redis.pipeline(transaction=False)
        for job_id in heads.values():
            second.hget(Job.key_for(job_id), "enqueued_at")
        for approval_id in approval:
            second.get(self.approvals.keys("approval", approval_id))
        if unread_after is not None:
            second.xrange(STREAM, min=f"({unread_after}", count=1)
        if not len(second):
            return
        answers = iter(second.execute(raise_on_error=False))
        for name in heads:
            stamp = next(answers)
            if isinstance(stamp, (bytes, str)):
                reading.queues[name].oldest_age_s = max(0.0, now - utcparse(_text(stamp)).timestamp())
        if approval:
            raw = next(answers)
            if isinstance(raw, (bytes, str)):
                reading.approvals_oldest_age_s = max(0.0, now - Approval.model_validate_json(raw).created_at)
        if unread_after is not None:
            entries = _ok(next(answers), [])
            if entries:
                reading.outbox_oldest_age_s = _stream_age(entries[0][0], redis_now)


def families(reading: Reading) -> Iterator[Metric]:
    """The Prometheus families of one reading."""
    queue_gauges = (
        ("deputy_queue_depth", "Jobs waiting in a queue for a worker", "depth"),
        ("deputy_queue_oldest_age_seconds", "How long the first job in a queue has waited (0 when it is empty)", "oldest_age_s"),
        ("deputy_queue_running", "Jobs a worker has started and not finished, per queue", "running"),
        ("deputy_queue_scheduled", "Jobs waiting for their time: retries after a backoff, reminders, per queue", "scheduled"),
        ("deputy_queue_failed", "Jobs that failed for good and are kept for inspection, per queue", "failed"),
    )
    for name, doc, attribute in queue_gauges:
        family = GaugeMetricFamily(name, doc, labels=["queue"])
        for queue, state in reading.queues.items():
            family.add_metric([queue], getattr(state, attribute))
        yield family
    yield GaugeMetricFamily("deputy_outbox_undelivered", "Replies in the outbox not yet delivered to their channel",
                            value=reading.outbox_undelivered)
    yield GaugeMetricFamily("deputy_outbox_oldest_age_seconds", "How long the oldest undelivered reply has waited (outbox lag)",
                            value=reading.outbox_oldest_age_s)
    yield GaugeMetricFamily("deputy_approvals_pending", "Approvals waiting for a person's decision", value=reading.approvals_pending)
    yield GaugeMetricFamily("deputy_approvals_oldest_age_seconds", "How long the oldest pending approval has waited",
                            value=reading.approvals_oldest_age_s)
    yield from _breaker_families(reading)
    spend = GaugeMetricFamily("deputy_spend_usd", "Model spend per project today and this month (operator's time zone), in USD",
                              labels=["project", "period"])
    for (project, period), value in sorted(reading.spend.items()):
        spend.add_metric([project, period], value)
    yield spend
    refused = CounterMetricFamily("deputy_refusals", "Refused requests (forged, cross-site, strangers, unknown hosts) by channel and reason",
                                  labels=["channel", "reason"])
    for (channel, reason), count in sorted(reading.refusals.items()):
        refused.add_metric([channel, reason], count)
    yield refused


def _breaker_families(reading: Reading) -> Iterator[Metric]:
    # a capability's connector is the first part of its name (email.send → email)
    state = GaugeMetricFamily("deputy_breaker_state", "Circuit breaker per capability: 0 closed, 1 half-open (one probe), 2 open",
                              labels=["connector", "capability"])
    failures = GaugeMetricFamily("deputy_breaker_failures", "Consecutive failures counted by a capability's breaker",
                                 labels=["connector", "capability"])
    for name, status in reading.breakers.items():
        labels = [name.partition(".")[0], name]
        state.add_metric(labels, BREAKER_VALUE[status.state])
        failures.add_metric(labels, status.failures)
    yield state
    yield failures


def _spend(day: dict[Any, Any], month: dict[Any, Any]) -> dict[tuple[str, str], float]:
    spend = {}
    for period, row in (("day", day), ("month", month)):
        for key, value in row.items():
            name = _text(key)
            if name.startswith("p:"):
                spend[(name[2:], period)] = usd(_int(value))
    return spend


def _refusals(row: dict[Any, Any]) -> dict[tuple[str, str], int]:
    counts = {}
    for key, value in row.items():
        channel, _, reason = _text(key).partition(":")
        counts[(channel, reason)] = _int(value)
    return counts


def _ok(answer: Any, default: Any) -> Any:
    """A pipelined answer, or `default` where Redis answered with an error (a stream not made yet)."""
    return default if isinstance(answer, Exception) or answer is None else answer


def _int(value: Any) -> int:
    if isinstance(value, Exception) or value is None:
        return 0
    return int(value.decode() if isinstance(value, bytes) else value)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _redis_seconds(answer: Any, fallback: float) -> float:
    if isinstance(answer, (tuple, list)) and len(answer) == 2:
        return answer[0] + answer[1] / 1e6
    return fallback


def _stream_age(entry_id: Any, redis_now: float) -> float:
    """A stream entry's age: its id starts with the milliseconds Redis stamped it with."""
    return max(0.0, redis_now - int(_text(entry_id).partition("-")[0]) / 1000)
