"""How agents ask for work to happen now or later without knowing about queues."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class JobScheduler(Protocol):
    """Runs a job function (by dotted name, JSON payload) now or at a moment; a job id runs once."""

    def run_now(self, func: str, payload: dict[str, Any], job_id: str) -> None: ...

    def run_at(self, func: str, payload: dict[str, Any], job_id: str, at: datetime) -> None: ...


class UnregisteredJob(ValueError):
    """A dotted name that is not one of Deputy's job functions (jobs/registry.py); it is refused, never imported.

    Names come back from Redis (a spend request's resume job, a queued job), where anyone who can
    write to Redis could have put any importable function."""

    def __init__(self, name: object) -> None:
        self.name = (name if isinstance(name, str) else repr(name))[:200]
        super().__init__(f"{self.name!r} is not one of Deputy's job functions")
