"""How agents ask for work to happen now or later without knowing about queues."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class JobScheduler(Protocol):
    """Runs a job function (by dotted name, JSON payload) now or at a moment; a job id runs once."""

    def run_now(self, func: str, payload: dict[str, Any], job_id: str) -> None: ...

    def run_at(self, func: str, payload: dict[str, Any], job_id: str, at: datetime) -> None: ...
