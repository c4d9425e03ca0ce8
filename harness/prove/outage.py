"""Connector outages: the operator's mail server answers "try again later", stops answering in time, or
hangs past the job timeout, while requests keep coming; then it comes back.

Each request is an operator's `/email` that policy lets run without a click, so every job has a real
effect to make. What must hold: retries with backoff, the shared circuit breaker opens during the
outage and closes again once a half-open probe succeeds after it; every request ends with a reply the
operator sees (sent, or why not); no email is delivered twice; and how long after the outage ended
mail went out again."""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.bench.harness import open_loop
from harness.prove.cluster import Cluster, PrivateRedis
from harness.prove.effects import AUTONOMOUS_EMAIL_POLICY, policy_file
from harness.prove.platform import ConsolePlatform, Delivery, seen, session, wait_for_replies
from harness.prove.report import Row
from harness.prove.sink import Mode, OutageMailServer
from memory.events import EventLog
from kernel.keys import Keys

CAPABILITY = "email.send"
# what ends a request for the operator: the run finished (done or failed), or the job gave up and said so
FINAL = {"run.finished", "job.failed"}


@dataclass(frozen=True)
class Outage:
    """One outage: how the target misbehaves, for how long, and the timings that meet it."""

    mode: Mode
    outage_s: float
    # traffic keeps coming this long after the target is back
    after_s: float
    rate: float
    settings: dict[str, str]
    slow_s: float = 3.0


@dataclass
class BreakerWatch:
    """Samples the shared breaker's hash in Redis: when it opened, and when it closed again."""

    key: str
    opened_at: list[float] = field(default_factory=list)
    closed_at: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, cluster: Cluster) -> "BreakerWatch":
        def watch() -> None:
            client = cluster.redis.client()
            was_open = False
            while not self._stop.is_set():
                try:
                    opened = float(client.hget(self.key, "opened_at") or 0)
                except Exception:
                    opened = 0.0
                if opened and opened not in self.opened_at:
                    self.opened_at.append(opened)
                if was_open and not opened:
                    self.closed_at.append(time.time())
                was_open = bool(opened)
                self._stop.wait(0.05)

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)


def _final_kinds(cluster: Cluster, trace_id: str | None) -> set[str]:
    if not trace_id:
        return set()
    return {e.kind for e in EventLog(cluster.redis.client(), cluster.workspace).timeline(trace_id)} & FINAL


LABELS = {"unavailable": "SMTP answers 451 (try later)", "timeout": "SMTP too slow to answer",
          "hang": "SMTP hangs past the job timeout"}


def connector_outage(folder: Path, outage: Outage) -> Row:
    marks: dict[str, float] = {}
    with OutageMailServer(slow_s=outage.slow_s) as mail:
        redis = PrivateRedis(folder / "redis").start()
        policy = policy_file(folder, "policy.yaml", AUTONOMOUS_EMAIL_POLICY)
        settings = {**mail.settings(), "POLICY_FILE": str(policy), "BREAKER_FAILURES": "3", "BREAKER_COOLDOWN_S": "2",
                    **outage.settings}
        try:
            with Cluster(folder, redis, settings, workers=2).start() as cluster:
                total = int(outage.rate * (outage.outage_s + outage.after_s + 0.5))
                deliveries = [Delivery(i, f"/email ana@prove.example req-{i} | Order {i} has shipped.", f"outage-{i}")
                              for i in range(total)]
                watch = BreakerWatch(Keys(cluster.workspace)("breaker", CAPABILITY)).start(cluster)

                async def drive() -> None:
                    platform = ConsolePlatform(cluster.url, cluster.console_token)

                    async def outage_window() -> None:
                        await asyncio.sleep(0.5)
                        marks["down"] = time.time()
                        mail.set_mode(outage.mode)
                        await asyncio.sleep(outage.outage_s)
                        mail.set_mode("up")
                        marks["up"] = time.time()

                    window = asyncio.create_task(outage_window())
                    async with session() as http:
                        await open_loop(outage.rate, total / outage.rate, lambda i: platform.deliver(http, deliveries[i]))
                    await window

                asyncio.run(drive())
                client = cluster.redis.client()
                waited = wait_for_replies(client, cluster.workspace, deliveries, timeout_s=120)
                time.sleep(1.0)  # a second reply or email, if there were one, would be on its way by now
                watch.stop()
                views = {d.index: seen(client, cluster.workspace, d.thread_id) for d in deliveries}
                unfinished = [d.trace_id for d in deliveries if d.acked and not _final_kinds(cluster, d.trace_id)]
                events = EventLog(client, cluster.workspace)
                job_timeouts = sum(1 for e in events.since(marks.get("down", 0) - 5, kinds=["job.retry", "job.failed"])
                                   if "Timeout" in str(e.data.get("error", "")))
                in_doubt = sum(1 for e in events.since(marks.get("down", 0) - 5, kinds=["step.failed"])
                               if "may or may not have happened" in str(e.data.get("error", "")))
                breaker_left = client.hgetall(Keys(cluster.workspace)("breaker", CAPABILITY))
        finally:
            redis.stop()
    down, up = marks.get("down", 0.0), marks.get("up", 0.0)
    sent = mail.by_subject()
    tries = mail.tries_by_subject()
    acked = [d for d in deliveries if d.acked]
    lost = sum(views[d.index].count == 0 for d in acked)
    dup_replies = sum(max(0, views[d.index].count - 1) for d in acked)
    dup_emails = sum(max(0, n - 1) for n in sent.values())
    told_failed = sum(views[d.index].failed for d in acked)
    said_sent_not_sent = [d.index for d in acked if views[d.index].count and not views[d.index].failed
                          and sent.get(f"req-{d.index}", 0) == 0]
    failed_but_sent = sum(1 for d in acked if views[d.index].failed and sent.get(f"req-{d.index}", 0))
    retried = {k: ts for k, ts in tries.items() if len(ts) > 1}
    gaps = [round(b.started - a.answered, 2) for ts in retried.values() for a, b in zip(ts, ts[1:])]
    opened_in_outage = [t for t in watch.opened_at if down <= t <= up + 0.5]
    closed_after = [t for t in watch.closed_at if t >= up]
    # mail that went out again: the first message whose DATA began after the server was back
    tried_in_outage = sum(down <= t <= up for t in mail.handler.connections)
    after = sorted(a.answered for a in mail.handler.attempts if a.accepted and a.started >= up)
    recovery = round(after[0] - up, 2) if after else None
    checks = []
    if sum(not d.acked for d in deliveries):
        checks.append(f"{sum(not d.acked for d in deliveries)} requests never acknowledged")
    if said_sent_not_sent:
        checks.append(f"{len(said_sent_not_sent)} replies said sent but no email arrived, e.g. req-{said_sent_not_sent[0]}")
    if not opened_in_outage:
        checks.append("the breaker never opened during the outage")
    if not closed_after or breaker_left:
        checks.append("the breaker did not close after the outage (no successful half-open probe)")
    if told_failed == 0:
        checks.append("nobody was told of a failure: the outage was not met")
    if unfinished:
        checks.append(f"{len(unfinished)} requests never reached a final state, e.g. trace {unfinished[0]}")
    if recovery is None:
        checks.append("no email went out after the outage ended")
    if outage.mode == "hang" and not job_timeouts:
        checks.append("no job ran past its timeout: the hang was not met")
    if outage.mode == "unavailable" and not retried:
        checks.append("no send was retried")
    return Row(
        scenario=f"connector outage: {LABELS[outage.mode]}",
        attempts=len(deliveries),
        lost=lost,
        duplicated=dup_replies + dup_emails,
        errors_5xx=sum(d.count(500, 599) for d in deliveries),
        max_recovery_s=recovery,
        failed_checks=tuple(checks),
        notes=(f"server down {up - down:.1f} s; {told_failed} told of a failure in the thread, {len(acked) - told_failed} sent; "
               f"breaker opened {len(watch.opened_at)}x, closed {round(closed_after[0] - up, 2) if closed_after else '-'} s after "
               f"the outage; {tried_in_outage} connection attempts while down; {len(mail.handler.delivered)} emails for "
               f"{len(sent)} requests"
               + (f"; {job_timeouts} jobs cut short by the job timeout" if job_timeouts else "")
               + (f"; {in_doubt} reported in doubt (held DATA)" if in_doubt else "")
               + (f" ({failed_but_sent} of them did go out once the server was back: never twice)" if failed_but_sent else "")),
        details={"outage_s": round(up - down, 2), "told_failed": told_failed, "attempts_while_down": tried_in_outage, "emails": len(mail.handler.delivered),
                 "duplicate_emails": dup_emails, "retried_sends": len(retried),
                 "max_attempts_per_send": max((len(ts) for ts in tries.values()), default=0), "retry_gaps_s": gaps[:12],
                 "breaker_opened": len(watch.opened_at), "breaker_opened_in_outage": len(opened_in_outage),
                 "breaker_closed_after_s": round(closed_after[0] - up, 2) if closed_after else None,
                 "job_timeouts": job_timeouts, "in_doubt": in_doubt, "failed_but_sent": failed_but_sent,
                 "unfinished": unfinished[:10], "drain_s": round(waited, 1)},
    )
