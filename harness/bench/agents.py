"""`deputy bench agents`: runs through the running system (gateway → queue → worker pool → connectors).

Two workloads on a scratch database, with a local SMTP server standing in for the mail relay:
  read-only   two-step lookup plans that policy runs at once
  approval    email plans that stop at an approval card; then every card is approved and the email sent
Figures: plans/s, step latency (the capability call with its ledger claim and record) p50/p99, the
request-to-finished latency of whole plans p50/p99, and the worker time of one request's job p50/p99."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any, Callable

from redis import Redis
from rq import Worker

from kernel.messages import Intent
from harness.bench.harness import base_parser, child, flush, percentile, scratch_url, wait_for
from bot.async_redis import async_redis
from bot.refusals import Refusals
from bot.gateway import Gateway
from kernel.messages import Decision, Inbound
from kernel.settings import Settings
from jobs.queues import JobQueues
from memory.events import EventLog
from kernel.keys import Keys


class BenchRecognizer:
    """Text is 'lookup NAME' or 'email ADDRESS': the bench measures agents, not intent recognition."""

    def recognize(self, inbound: Inbound) -> Intent:
        verb, _, rest = inbound.text.partition(" ")
        if verb == "lookup":
            return Intent(name="lookup", text=inbound.text, slots={"query": rest})
        return Intent(name="email", text=inbound.text, slots={"to": rest, "subject": "Quarterly numbers", "body": "Attached."})


def _status(redis: Redis, workspace: str, trace_id: str) -> str:
    raw = redis.hget(Keys(workspace)("run", f"run-{trace_id}"), "status")
    return raw.decode() if raw else ""


def _waiter(redis: Redis, workspace: str, traces: list[str], status: str) -> Callable[[], bool]:
    """A check that is true once every trace's run has `status`. Runs finish roughly in the order they were
    asked for, so each poll reads only the oldest unfinished few: polling all of them would steal the CPU
    the workers are being measured on."""
    pending = list(traces)

    def check() -> bool:
        head = pending[:20]
        pipe = redis.pipeline(transaction=False)
        for trace in head:
            pipe.hget(Keys(workspace)("run", f"run-{trace}"), "status")
        finished = {t for t, s in zip(head, pipe.execute()) if s and s.decode() == status}
        pending[:] = [t for t in pending if t not in finished]
        return not pending

    return check


def _figures(events: EventLog, traces: list[str], started: str, finished: str = "run.finished") -> dict[str, float]:
    step_ms: list[float] = []
    plan_ms: list[float] = []
    job_ms: list[float] = []
    for trace in traces:
        timeline = events.timeline(trace)
        step_ms += [float(e.data["ms"]) for e in timeline if e.kind == "step.done"]
        # the worker time of the job that planned and ran the request (handle_message), queueing excluded
        job_ms += [float(e.data["ms"]) for e in timeline if e.kind == "job.finished" and "ms" in e.data]
        begin = next((e.ts for e in timeline if e.kind == started), None)
        end = next((e.ts for e in reversed(timeline) if e.kind == finished), None)
        if begin is not None and end is not None:
            plan_ms.append((end - begin) * 1000)
    return {
        "step_p50_ms": round(percentile(step_ms, 50), 2), "step_p99_ms": round(percentile(step_ms, 99), 2),
        "plan_p50_ms": round(percentile(plan_ms, 50), 1), "plan_p99_ms": round(percentile(plan_ms, 99), 1),
        "job_p50_ms": round(percentile(job_ms, 50), 1), "job_p99_ms": round(percentile(job_ms, 99), 1),
        "steps": len(step_ms),
    }


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    parser = base_parser("agents")
    parser.add_argument("--plans", type=int, default=300, help="read-only plans")
    parser.add_argument("--approvals", type=int, default=100, help="approval-gated email plans")
    parser.add_argument("--workers", type=int, default=settings.workers, help="worker processes")
    args = parser.parse_args(argv)
    from harness.fakes.smtp_server import SmtpServer  # a real SMTP server (aiosmtpd, a test extra)

    logging.getLogger("mail.log").setLevel(logging.WARNING)

    url = scratch_url(settings, args.redis_url)
    flush(url)
    redis = Redis.from_url(url)
    ws = settings.workspace
    events = EventLog(redis, ws)
    # the gateway's path is async: this process drives it from one event loop of its own, one delivery at a time
    loop, aredis = asyncio.Runner(), async_redis(url)
    gateway = Gateway(redis=redis, aredis=aredis, operators={"bench": frozenset({"operator"})}, queues=JobQueues(redis, 0),
                      recognizer=BenchRecognizer(), events=events, refusals=Refusals(aredis, events, ws))
    smtp = SmtpServer().start()
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_SECURITY": "none", "SMTP_FROM": "me@bench.example",
           "CONSOLE_OPERATORS": "operator", "APPROVERS": "operator", "WORKSPACE": ws}
    try:
        with child(["worker", "--workers", str(args.workers)], url, **env):
            wait_for(lambda: Worker.count(connection=redis) >= args.workers, 30, "workers to start")

            def say(text: str) -> str:
                return loop.run(gateway.accept(Inbound(channel="bench", event_id=uuid.uuid4().hex, user_id="operator",
                                                       thread_id="bench", text=text))).trace_id

            began = time.perf_counter()
            reads = [say(f"lookup client{i}") for i in range(args.plans)]
            wait_for(_waiter(redis, ws, reads, "done"), 300, "read-only plans")
            read_s = time.perf_counter() - began

            began = time.perf_counter()
            mails = [say(f"email client{i}@example.com") for i in range(args.approvals)]
            wait_for(_waiter(redis, ws, mails, "awaiting_approval"), 300, "approval cards")
            ask_s = time.perf_counter() - began
            approvals = []
            for trace in mails:
                raw = redis.get(Keys(ws)("approval", "step", f"run-{trace}", 0))
                approvals.append(raw.decode())
            began = time.perf_counter()
            for approval_id in approvals:
                loop.run(gateway.decide(Decision(channel="bench", event_id=uuid.uuid4().hex, user_id="operator", thread_id="bench",
                                                 action="approval.approve", value=approval_id)))
            wait_for(_waiter(redis, ws, mails, "done"), 300, "approved emails")
            send_s = time.perf_counter() - began
        sent = len(smtp.messages)
    finally:
        smtp.stop()
        loop.run(aredis.aclose())
        loop.close()
    result = {
        "workers": args.workers,
        "read_only": {"plans": args.plans, "plans_per_s": round(args.plans / read_s, 1),
                      **_figures(events, reads, "inbound.received")},
        "approval": {
            "plans": args.approvals,
            "to_card_per_s": round(args.approvals / ask_s, 1),
            "approved_to_sent_per_s": round(args.approvals / send_s, 1),
            **_figures(events, mails, "approval.decided"),
            "emails_received": sent,
        },
    }
    flush(url)
    return result
