"""The job functions Deputy's workers run, by dotted name: the one list.

Anyone who can write to Deputy's Redis can queue a job naming any importable function (`os.system`).
Workers import and run only the names below, callbacks included (jobs/worker.py, DeputyJob), and
every way Deputy queues work checks its name here first."""
from __future__ import annotations

from typing import Any, Callable, Collection

from agents.scheduling import UnregisteredJob
from kernel import job_names

JOBS: tuple[str, ...] = (
    job_names.HANDLE_MESSAGE,
    job_names.HANDLE_DECISION,
    job_names.RUN_PLAN,
    job_names.RESUME_RUN,
    job_names.FIRE_REMINDER,
    job_names.DIGEST_TICK,
    job_names.INBOX_TICK,
    job_names.SWEEP_RETENTION,
    job_names.INGEST_FILE,
    job_names.PING,
    job_names.REPORT_FAILURE,
)


def name_of(func: Callable[..., Any] | str) -> str:
    return func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"


def check(*funcs: Callable[..., Any] | str | None, registered: Collection[str] = JOBS) -> None:
    """Raise UnregisteredJob for the first of `funcs` (job functions or callbacks) that is not registered."""
    for func in funcs:
        if func is not None and name_of(func) not in registered:
            raise UnregisteredJob(name_of(func))
