"""The job functions Deputy's workers run, by dotted name: the one list.

Anyone who can write to Deputy's Redis can queue a job naming any importable function (`os.system`).
Workers import and run only the names below, callbacks included (jobs/worker.py, DeputyJob), and
every way Deputy queues work checks its name here first."""
from __future__ import annotations

from typing import Any, Callable, Collection

from agents.scheduling import UnregisteredJob

JOBS: tuple[str, ...] = (
    # the gateway's: one job per message and per button click (bot/gateway.py)
    "jobs.tasks.handle_message",
    "jobs.tasks.handle_decision",
    # runs, and runs resumed after an approval (agents/agent.py RUN_JOB, RESUME_JOB)
    "jobs.agent_jobs.run_plan",
    "jobs.agent_jobs.resume",
    # a reminder at its due time (agents/reminders.py FIRE_JOB)
    "jobs.reminder_jobs.fire_reminder",
    # periodic (jobs/cron.py CRON)
    "jobs.digest_jobs.digest_tick",
    "jobs.inbox_jobs.inbox_tick",
    "jobs.ingest.sweep_retention",
    # `deputy ingest`, `deputy bench queue`
    "jobs.ingest.ingest_file",
    "jobs.bench_jobs.noop",
    # the failure callback of every interactive and scheduled job
    "jobs.tasks.report_failure",
)


def name_of(func: Callable[..., Any] | str) -> str:
    return func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"


def check(*funcs: Callable[..., Any] | str | None, registered: Collection[str] = JOBS) -> None:
    """Raise UnregisteredJob for the first of `funcs` (job functions or callbacks) that is not registered."""
    for func in funcs:
        if func is not None and name_of(func) not in registered:
            raise UnregisteredJob(name_of(func))
