"""Inbox triage on a schedule: every INBOX_TRIAGE_EVERY_MIN minutes, unseen mail becomes tasks.

A cron tick (every minute) runs `email.triage_inbox` once per time slot, however many `deputy cron`
processes tick: the slot is claimed in Redis, and the capability call runs under the slot's
idempotency key, so a worker killed mid-way is taken over, never doubled (the capability dedupes by
Message-ID). New tasks show in the next digest; a failure is recorded as the run's `job.failed`,
which the digest lists under "Failed"."""
from __future__ import annotations

import logging
import time
from typing import Any

from integrations.capability import EffectContext
from integrations.invoke import call
from jobs.runtime import Runtime, current_runtime
from kernel.keys import Keys

log = logging.getLogger("deputy.inbox")

CAPABILITY = "email.triage_inbox"


def inbox_tick(payload: dict[str, Any]) -> dict[str, Any]:
    """Cron entry point (every minute). `now` (epoch seconds) replays a moment."""
    rt = current_runtime()
    return triage_if_due(rt, float(payload.get("now") or time.time()))


def triage_if_due(rt: Runtime, now: float) -> dict[str, Any]:
    every_s = rt.settings.imap.triage_every_min * 60
    if every_s <= 0 or CAPABILITY not in rt.agent.executor.capabilities:
        return {"ran": False, "reason": "off (INBOX_TRIAGE_EVERY_MIN=0 or no IMAP_HOST)"}
    executor = rt.agent.executor
    capability = executor.capabilities[CAPABILITY]
    slot = int(now // every_s)
    ws = rt.settings.workspace
    if not rt.redis.set(Keys(ws)("inbox", "triage", str(slot)), "1", nx=True, ex=every_s * 2):
        return {"ran": False, "reason": "this slot's triage has run"}
    trace_id = f"inbox-{slot}"
    rt.events.record(trace_id, "intent.recognized", actor="cron", intent="inbox triage", source="schedule", confidence=1.0, slots={})
    rt.events.record(trace_id, "job.started", actor="cron", job="inbox_triage")
    ctx = EffectContext(idempotency_key=f"inbox-triage:{slot}", workspace=ws, trace_id=trace_id, run_id=trace_id)
    try:
        done = call(capability, {}, ctx, executor.ledger, executor.breakers.for_(CAPABILITY))
    except Exception as err:  # the capability already retried what was worth retrying
        log.warning("inbox triage failed: %s", err)
        rt.events.record(trace_id, "job.failed", actor="cron", job="inbox_triage", error=f"{type(err).__name__}: {err}"[:300])
        return {"ran": True, "ok": False, "error": str(err)}
    tasks = [{"task_id": t.task_id, "title": t.title} for t in done.output.tasks]  # type: ignore[attr-defined]
    rt.events.record(trace_id, "inbox.triaged", actor="cron", tasks=tasks, replayed=done.replayed)
    rt.events.record(trace_id, "job.finished", actor="cron", job="inbox_triage", ok=True)
    return {"ran": True, "ok": True, "tasks": len(tasks)}
