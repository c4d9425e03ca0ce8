"""Faults against the real processes: workers SIGKILLed mid-job, Redis crashed under load, the gateway
killed mid-request. Each counts what the operator would notice: requests lost, answered twice, or
effects (emails) repeated."""
from __future__ import annotations

import asyncio
import random
import time
from typing import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from harness.bench.harness import open_loop
from harness.prove.cluster import Cluster, Lease, PrivateRedis
from harness.prove.effects import AUTONOMOUS_EMAIL_POLICY, Mailbox, policy_file
from harness.prove.platform import ConsolePlatform, Delivery, delivered_at, seen, session, wait_for_replies
from harness.prove.report import Row
from memory.events import EventLog
from kernel.keys import Keys


@dataclass(frozen=True)
class Kill:
    at: float
    pid: int
    # the job the worker was running when it died (None: it was idle)
    job_id: str | None


def busy_workers(cluster: Cluster) -> dict[int, str]:
    """pid → the job it is running, for every worker running one (from rq's started-job registries)."""
    from rq.executions import Execution
    from rq.registry import StartedJobRegistry

    from jobs.queues import QUEUES

    redis = cluster.redis.client()
    out: dict[int, str] = {}
    for queue in QUEUES:
        for job_id, execution_id in StartedJobRegistry(queue, connection=redis).get_job_and_execution_ids(cleanup=False):
            try:
                worker = Execution.fetch(execution_id, job_id, redis).worker_name
                out[int(worker.split("-")[1])] = job_id
            except Exception:  # finished (or renamed) between the two reads
                continue
    return out


async def kill_workers(cluster: Cluster, every_s: float, stop: asyncio.Event, kills: list[Kill]) -> None:
    """SIGKILL a worker every `every_s`, a busy one when there is one (the pool starts a new one)."""
    import os
    import signal

    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=every_s)
            return
        except asyncio.TimeoutError:
            pass
        # aim at a worker in the middle of a job: look for one for up to half a second
        jobs: dict[int, str] = {}
        for _ in range(20):
            alive = set(cluster.worker_pids())
            jobs = {pid: job for pid, job in (await asyncio.to_thread(busy_workers, cluster)).items() if pid in alive}
            if jobs:
                break
            await asyncio.sleep(0.025)
        victims = sorted(jobs) or sorted(alive)
        if not victims:
            continue
        pid = random.choice(victims)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        kills.append(Kill(time.time(), pid, jobs.get(pid)))


async def _load_during(platform: ConsolePlatform, deliveries: list[Delivery], rate: float,
                       fault: Callable[[], Awaitable[None]]) -> None:
    """Offer every delivery open-loop at `rate` while `fault` breaks something, then wait for the fault to end."""
    breaking = asyncio.create_task(fault())
    async with session() as http:
        await open_loop(rate, len(deliveries) / rate, lambda i: platform.deliver(http, deliveries[i]))
    await breaking


def _lost_traces(cluster: Cluster, deliveries: list[Delivery], limit: int = 5) -> list[dict[str, object]]:
    """For acknowledged deliveries that were never answered: what their trace, their job and the
    queues' schedulers show."""
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry
    from rq.scheduler import RQScheduler
    from rq.serializers import JSONSerializer

    from jobs.queues import QUEUES

    redis = cluster.redis.client()
    out: list[dict[str, object]] = []
    for d in deliveries:
        if not d.acked or seen(redis, cluster.workspace, d.thread_id).count or not d.trace_id:
            continue
        try:
            job = Job.fetch(d.trace_id, connection=redis, serializer=JSONSerializer)
            status = str(job.get_status(refresh=True))
            retries_left = job.retries_left
        except Exception as err:  # the job's hash is gone
            status, retries_left = f"missing ({type(err).__name__})", None
        timeline = EventLog(redis, cluster.workspace).timeline(d.trace_id)
        scheduled_at = {q: redis.zscore(ScheduledJobRegistry(q, connection=redis).key, d.trace_id) for q in QUEUES}
        locks = {q: RQScheduler.get_locking_key(q) for q in QUEUES}
        out.append({"trace_id": d.trace_id, "job_status": status, "retries_left": retries_left, "now": time.time(),
                    "scheduled_at": {q: at for q, at in scheduled_at.items() if at is not None},
                    "scheduler_locks": {q: [str(redis.get(key)), redis.ttl(key)] for q, key in locks.items()},
                    "events": [f"{e.kind} {e.summary[:120]}" for e in timeline][-25:]})
        if len(out) >= limit:
            break
    return out


def _reply_checks(cluster: Cluster, deliveries: list[Delivery]) -> tuple[int, int, int]:
    """(lost, duplicated replies, told of a failure) over the acknowledged deliveries."""
    redis = cluster.redis.client()
    lost = duplicated = failed = 0
    for d in deliveries:
        if not d.acked:
            continue
        view = seen(redis, cluster.workspace, d.thread_id)
        lost += view.count == 0
        duplicated += max(0, view.count - 1)
        failed += view.failed
    return lost, duplicated, failed


def worker_kill_storm(folder: Path, requests: int, rate: float, kill_every_s: float, lease: Lease) -> Row:
    """Emails requested through the console while workers are SIGKILLed, again and again."""
    retry_backoff = "1,2,4"
    with Mailbox() as mail:
        redis = PrivateRedis(folder / "redis").start()
        policy = policy_file(folder, "policy.yaml", AUTONOMOUS_EMAIL_POLICY)
        settings = {**mail.settings(), "POLICY_FILE": str(policy), "JOB_RETRIES": "3", "JOB_RETRY_BACKOFF": retry_backoff,
                    # a step's effect lease outlives a dead worker only briefly, so its retry may take over
                    "EFFECT_LEASE_S": str(lease.bound_s), "JOB_TIMEOUT_S": "60"}
        try:
            with Cluster(folder, redis, settings, workers=2, lease=lease).start() as cluster:
                deliveries = [Delivery(i, f"/email ana@prove.example req-{i} | Invoice {i} attached.", f"kill-{i}")
                              for i in range(requests)]
                kills: list[Kill] = []

                async def drive() -> None:
                    platform = ConsolePlatform(cluster.url, cluster.console_token)
                    stop = asyncio.Event()
                    killer = asyncio.create_task(kill_workers(cluster, kill_every_s, stop, kills))
                    async with session() as http:
                        await open_loop(rate, requests / rate, lambda i: platform.deliver(http, deliveries[i]))
                    # keep killing while the backlog drains, then let the pool settle
                    await asyncio.sleep(kill_every_s * 2)
                    stop.set()
                    await killer

                asyncio.run(drive())
                waited = wait_for_replies(cluster.redis.client(), cluster.workspace, deliveries,
                                          timeout_s=lease.bound_s * 4 + 60)
                lost, dup_replies, told_failed = _reply_checks(cluster, deliveries)
                lost_traces = _lost_traces(cluster, deliveries) if lost else []
                client = cluster.redis.client()
                by_trace = {d.trace_id: d for d in deliveries if d.trace_id}
                recoveries = []
                for kill in kills:
                    if kill.job_id and kill.job_id in by_trace:
                        done = delivered_at(client, cluster.workspace, kill.job_id)
                        if done is not None:
                            recoveries.append(done - kill.at)
                sent = mail.by_subject()
                unsent_ok = sum(1 for d in deliveries if d.acked and not seen(client, cluster.workspace, d.thread_id).failed
                                and seen(client, cluster.workspace, d.thread_id).count and sent.get(f"req-{d.index}", 0) == 0)
                failed_but_sent = sum(1 for d in deliveries if seen(client, cluster.workspace, d.thread_id).failed
                                      and sent.get(f"req-{d.index}", 0) > 0)
        finally:
            redis.stop()
    unacked = sum(not d.acked for d in deliveries)
    checks = []
    if unacked:
        checks.append(f"{unacked} requests never acknowledged")
    if unsent_ok:
        checks.append(f"{unsent_ok} replies said 'sent' but no email arrived")
    mid_job = [k for k in kills if k.job_id]
    return Row(
        scenario="worker SIGKILL storm",
        attempts=requests,
        lost=lost,
        duplicated=dup_replies + mail.duplicates(),
        errors_5xx=sum(d.count(500, 599) for d in deliveries),
        max_recovery_s=round(max(recoveries), 2) if recoveries else None,
        failed_checks=tuple(checks),
        notes=(f"{len(kills)} kills ({len(mid_job)} mid-job); {len(mail.messages)} emails for {requests} requests"
               + (f" ({mail.same_id_duplicates()} repeated with the same Message-ID: a kill between the server's 250 and "
                  "the ledger record)" if mail.duplicates() else "") + "; "
               f"{told_failed} told of a failure; recovery bound {lease.bound_s:.0f} s lease+maintenance "
               f"(+ retry backoff {retry_backoff} s)"),
        details={"kills": len(kills), "kills_mid_job": len(mid_job), "emails": len(mail.messages), "told_failed": told_failed,
                 "failed_but_sent": failed_but_sent, "email_duplicates": mail.duplicates(),
                 "email_duplicates_same_message_id": mail.same_id_duplicates(), "drain_s": round(waited, 1), "lease": vars(lease),
                 "lost_traces": lost_traces},
    )


def redis_restart(folder: Path, requests: int, rate: float, down_s: float) -> Row:
    """Redis crashes (SIGKILL) under load and comes back on its append-only file."""
    redis = PrivateRedis(folder / "redis").start()
    try:
        with Cluster(folder, redis, {"JOB_RETRY_BACKOFF": "1"}, workers=2).start() as cluster:
            deliveries = [Delivery(i, f"/remember durable note {i}", f"redis-{i}") for i in range(requests)]
            marks: dict[str, float] = {}

            async def crash() -> None:
                await asyncio.sleep(requests / rate / 3)
                marks["down"] = time.time()
                await asyncio.to_thread(redis.kill)
                await asyncio.sleep(down_s)
                await asyncio.to_thread(redis.start)
                marks["up"] = time.time()

            asyncio.run(_load_during(ConsolePlatform(cluster.url, cluster.console_token, give_up_after_s=120), deliveries, rate, crash))
            waited = wait_for_replies(cluster.redis.client(), cluster.workspace, deliveries, timeout_s=90)
            lost, dup_replies, told_failed = _reply_checks(cluster, deliveries)
            stuck = [d.trace_id for d in deliveries if d.acked and not seen(cluster.redis.client(), cluster.workspace, d.thread_id).count]
    finally:
        redis.stop()
    statuses = [s for d in deliveries for s in d.statuses]
    hit = [d for d in deliveries if d.count(500, 599) or d.no_answer]
    recovery = max((d.acked_at - d.first_at for d in hit if d.acked_at), default=None)
    unacked = sum(not d.acked for d in deliveries)
    checks = [f"{unacked} requests never acknowledged"] if unacked else []
    if not hit:
        checks.append("no request met the outage (nothing was proven)")
    return Row(
        scenario="redis crash + restart under load",
        attempts=requests,
        lost=lost,
        duplicated=dup_replies,
        errors_5xx=sum(500 <= s <= 599 and s != 503 for s in statuses),
        retried_503=sum(s == 503 for s in statuses),
        max_recovery_s=round(recovery, 2) if recovery is not None else None,
        failed_checks=tuple(checks),
        notes=(f"Redis down {marks.get('up', 0) - marks.get('down', 0):.1f} s (SIGKILL, AOF everysec); {len(hit)} requests "
               f"met the outage and were retried by the platform; {told_failed} told of a failure"
               + (f"; {len(stuck)} acknowledged but never answered (see `deputy trace`)" if stuck else "")),
        details={"requests_in_outage": len(hit), "no_answer": sum(d.no_answer for d in deliveries), "drain_s": round(waited, 1),
                 "unanswered_traces": stuck[:20]},
    )


def gateway_kill(folder: Path, requests: int, rate: float, claimed_unqueued: int) -> Row:
    """The gateway is SIGKILLed while requests are in flight; the platform retries each one."""
    redis = PrivateRedis(folder / "redis").start()
    try:
        with Cluster(folder, redis, {"JOB_RETRY_BACKOFF": "1"}, workers=2).start() as cluster:
            deliveries = [Delivery(i, f"/remember gateway note {i}", f"gw-{i}") for i in range(requests)]
            # an older gateway, which claimed an event id before queuing its job, left exactly this behind
            # when it died in between (`pending:<trace>:<claimed at>`); today's gateway claims and queues in one step
            client = cluster.redis.client()
            for d in deliveries[:claimed_unqueued]:
                client.set(Keys.global_("seen", "console", d.client_id), f"pending:{d.index:016x}:{time.time():.3f}", ex=3600)
            marks: dict[str, float] = {}

            async def crash() -> None:
                await asyncio.sleep(requests / rate / 2)
                marks["down"] = time.time()
                await asyncio.to_thread(cluster.kill_gateway)
                await asyncio.to_thread(cluster.start_gateway)
                marks["up"] = time.time()

            asyncio.run(_load_during(ConsolePlatform(cluster.url, cluster.console_token), deliveries, rate, crash))
            waited = wait_for_replies(cluster.redis.client(), cluster.workspace, deliveries, timeout_s=60)
            lost, dup_replies, told_failed = _reply_checks(cluster, deliveries)
    finally:
        redis.stop()
    interrupted = [d for d in deliveries if d.no_answer]
    unacked = sum(not d.acked for d in deliveries)
    checks = [f"{unacked} requests never acknowledged"] if unacked else []
    if not interrupted:
        checks.append("no request met the crash (nothing was proven)")
    recovery = max((d.acked_at - d.first_at for d in interrupted if d.acked_at), default=None)
    return Row(
        scenario="gateway SIGKILL mid-request",
        attempts=requests,
        lost=lost,
        duplicated=dup_replies,
        errors_5xx=sum(d.count(500, 599) for d in deliveries),
        max_recovery_s=round(recovery, 2) if recovery is not None else None,
        failed_checks=tuple(checks),
        notes=(f"gateway down {marks.get('up', 0) - marks.get('down', 0):.1f} s; {len(interrupted)} requests got no answer "
               f"and were retried; {claimed_unqueued} left claimed-but-unqueued by a crash were taken again"),
        details={"interrupted": len(interrupted), "claimed_unqueued": claimed_unqueued, "drain_s": round(waited, 1),
                 "told_failed": told_failed},
    )
