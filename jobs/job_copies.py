"""Jobs whose payload, description, error or result quote a forgotten text (rq keeps finished and
failed jobs for a while, and a failed job's payload is the request as it was): found and deleted."""
from __future__ import annotations

import re
import zlib
from typing import Iterator

from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer

from memory.redis_copies import Found

STORE = "jobs (failed and finished)"


class JobCopies:
    """rq's job records in the workspace's Redis; the job running the forgetting itself is left alone."""

    def __init__(self, redis: Redis, current_job_id: str | None = None) -> None:
        self.redis = redis
        self.current_job_id = current_job_id

    def find(self, pattern: re.Pattern[str]) -> Found:
        return self._sweep(pattern, delete=False)

    def wipe(self, pattern: re.Pattern[str]) -> Found:
        return self._sweep(pattern, delete=True)

    def _sweep(self, pattern: re.Pattern[str], delete: bool) -> Found:
        found = Found()
        for job_id in self._quoting(pattern):
            found.count(STORE, "")
            if delete:
                self._delete(job_id)
        return found

    def _quoting(self, pattern: re.Pattern[str]) -> Iterator[str]:
        for raw in self.redis.scan_iter(match="rq:job:*", count=1_000):
            key = raw.decode()
            job_id = key.removeprefix("rq:job:")
            if ":" in job_id or job_id == self.current_job_id or self.redis.type(key) != b"hash":
                continue
            values = list(self.redis.hvals(key)) + [v for _, fields in self.redis.xrange(f"rq:results:{job_id}")
                                                   for v in fields.values()]
            if any(pattern.search(_readable(v)) for v in values):
                yield job_id

    def _delete(self, job_id: str) -> None:
        try:
            Job.fetch(job_id, connection=self.redis, serializer=JSONSerializer).delete(remove_from_queue=True)
        except Exception:  # a job rq can no longer load: its records go all the same
            self.redis.delete(f"rq:job:{job_id}", f"rq:results:{job_id}")


def _readable(value: bytes) -> str:
    """rq compresses a job's payload and error; other fields are plain."""
    try:
        value = zlib.decompress(value)
    except zlib.error:
        pass
    return value.decode("utf-8", errors="replace")
