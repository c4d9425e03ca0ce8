"""Job functions the worker tests enqueue (module level, importable by a worker process)."""
from __future__ import annotations

import time
from typing import Any

from rq import get_current_job

import jobs.registry

# what a worker under test runs: Deputy's job functions and these
JOBS = (*jobs.registry.JOBS, "tests.jobs.work.slow_or_stuck")


def slow_or_stuck(payload: dict[str, Any]) -> int:
    """First attempt: announce itself, then hang (to be killed) or sleep; later attempts finish."""
    redis = get_current_job().connection
    key = payload["key"]
    attempt = int(redis.incr(f"{key}:attempts"))
    redis.set(f"{key}:started", attempt)
    if attempt == 1:
        time.sleep(payload["first_attempt_s"])
    redis.incr(f"{key}:done")
    return attempt
