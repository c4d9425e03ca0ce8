"""`deputy bench queue`: jobs/s through the worker pool beside raw Redis LPUSH/BRPOP round trips/s."""
from __future__ import annotations

import time
from typing import Any

from redis import Redis
from rq import Queue
from rq.registry import FinishedJobRegistry
from rq.serializers import JSONSerializer
from rq.suspension import resume, suspend
from rq.worker import Worker

from harness.bench.harness import base_parser, child, flush, scratch_url, wait_for
from kernel.settings import Settings
from jobs.queues import INTERACTIVE

RESULT_TTL = 600


def raw_round_trips(redis: Redis, n: int) -> float:
    key = "bench:raw"
    redis.delete(key)
    start = time.perf_counter()
    for i in range(n):
        redis.lpush(key, i)
        redis.brpop([key], timeout=1)
    return n / (time.perf_counter() - start)


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    parser = base_parser("queue")
    parser.add_argument("--jobs", type=int, default=5000, help="jobs to push through the pool")
    parser.add_argument("--workers", type=int, default=settings.workers, help="worker processes")
    parser.add_argument("--raw", type=int, default=20000, help="raw LPUSH/BRPOP round trips")
    args = parser.parse_args(argv)
    url = scratch_url(settings, args.redis_url)
    flush(url)
    redis = Redis.from_url(url)
    raw = raw_round_trips(redis, args.raw)

    queue = Queue(INTERACTIVE, connection=redis, serializer=JSONSerializer)
    with child(["worker", "--workers", str(args.workers)], url):
        wait_for(lambda: Worker.count(connection=redis) >= args.workers, 30, "workers to start")
        # queue everything while the workers are paused, so we time the pool, not the producer
        suspend(redis)
        time.sleep(1.5)
        for start in range(0, args.jobs, 500):
            with redis.pipeline() as pipe:
                for i in range(start, min(args.jobs, start + 500)):
                    queue.enqueue_call("jobs.health.ping", args=({"i": i},), result_ttl=RESULT_TTL, pipeline=pipe)
                pipe.execute()
        finished = FinishedJobRegistry(INTERACTIVE, connection=redis)
        began = time.perf_counter()
        resume(redis)
        wait_for(lambda: finished.count >= args.jobs, 300, f"{args.jobs} jobs to finish")
        elapsed = time.perf_counter() - began
    flush(url)
    jobs_per_s = args.jobs / elapsed
    return {
        "jobs": args.jobs,
        "workers": args.workers,
        "jobs_per_s": round(jobs_per_s, 1),
        "raw_round_trips_per_s": round(raw, 1),
        "jobs_per_raw_round_trip": round(jobs_per_s / raw, 3),
    }
